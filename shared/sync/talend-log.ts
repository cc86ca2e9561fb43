/**
 * The original job's success/failure logs, byte for byte: each call appends
 * "\n\nRequest No : " + n + "\nRequest : " + <json body> + "\nResponse : " + <response, line breaks removed>
 * to SyncSuccess_<epochMillis>.log or SyncFailure_<epochMillis>.log. Operators recover failed ids with
 * `grep 'Request :' SyncFailure_*.log | sed 's/^Request : //' | jq -r '.request.objectIds[]'`.
 */

import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export function talendRecord(requestNo: number, requestBody: string, responseBody: string): string {
  return `\n\nRequest No : ${requestNo}\nRequest : ${requestBody}\nResponse : ${responseBody.replace(/[\r\n]+/g, '')}`;
}

export class TalendLogs {
  readonly successPath: string;
  readonly failurePath: string;
  private readonly success: WriteStream;
  private readonly failure: WriteStream;

  private constructor(dir: string, stamp: number) {
    this.successPath = join(dir, `SyncSuccess_${stamp}.log`);
    this.failurePath = join(dir, `SyncFailure_${stamp}.log`);
    this.success = createWriteStream(this.successPath, { flags: 'a' });
    this.failure = createWriteStream(this.failurePath, { flags: 'a' });
  }

  static async open(dir: string, stamp = Date.now()): Promise<TalendLogs> {
    await mkdir(dir, { recursive: true });
    return new TalendLogs(dir, stamp);
  }

  append(ok: boolean, requestNo: number, requestBody: string, responseBody: string): void {
    (ok ? this.success : this.failure).write(talendRecord(requestNo, requestBody, responseBody));
  }

  async close(): Promise<void> {
    for (const s of [this.success, this.failure]) {
      s.end();
      await once(s, 'close');
    }
  }
}
