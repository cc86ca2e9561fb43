/**
 * Kafka client security from the configuration (KAFKA_AUTH, KAFKA_SASL_*, KAFKA_TLS) as
 * `kafkaOptions()` hands it to @platformatic/kafka: MSK SCRAM is SASL/SCRAM-SHA-512 over TLS, MSK IAM is
 * SASL/OAUTHBEARER over TLS with a token provider signed by aws-msk-iam-sasl-signer-js.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GetParameterCommand } from '@aws-sdk/client-ssm';
import { ConfigError, loadFlatConfig } from '#shared/config.ts';
import { kafkaOptions, type MskTokenSigner, mskIamTokenProvider } from '#shared/merge/runtime.ts';
import { resolveSecretEnv } from '#shared/secrets.ts';

const cfgOf = (env: Record<string, string>) => loadFlatConfig({ env });

describe('Kafka authentication options', () => {
  test('none (the default): no SASL and no TLS, unless KAFKA_TLS asks for TLS', () => {
    const plain = kafkaOptions(cfgOf({ KAFKA_BROKERS: 'a:9092,b:9092' }));
    assert.deepEqual(plain.brokers, ['a:9092', 'b:9092']);
    assert.equal(plain.sasl, undefined);
    assert.equal(plain.tls, undefined);
    const tls = kafkaOptions(cfgOf({ KAFKA_AUTH: 'none', KAFKA_TLS: 'true' }));
    assert.equal(tls.sasl, undefined);
    assert.deepEqual(tls.tls, {});
  });

  test('scram: SASL/SCRAM-SHA-512 with the user and password, over TLS even when KAFKA_TLS is false', () => {
    const opts = kafkaOptions(
      cfgOf({
        KAFKA_AUTH: 'scram',
        KAFKA_SASL_USERNAME: 'merge-user',
        KAFKA_SASL_PASSWORD: 's3cret',
        KAFKA_TLS: 'false',
      }),
    );
    assert.deepEqual(opts.sasl, { mechanism: 'SCRAM-SHA-512', username: 'merge-user', password: 's3cret' });
    assert.deepEqual(opts.tls, {});
  });

  test('scram without a user or password is a ConfigError naming what is missing', () => {
    assert.throws(
      () => kafkaOptions(cfgOf({ KAFKA_AUTH: 'scram', KAFKA_SASL_USERNAME: 'merge-user' })),
      (err: unknown) =>
        err instanceof ConfigError &&
        /KAFKA_SASL_USERNAME/.test(err.message) &&
        /KAFKA_SASL_PASSWORD/.test(err.message),
    );
  });

  test('the SCRAM password is a secret: read from KAFKA_SASL_PASSWORD_SSM on AWS', async () => {
    const asked: string[] = [];
    const ssm = {
      send: async (cmd: GetParameterCommand) => {
        asked.push(String(cmd.input.Name));
        return { Parameter: { Value: 'from-ssm' } };
      },
    };
    const env = await resolveSecretEnv(
      {
        KAFKA_AUTH: 'scram',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD_SSM: '/sunbird-dataops/dev/kafka',
      },
      ssm as never,
    );
    assert.deepEqual(asked, ['/sunbird-dataops/dev/kafka']);
    const opts = kafkaOptions(loadFlatConfig({ env }));
    assert.equal((opts.sasl as { password?: unknown }).password, 'from-ssm');
  });

  test('iam: SASL/OAUTHBEARER over TLS with a token function that signs for AWS_REGION and reuses the token', async () => {
    const calls: string[] = [];
    let now = Date.now();
    const signer: MskTokenSigner = async ({ region }) => {
      calls.push(region);
      return { token: `token-${calls.length}`, expiryTime: now + 15 * 60_000 };
    };
    const opts = kafkaOptions(cfgOf({ KAFKA_AUTH: 'iam', AWS_REGION: 'ap-south-1' }), signer);
    assert.deepEqual(opts.tls, {});
    assert.equal(opts.sasl?.mechanism, 'OAUTHBEARER');
    const token = opts.sasl?.token;
    assert.equal(typeof token, 'function');
    const provide = token as () => Promise<string>;
    assert.equal(await provide(), 'token-1');
    assert.equal(await provide(), 'token-1', 'reused while valid');
    assert.deepEqual(calls, ['ap-south-1']);
    now -= 15 * 60_000; // the cached token now expires in the past
    const provider = mskIamTokenProvider('ap-south-1', signer);
    assert.equal(await provider(), 'token-2');
    assert.equal(await provider(), 'token-3', 'an expired token is signed again');
  });

  test('iam with the real signer: an MSK IAM token for kafka-cluster:Connect, signed locally', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example' });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      const opts = kafkaOptions(cfgOf({ KAFKA_AUTH: 'iam', AWS_REGION: 'us-east-1' }));
      const provide = opts.sasl?.token;
      assert.equal(typeof provide, 'function');
      const token = await (provide as () => Promise<string>)();
      const url = new URL(Buffer.from(token, 'base64url').toString('utf8'));
      assert.equal(url.host, 'kafka.us-east-1.amazonaws.com');
      assert.equal(url.searchParams.get('Action'), 'kafka-cluster:Connect');
      assert.ok(url.searchParams.get('X-Amz-Signature'));
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('an unknown KAFKA_AUTH is a ConfigError naming KAFKA_AUTH', () => {
    assert.throws(
      () => cfgOf({ KAFKA_AUTH: 'plain' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /KAFKA_AUTH/.test(err.message) &&
        /none, scram or iam/.test(err.message),
    );
  });
});
