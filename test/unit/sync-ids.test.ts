import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { IdFileError, normaliseIds, readIdFile } from '#shared/sync/ids.ts';
import { talendRecord } from '#shared/sync/talend-log.ts';

describe('id files', () => {
  test('a BOM, CRLF line ends, blank lines, surrounding spaces and duplicates are cleaned and counted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ids-'));
    const file = join(dir, 'ids.csv');
    await writeFile(file, '\uFEFFa1\r\n\r\n  b2  \r\nc3\na1\n\n\t\nb2\r\n');
    const { ids, stats } = await readIdFile(file);
    assert.deepEqual(ids, ['a1', 'b2', 'c3']);
    assert.deepEqual(stats, { lines: 8, blank: 3, duplicates: 2, ids: 3 });
  });

  test('a missing file, an unreadable path and a file with no ids are clear errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ids-'));
    await assert.rejects(
      readIdFile(join(dir, 'nope.csv')),
      (e: unknown) => e instanceof IdFileError && /id file not found: .*nope\.csv/.test(e.message),
    );
    await assert.rejects(
      readIdFile(dir),
      (e: unknown) => e instanceof IdFileError && /could not be read/.test(e.message),
    );
    const empty = join(dir, 'empty.csv');
    await writeFile(empty, '\n \r\n');
    await assert.rejects(readIdFile(empty), /id file has no ids/);
  });

  test('ids keep their order of first appearance', () => {
    assert.deepEqual(normaliseIds(['z', 'a', 'z', 'm']).ids, ['z', 'a', 'm']);
  });
});

describe('Talend log record', () => {
  test('matches the original format byte for byte, with the response’s line breaks removed', () => {
    const body = '{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":["u1","u2"]}}';
    assert.equal(
      talendRecord(3, body, '{"a":1,\r\n"b":\n2}\n'),
      `\n\nRequest No : 3\nRequest : ${body}\nResponse : {"a":1,"b":2}`,
    );
  });
});
