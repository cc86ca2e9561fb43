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

/**
 * A block's ids as one text value (ledgers keep them so: one cell instead of a list of cells): joined by
 * newlines, or a JSON array in the rare case an id could not survive that (it holds a newline, or the
 * first one starts with "[").
 */
export function packIds(ids: readonly string[]): string {
  if (ids.some((id) => id.includes('\n')) || ids[0]?.startsWith('[')) return JSON.stringify(ids);
  return ids.join('\n');
}

export function unpackIds(text: unknown): string[] {
  if (typeof text !== 'string' || text === '') return [];
  return text.startsWith('[') ? (JSON.parse(text) as string[]) : text.split('\n');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const AS_UUIDS = 1;
const AS_TEXT = 0;

/**
 * A block's ids as bytes, for the Cassandra ledger: 16 bytes per id when all are canonical lower-case
 * UUIDs (Sunbird's user ids; 43 % of the text), else the UTF-8 of `packIds`. One format byte leads.
 */
export function encodeIds(ids: readonly string[]): Buffer {
  if (ids.length === 0) return Buffer.alloc(0);
  if (!ids.every((id) => UUID.test(id))) {
    return Buffer.concat([Buffer.of(AS_TEXT), Buffer.from(packIds(ids), 'utf8')]);
  }
  const out = Buffer.allocUnsafe(1 + 16 * ids.length);
  out[0] = AS_UUIDS;
  ids.forEach((id, i) => {
    out.write(id.replaceAll('-', ''), 1 + 16 * i, 16, 'hex');
  });
  return out;
}

export function decodeIds(bytes: Buffer | null | undefined): string[] {
  if (!bytes || bytes.length === 0) return [];
  if (bytes[0] === AS_TEXT) return unpackIds(bytes.toString('utf8', 1));
  if (bytes[0] !== AS_UUIDS || (bytes.length - 1) % 16 !== 0)
    throw new Error(`unknown id encoding (format byte ${bytes[0]}, ${bytes.length} bytes)`);
  const ids: string[] = [];
  for (let at = 1; at < bytes.length; at += 16) {
    const h = bytes.toString('hex', at, at + 16);
    ids.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
  }
  return ids;
}
