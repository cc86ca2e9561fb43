/**
 * The id files of a diff — `missing.txt`, `orphans.txt`, `stale.txt`, one id per line, usable as an
 * `--id-file` — written so that an interrupted diff never leaves a file that looks complete: ids are
 * appended to `<name>.partial` as they are found (memory holds none of them), and only when the whole
 * diff has succeeded are all files renamed to their final names. A diff that fails removes its partial
 * files; one killed outright leaves only `.partial` files. Result files of an earlier diff in the same
 * directory are removed when a diff starts, so a directory never mixes two diffs' results.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { BadInputError } from '#shared/core/errors.ts';

export const DIFF_KINDS = ['missing', 'orphans', 'stale'] as const;
export type DiffKind = (typeof DIFF_KINDS)[number];

export const fileNameOf = (kind: DiffKind): string => `${kind}.txt`;
const PARTIAL = '.partial';

export class DiffFiles {
  readonly dir: string;
  readonly #streams = new Map<DiffKind, WriteStream>();
  readonly counts: Record<DiffKind, number> = { missing: 0, orphans: 0, stale: 0 };

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens `<kind>.txt.partial` for each kind, after removing any earlier diff's results there. */
  static async open(dir: string, kinds: readonly DiffKind[]): Promise<DiffFiles> {
    await mkdir(dir, { recursive: true });
    for (const kind of DIFF_KINDS) {
      await rm(join(dir, fileNameOf(kind)), { force: true });
      await rm(join(dir, fileNameOf(kind) + PARTIAL), { force: true });
    }
    const files = new DiffFiles(dir);
    for (const kind of kinds) {
      const stream = createWriteStream(join(dir, fileNameOf(kind) + PARTIAL), { flags: 'wx' });
      files.#streams.set(kind, stream);
      // Opened now, so an unwritable directory is said before the diff starts.
      await once(stream, 'open').catch(async (err: Error) => {
        await files.abandon();
        throw new BadInputError(`cannot write the diff's files in ${dir}: ${err.message}`);
      });
      stream.on('error', () => undefined); // surfaced by write() and close()
    }
    return files;
  }

  path(kind: DiffKind): string {
    return join(this.dir, fileNameOf(kind));
  }

  get kinds(): DiffKind[] {
    return [...this.#streams.keys()];
  }

  /** Appends ids, one per line; waits when the disk is slower than the diff (bounded buffering). */
  async write(kind: DiffKind, ids: readonly string[]): Promise<void> {
    const stream = this.#streams.get(kind);
    if (!stream) throw new Error(`no ${kind} file open`);
    if (ids.length === 0) return;
    this.counts[kind] += ids.length;
    if (!stream.write(`${ids.join('\n')}\n`)) {
      await new Promise<void>((resolve, reject) => {
        stream.once('drain', resolve);
        stream.once('error', reject);
      });
    }
  }

  /** The diff succeeded: flush every file, then give each its final name. */
  async commit(): Promise<Record<DiffKind, string>> {
    await this.#closeAll();
    const paths = {} as Record<DiffKind, string>;
    for (const kind of this.#streams.keys()) {
      await rename(this.path(kind) + PARTIAL, this.path(kind));
      paths[kind] = this.path(kind);
    }
    return paths;
  }

  /** The diff failed: close and remove the partial files (nothing is left that looks complete). */
  async abandon(): Promise<void> {
    await this.#closeAll().catch(() => undefined);
    for (const kind of this.#streams.keys()) await rm(this.path(kind) + PARTIAL, { force: true });
  }

  async #closeAll(): Promise<void> {
    for (const stream of this.#streams.values()) {
      if (stream.closed) continue;
      stream.end();
      await finished(stream);
    }
  }
}
