/**
 * The sync job's fixtures in events/ are the payloads operators paste into the Lambda console (and the
 * shapes the triggers deliver): each must pass the same schemas the functions apply.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { SQSEvent } from 'aws-lambda';
import { startPayloadSchema } from '#shared/fanout/payload.ts';
import { blockSchema, parseMessage, scanTaskSchema } from '#shared/sync/messages.ts';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));

describe('sync job event fixtures', () => {
  it('the full user resync starts a real (not dry) scan of the user table', () => {
    const p = startPayloadSchema.parse(fixture('fanout-full-user-resync.json'));
    assert.equal(p.job, 'sync');
    assert.equal(p.objectType, 'user');
    assert.equal(p.dryRun, false);
    assert.equal(p.ids, undefined);
  });

  it('the full organisation resync starts a real scan of the organisation table', () => {
    const p = startPayloadSchema.parse(fixture('fanout-full-organisation-resync.json'));
    assert.equal(p.objectType, 'organisation');
    assert.equal(p.dryRun, false);
    assert.equal(p.ids, undefined);
  });

  it('the specific-ids payload carries the ids instead of a scan', () => {
    const p = startPayloadSchema.parse(fixture('fanout-specific-ids.json'));
    assert.ok(p.ids && p.ids.length > 0);
    assert.equal(p.dryRun, false);
  });

  it('the dry-run payload asks for no API calls', () => {
    const p = startPayloadSchema.parse(fixture('fanout-dry-run.json'));
    assert.equal(p.dryRun, true);
  });

  it('the schedule payload is what a schedule with `input` delivers: a start payload as is', () => {
    const p = startPayloadSchema.parse(fixture('schedule-full-user-resync.json'));
    assert.equal(p.objectType, 'user');
    assert.equal(p.dryRun, false);
  });

  it('a schedule without `input` (the bare Scheduled Event envelope) is refused, not misread', () => {
    const envelope = {
      version: '0',
      id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2025-03-01T02:00:00Z',
      region: 'ap-south-1',
      resources: ['arn:aws:events:ap-south-1:123456789012:rule/sunbird-dataops-full-user-resync'],
      detail: {},
    };
    assert.equal(startPayloadSchema.safeParse(envelope).success, false);
  });

  it('every record of the SQS event is a block the sync-block function accepts', () => {
    const event = fixture('sqs-sync-block.json') as SQSEvent;
    assert.ok(event.Records.length > 0);
    for (const rec of event.Records) {
      assert.equal(rec.eventSource, 'aws:sqs');
      assert.match(rec.eventSourceARN, /^arn:aws:sqs:[\w-]+:\d{12}:[\w-]+$/);
      assert.equal(rec.md5OfBody, createHash('md5').update(rec.body).digest('hex'));
      const block = parseMessage(blockSchema, rec.body);
      assert.ok(block.ids.length <= block.run.blockSize);
      assert.deepEqual(blockSchema.parse(JSON.parse(rec.body)), block);
    }
  });

  it('the scan-queue event carries a fresh scan task and a continuation with its checkpoint', () => {
    const event = fixture('sqs-fanout-scan-tasks.json') as SQSEvent;
    const [fresh, continued] = event.Records.map((r) => parseMessage(scanTaskSchema, r.body));
    assert.equal(fresh?.checkpoint, undefined);
    assert.ok(continued?.checkpoint && continued.checkpoint.nextSeq > 0 && continued.checkpoint.pageState);
    for (const r of event.Records) {
      assert.equal(r.md5OfBody, createHash('md5').update(r.body).digest('hex'));
      assert.match(r.eventSourceARN, /:sunbird-dataops-\w+-scan$/);
    }
  });

  it('the delete-queue event carries a Keycloak job block, bound for the delete stage, with its realm', () => {
    const event = fixture('sqs-delete-keycloak-users.json') as SQSEvent;
    const block = parseMessage(blockSchema, event.Records[0]!.body);
    assert.equal(block.run.job, 'delete-keycloak-users');
    assert.equal(block.run.next, 'delete');
    assert.equal(block.context?.realm, 'sunbird');
    assert.match(event.Records[0]!.eventSourceARN, /:sunbird-dataops-\w+-delete$/);
  });

  it('the Keycloak deletion payload starts a dry run for one realm within the limit', () => {
    const p = startPayloadSchema.parse(fixture('fanout-delete-keycloak-users-dry-run.json'));
    assert.equal(p.job, 'delete-keycloak-users');
    assert.equal(p.realm, 'sunbird');
    assert.equal(p.limit, 20000);
    assert.equal(p.dryRun, true);
  });
});
