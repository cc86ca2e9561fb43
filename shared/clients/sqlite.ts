/**
 * The CLI's local state: one SQLite file (`node:sqlite`, built into Node 22/24, so nothing to install) in
 * the state directory. WAL journal with `synchronous=NORMAL`: a committed write survives the process being
 * killed (kill -9, a lost SSH session) and several CLI processes can share the file (one writer at a time,
 * waiting up to `busy_timeout`).
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { BadInputError } from '#shared/core/errors.ts';

/** Schema versions, applied in order; `user_version` says how many a file already has. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     run_id TEXT PRIMARY KEY, job TEXT NOT NULL, object_type TEXT NOT NULL, source TEXT, dry_run INTEGER NOT NULL,
     verify INTEGER NOT NULL, block_size INTEGER NOT NULL, sleep_ms INTEGER NOT NULL, next TEXT, created_at INTEGER NOT NULL,
     ranges INTEGER NOT NULL, parent_run TEXT, params TEXT NOT NULL
   );
   CREATE INDEX runs_created ON runs (created_at);
   CREATE TABLE run_ranges (
     run_id TEXT NOT NULL, range_no INTEGER NOT NULL, start_token TEXT, end_token TEXT, ids INTEGER NOT NULL,
     blocks INTEGER NOT NULL, done INTEGER NOT NULL, hops INTEGER NOT NULL, checkpoint TEXT, updated_at INTEGER,
     PRIMARY KEY (run_id, range_no)
   );
   CREATE TABLE run_blocks (
     run_id TEXT NOT NULL, stage TEXT NOT NULL, range_no INTEGER NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
     ids TEXT NOT NULL, failed_ids TEXT NOT NULL, reason TEXT, attempts INTEGER, http_status INTEGER, response TEXT,
     context TEXT, updated_at INTEGER,
     PRIMARY KEY (run_id, stage, range_no, seq)
   );
   CREATE TABLE run_deletions (
     run_id TEXT NOT NULL, range_no INTEGER NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, outcome TEXT NOT NULL,
     realm TEXT, error TEXT, updated_at INTEGER,
     PRIMARY KEY (run_id, range_no, seq, id)
   );`,
  `CREATE TABLE run_keys (key TEXT PRIMARY KEY, run_id TEXT NOT NULL, started INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER NOT NULL);`,
];

/** `$XDG_STATE_HOME/sunbird-dataops`, else `~/.local/state/sunbird-dataops`. */
export function defaultStateDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'sunbird-dataops');
}

export const STATE_FILE = 'ledger.sqlite';

/** Opens (creating if needed) the state database in `dir` and brings its schema up to date. */
export function openStateDb(dir: string): DatabaseSync {
  let db: DatabaseSync;
  try {
    mkdirSync(dir, { recursive: true });
    // Loaded here, not at import: the Lambda functions, which never open the file, skip it at start-up.
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
    db = new DatabaseSync(join(dir, STATE_FILE));
  } catch (err) {
    throw new BadInputError(`cannot open the state directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;');
  const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
  return db;
}

/** Runs `fn` in one transaction (one fsync for many rows). */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
