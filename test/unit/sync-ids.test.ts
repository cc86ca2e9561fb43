import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  decodeIds,
  encodeIds,
  IdFileError,
  normaliseIds,
  packIds,
  readIdFile,
  unpackIds,
} from '#shared/sync/ids.ts';
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

describe('packed ids (one text per block in the ledgers)', () => {
  test('round-trips ordinary ids as newline-joined text, and an empty list as empty text', () => {
    const ids = ['a1b2', '0123456789', 'user-3'];
    assert.equal(packIds(ids), 'a1b2\n0123456789\nuser-3');
    assert.deepEqual(unpackIds(packIds(ids)), ids);
    assert.equal(packIds([]), '');
    assert.deepEqual(unpackIds(''), []);
    assert.deepEqual(unpackIds(null), []);
  });

  test('ids a newline join could not keep (a newline inside, a leading "[") round-trip as JSON', () => {
    for (const ids of [
      ['odd\nid', 'b'],
      ['[x', 'y'],
      ['a', 'b\r\n'],
    ]) {
      assert.deepEqual(unpackIds(packIds(ids)), ids);
    }
  });
});

describe("encoded ids (the Cassandra ledger's blob cells)", () => {
  const uuids = ['0f8fad5b-d9cb-469f-a165-70867728950e', '7c9e6679-7425-40de-944b-e07fc1f90ae7'];

  test('canonical UUIDs take 16 bytes each and round-trip exactly', () => {
    const bytes = encodeIds(uuids);
    assert.equal(bytes.length, 1 + 16 * uuids.length);
    assert.deepEqual(decodeIds(bytes), uuids);
  });

  test('anything else (organisation ids, upper case, a mix) round-trips as text', () => {
    for (const ids of [
      ['0123456789', 'org-2'],
      [uuids[0]!.toUpperCase()],
      [uuids[0]!, 'plain'],
      ['odd\nid'],
    ]) {
      const bytes = encodeIds(ids);
      assert.deepEqual(decodeIds(bytes), ids);
    }
  });

  test('an empty list is an empty cell; a cell of unknown format is an error, not wrong ids', () => {
    assert.equal(encodeIds([]).length, 0);
    assert.deepEqual(decodeIds(Buffer.alloc(0)), []);
    assert.deepEqual(decodeIds(null), []);
    assert.throws(() => decodeIds(Buffer.of(9, 1, 2)), /unknown id encoding/);
    assert.throws(() => decodeIds(Buffer.of(1, 1, 2)), /unknown id encoding/);
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
