/**
 * The drivers' errors on the taxonomy (shared/core/errors.ts), without any service: which Cassandra,
 * Kafka and PostgreSQL errors are worth another try, which mean "unavailable" (exit 3), "refused" (exit 3)
 * or "bad input" (exit 2) — one line each, naming the service and its address, never a password.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import cassandra from 'cassandra-driver';
import { cassandraError, isCassandraBlip } from '#shared/clients/cassandra.ts';
import { kafkaError } from '#shared/clients/kafka.ts';
import { postgresError } from '#shared/clients/postgres.ts';
import {
  BadInputError,
  CredentialsRefusedError,
  EXIT,
  exitCodeOf,
  ServiceUnavailableError,
} from '#shared/core/errors.ts';

const { errors, types } = cassandra;
const codes = types.responseErrorCodes;
const where = { hosts: ['10.0.0.5', '10.0.0.6'], port: 9042 };
const responseError = (code: number, message: string) => new errors.ResponseError(code, message);

describe('Cassandra errors', () => {
  test('blips: no host, a client timeout, a dropped socket, unavailable/overloaded/server timeouts', () => {
    // What the driver throws for requests in flight on a connection that closed (lib/connection.js).
    const socketClosed = Object.assign(new Error('Socket was closed'), { isSocketError: true });
    for (const err of [
      new errors.NoHostAvailableError({ '10.0.0.5:9042': new Error('connect ECONNREFUSED') }),
      new errors.OperationTimedOutError('The host 10.0.0.5:9042 did not reply before timeout 12000 ms'),
      socketClosed,
      responseError(codes.unavailableException, 'Cannot achieve consistency level LOCAL_QUORUM'),
      responseError(codes.overloaded, 'overloaded'),
      responseError(codes.readTimeout, 'Operation timed out - received only 0 responses.'),
    ]) {
      assert.equal(isCassandraBlip(err), true, err.message);
      const mapped = cassandraError(err, where);
      assert.ok(mapped instanceof ServiceUnavailableError, err.message);
      assert.equal(mapped.address, '10.0.0.5:9042,10.0.0.6:9042');
      assert.match(mapped.message, /^Cassandra is not reachable at 10\.0\.0\.5:9042,10\.0\.0\.6:9042: /);
    }
  });

  test('refused credentials and privileges are exit 3, never retried; a missing table is bad input', () => {
    const auth = new errors.NoHostAvailableError({
      '10.0.0.5:9042': new errors.AuthenticationError('Provided username and/or password are incorrect'),
    });
    assert.equal(isCassandraBlip(auth), false, 'a wrong password is not a blip');
    const refused = cassandraError(auth, where);
    assert.ok(refused instanceof CredentialsRefusedError);
    assert.equal(exitCodeOf(refused), EXIT.unavailable);
    const denied = cassandraError(
      responseError(
        codes.unauthorized,
        'User reader has no SELECT permission on <table sunbird.organisation>',
      ),
      { address: '10.0.0.5:9042', username: 'reader' },
    );
    assert.ok(denied instanceof CredentialsRefusedError);
    assert.match(denied.message, /refused the request as "reader": User reader has no SELECT permission/);
    const missing = cassandraError(responseError(codes.invalid, 'unconfigured table user'), where);
    assert.ok(missing instanceof BadInputError);
    assert.equal(exitCodeOf(missing), EXIT.badInput);
  });

  test('anything else passes through untouched', () => {
    const syntax = responseError(codes.syntaxError, 'line 1:0 no viable alternative');
    assert.equal(cassandraError(syntax, where), syntax);
    assert.equal(isCassandraBlip(syntax), false);
  });
});

describe('Kafka errors', () => {
  test('a nested connection failure names the brokers and the innermost reason', () => {
    const inner = Object.assign(new Error('Connection to 127.0.0.1:1 failed.'), {
      code: 'PLT_KFK_NETWORK',
      cause: new Error('connect ECONNREFUSED 127.0.0.1:1'),
    });
    const err = Object.assign(new AggregateError([{ errors: [inner] }], 'initProducerId failed 3 times.'), {
      code: 'PLT_KFK_MULTIPLE',
    });
    const mapped = kafkaError(err, { brokers: ['127.0.0.1:1', '127.0.0.1:2'] });
    assert.ok(mapped instanceof ServiceUnavailableError);
    assert.equal(
      mapped.message,
      'Kafka is not reachable at 127.0.0.1:1,127.0.0.1:2: Connection to 127.0.0.1:1 failed. (connect ECONNREFUSED 127.0.0.1:1)',
    );
  });

  test('a refused SASL authentication is refused credentials', () => {
    const err = new AggregateError(
      [Object.assign(new Error('SASL authentication failed'), { code: 'PLT_KFK_AUTHENTICATION' })],
      'x',
    );
    assert.ok(kafkaError(err, { brokers: ['b:9096'] }) instanceof CredentialsRefusedError);
  });
});

describe('PostgreSQL errors', () => {
  const url = 'postgres://keycloak:s3cret@db.example:5433/keycloak';

  test('unreachable, timed out or shut down: unavailable, naming the server without the password', () => {
    for (const err of [
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5433'), { code: 'ECONNREFUSED' }),
      new Error('timeout expired'),
      new Error('Query read timeout'),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    ]) {
      const mapped = postgresError(err, url, 'Keycloak database');
      assert.ok(mapped instanceof ServiceUnavailableError, err.message);
      assert.match(mapped.message, /^Keycloak database at db\.example:5433\/keycloak is not available: /);
      assert.ok(!mapped.message.includes('s3cret'));
    }
  });

  test('a refused login or privilege is refused credentials; a query bug passes through', () => {
    const login = Object.assign(new Error('password authentication failed for user "keycloak"'), {
      code: '28P01',
    });
    assert.ok(postgresError(login, url) instanceof CredentialsRefusedError);
    const privilege = Object.assign(new Error('permission denied for table user_entity'), { code: '42501' });
    assert.ok(postgresError(privilege, url) instanceof CredentialsRefusedError);
    const bug = Object.assign(new Error('column "x" does not exist'), { code: '42703' });
    assert.equal(postgresError(bug, url), bug);
  });
});
