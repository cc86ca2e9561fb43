/**
 * How the CLI reports an error, with no service involved (a setting out of range is refused before any
 * connection): one line and exit 2; `--verbose` or `LOG_LEVEL=debug` add the stack before that line.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lastLine, runCli } from '#test/helpers/cli.ts';

const outOfRange = ['sync', '--table', 'user', '--block-size', '3000000000'];
const oneLine =
  'sunbird-dataops: invalid sunbird_sync_block_size / --block-size / SYNC_BLOCK_SIZE: expected a whole number from -2147483648 to 100000 (≤ 0 means 100) (got "3000000000")';

describe('CLI errors', () => {
  test('a number out of range: exit 2 and exactly one line naming the setting and what is allowed', async () => {
    const r = await runCli(outOfRange, { LOG_LEVEL: 'INFO' });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `${oneLine}\n`);
    // The original parameter name and --context_param are refused the same way.
    const ctx = await runCli(
      ['sync', '--table', 'user', '--context_param', 'sunbird_sync_sleep_time=3000000000'],
      { LOG_LEVEL: 'INFO' },
    );
    assert.equal(ctx.code, 2);
    assert.match(ctx.stderr, /^sunbird-dataops: invalid sunbird_sync_sleep_time .*to 3600000 .*\n$/);
  });

  test('--verbose, or LOG_LEVEL=debug, adds the stack; the last line stays the same', async () => {
    for (const r of [
      await runCli([...outOfRange, '--verbose'], { LOG_LEVEL: 'INFO' }),
      await runCli(outOfRange, { LOG_LEVEL: 'debug' }),
    ]) {
      assert.equal(r.code, 2);
      assert.equal(lastLine(r), oneLine);
      assert.match(r.stderr, /^ConfigError: invalid sunbird_sync_block_size/);
      assert.match(r.stderr, /\n {4}at /, 'stack frames');
    }
  });
});
