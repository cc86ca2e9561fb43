/**
 * Id lists from files: one id per line, no header. Unlike the original (where a blank line became an
 * empty id), lines are trimmed, a BOM and CRs are stripped, blank lines dropped and duplicates removed;
 * the caller reports how many were dropped.
 */
import { createReadStream } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { BadInputError } from '#shared/core/errors.ts';

export class IdFileError extends BadInputError {
  override name = 'IdFileError';
}

export interface IdListStats {
  lines: number;
  blank: number;
  duplicates: number;
  ids: number;
}

export function normaliseIds(raw: Iterable<string>): { ids: string[]; stats: IdListStats } {
  const seen = new Set<string>();
  const stats: IdListStats = { lines: 0, blank: 0, duplicates: 0, ids: 0 };
  let first = true;
  for (let line of raw) {
    stats.lines++;
    if (first && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    first = false;
    const id = line.replace(/\r/g, '').trim();
    if (!id) stats.blank++;
    else if (seen.has(id)) stats.duplicates++;
    else seen.add(id);
  }
  stats.ids = seen.size;
  return { ids: [...seen], stats };
}

export async function readIdFile(path: string): Promise<{ ids: string[]; stats: IdListStats }> {
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IdFileError(
      code === 'ENOENT'
        ? `id file not found: ${path}`
        : `id file is not readable: ${path} (${code ?? 'error'})`,
    );
  }
  const lines: string[] = [];
  try {
    const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of rl) lines.push(line);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new IdFileError(`id file could not be read: ${path} (${code ?? (err as Error).message})`);
  }
  const result = normaliseIds(lines);
  if (result.ids.length === 0) throw new IdFileError(`id file has no ids: ${path}`);
  return result;
}
