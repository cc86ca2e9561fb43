import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConfigError,
  effectivePacing,
  loadFlatConfig,
  parseContextParams,
  SETTINGS,
  type SettingKey,
  settingKeyFor,
} from '#shared/config.ts';

describe('configuration', () => {
  test('defaults match the original Talend job (dry run on, block 100, sleep 5000 ms, localhost endpoint)', () => {
    const cfg = loadFlatConfig({ env: {} });
    assert.equal(cfg['sync.dryRun'], true);
    assert.equal(cfg['sync.blockSize'], 100);
    assert.equal(cfg['sync.sleepMs'], 5000);
    assert.equal(cfg['syncApi.endpoint'], 'http://localhost:9000/v1/data/sync');
    assert.equal(cfg['cassandra.port'], 9042);
    assert.equal(cfg['cassandra.consistency'], 'LOCAL_QUORUM');
  });

  test('the original parameter names are accepted as aliases, in overrides and in the environment', () => {
    const cfg = loadFlatConfig({
      env: { sunbird_cassandra_port: '9142', SYNC_SLEEP_TIME: '10' },
      overrides: {
        sunbird_sync_block_size: '250',
        dry_run: 'false',
        sunbird_cassandra_table: 'organisation',
      },
    });
    assert.equal(cfg['cassandra.port'], 9142);
    assert.equal(cfg['sync.sleepMs'], 10);
    assert.equal(cfg['sync.blockSize'], 250);
    assert.equal(cfg['sync.dryRun'], false);
    assert.equal(cfg['sync.table'], 'organisation');
  });

  test('overrides beat environment variables, which beat defaults', () => {
    const cfg = loadFlatConfig({ env: { SYNC_BLOCK_SIZE: '7' }, overrides: { '--block-size': '9' } });
    assert.equal(cfg['sync.blockSize'], 9);
    assert.equal(loadFlatConfig({ env: { SYNC_BLOCK_SIZE: '7' } })['sync.blockSize'], 7);
  });

  test('a bad value names the key, its aliases and what is accepted', () => {
    assert.throws(
      () => loadFlatConfig({ env: {}, overrides: { sunbird_sync_block_size: 'lots' } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /sunbird_sync_block_size/.test(err.message) &&
        /--block-size/.test(err.message) &&
        /whole number/.test(err.message) &&
        /"lots"/.test(err.message),
    );
    assert.throws(
      () => loadFlatConfig({ env: {}, overrides: { sunbird_cassandra_table: 'users' } }),
      /expected user or organisation/,
    );
    assert.throws(
      () => loadFlatConfig({ env: {}, overrides: { dry_run: 'maybe' } }),
      /expected true or false/,
    );
  });

  test('an unknown setting is rejected by name', () => {
    assert.throws(
      () => loadFlatConfig({ env: {}, overrides: { sunbird_sync_blocksize: '1' } }),
      /unknown setting "sunbird_sync_blocksize"/,
    );
  });

  test('a bad secret is reported without echoing its value', () => {
    // Secrets are strings, so the only way to make one invalid is through the type; a number works.
    assert.doesNotThrow(() => loadFlatConfig({ env: { SYNC_API_KEY: 'k3y-value' } }));
    assert.throws(
      () => loadFlatConfig({ env: {}, overrides: { sunbird_sync_api_key: 12345 } }),
      (err: unknown) =>
        err instanceof ConfigError && !err.message.includes('12345') && err.message.includes('<secret>'),
    );
  });

  test('block size and sleep time fall back like the original (≤ 0 → 100 ids; ≤ 0 → block size × 100 ms)', () => {
    assert.deepEqual(effectivePacing(0, 0), { blockSize: 100, sleepMs: 10_000 });
    assert.deepEqual(effectivePacing(-5, 5000), { blockSize: 100, sleepMs: 5000 });
    assert.deepEqual(effectivePacing(20, -1), { blockSize: 20, sleepMs: 2000 });
    assert.deepEqual(effectivePacing(20, 1), { blockSize: 20, sleepMs: 1 });
  });

  test('a block size or sleep of 3000000000 is refused up front with one line naming the setting and what is allowed', () => {
    for (const [name, allowed] of [
      ['sunbird_sync_block_size', /from -2147483648 to 100000 \(≤ 0 means 100\)/],
      ['sunbird_sync_sleep_time', /from -2147483648 to 3600000 \(milliseconds; ≤ 0 means block size × 100\)/],
    ] as const) {
      assert.throws(
        () => loadFlatConfig({ env: {}, overrides: { [name]: '3000000000' } }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith(`invalid ${name} / `) &&
          allowed.test(err.message) &&
          !err.message.includes('\n'),
      );
    }
    // The fallbacks of the original stay accepted.
    assert.equal(
      loadFlatConfig({ env: {}, overrides: { sunbird_sync_block_size: '-1' } })['sync.blockSize'],
      -1,
    );
  });

  test('every numeric setting has a range: a value past it is a ConfigError naming the setting', () => {
    const numeric = (Object.keys(SETTINGS) as SettingKey[]).filter((k) =>
      /^-?\d+$/.test(String((SETTINGS[k] as { default?: string }).default)),
    );
    assert.ok(numeric.length >= 15, `found ${numeric.length} numeric settings`);
    for (const key of numeric) {
      for (const value of ['99999999999999', '-99999999999999']) {
        assert.throws(
          () => loadFlatConfig({ env: {}, overrides: { [key]: value } }),
          (err: unknown) =>
            err instanceof ConfigError &&
            err.message.includes(SETTINGS[key].flag) &&
            /expected (a (whole )?number from -?\d+ to \d+|a port 1-65535)/.test(err.message),
          `${key} = ${value}`,
        );
      }
      // Its default is inside its own range.
      assert.doesNotThrow(() => loadFlatConfig({ env: {} })[key]);
    }
  });

  test('the timeouts of every client are settings with bounded defaults', () => {
    const cfg = loadFlatConfig({ env: {} });
    assert.equal(cfg['cassandra.connectTimeoutMs'], 5000);
    assert.equal(cfg['cassandra.readTimeoutMs'], 12_000);
    assert.equal(cfg['cassandra.retryWindowMs'], 60_000);
    assert.ok(cfg['kafka.timeoutMs'] <= 30_000, 'Kafka: at most 30 s by default');
    assert.equal(cfg['postgres.timeoutMs'], 30_000);
    assert.equal(cfg['sqs.timeoutMs'], 30_000);
    assert.equal(cfg['syncApi.timeoutMs'], 30_000);
    assert.equal(cfg['keycloak.timeoutMs'], 30_000);
    assert.equal(
      loadFlatConfig({ env: { CASSANDRA_RETRY_WINDOW_MS: '0' } })['cassandra.retryWindowMs'],
      0,
      'a window of 0 turns the retries off',
    );
  });

  test('--context_param pairs parse with and without quotes', () => {
    assert.deepEqual(
      parseContextParams(['sunbird_cassandra_table="user"', "dry_run='false'", 'sunbird_sync_block_size=50']),
      {
        sunbird_cassandra_table: 'user',
        dry_run: 'false',
        sunbird_sync_block_size: '50',
      },
    );
    assert.throws(() => parseContextParams(['dry_run']), /name=value/);
  });

  test('every accepted name resolves to one setting', () => {
    assert.equal(settingKeyFor('sunbird_sync_api_endpoint'), 'syncApi.endpoint');
    assert.equal(settingKeyFor('SYNC_API_ENDPOINT'), 'syncApi.endpoint');
    assert.equal(settingKeyFor('--sync-api-endpoint'), 'syncApi.endpoint');
    assert.equal(settingKeyFor('nope'), undefined);
  });
});
