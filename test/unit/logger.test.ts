import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadFlatConfig } from '#shared/config.ts';
import { createLogger } from '#shared/logger.ts';

function capture(): { sink: Writable; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { sink, text: () => chunks.join('') };
}

test('a configured API key and passwords never appear in any log output, whatever is logged', () => {
  const apiKey = 'sk-live-5f1c0ffee-api-key';
  const cassandraPassword = 'c4ss-pa55word!';
  const dbPassword = 'kc-db-s3cret';
  loadFlatConfig({
    env: { SYNC_API_KEY: apiKey, KEYCLOAK_DB_PASSWORD: dbPassword },
    overrides: { sunbird_cassandra_password: cassandraPassword },
  });
  const { sink, text } = capture();
  const log = createLogger({ sink, level: 'DEBUG' });

  log.info(`calling with key ${apiKey}`);
  log.debug('headers', {
    headers: { Authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
  });
  log.warn('config dump', { cassandra: { username: 'cassandra', password: cassandraPassword }, apiKey });
  log.error(
    'connection failed',
    new Error(`auth failed for password ${dbPassword} at postgres://u:${dbPassword}@h/db`),
  );
  log.info('nested', { deep: { list: [`x ${cassandraPassword} y`, { token: 'whatever' }] } });

  const out = text();
  assert.ok(out.length > 0, 'something was logged');
  for (const secret of [apiKey, cassandraPassword, dbPassword, 'whatever']) {
    assert.ok(!out.includes(secret), `log output must not contain ${secret.slice(0, 4)}…`);
  }
  assert.match(out, /\*\*\*/);
  assert.match(out, /"content-type":"application\/json"/, 'ordinary fields are still logged');
  for (const line of out.trim().split('\n')) JSON.parse(line); // every line stays valid JSON
});
