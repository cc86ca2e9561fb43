/**
 * The Sync API's contract (jobs spec §1 "The Sync API"): routes, limits, Sunbird's response envelopes,
 * the gateway's bare messages and the service's validation of a sync request (UOS_0003, UOS_0072).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** userorg-service's route and the gateway's public route to it. */
export const SYNC_ROUTES: readonly string[] = ['/v1/data/sync', '/api/data/v1/index/sync'];
/** The gateway's request-size limit: 1 MB. */
export const MAX_BODY_BYTES = 1_048_576;
/** The service answers a verified block that takes longer than this with a 500 (the work goes on). */
export const VERIFY_TIMEOUT_MS = 10_000;
export const VALID_OBJECT_TYPES: readonly string[] = ['user', 'organisation', 'location'];

/** Sunbird's `ts` format: `2024-01-01 10:00:00:000+0000` (UTC). */
export function sunbirdTimestamp(d: Date = new Date()): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}:${iso.slice(20, 23)}+0000`;
}

function envelope(
  msgid: string | null,
  responseCode: string,
  result: unknown,
  err: string | null,
  errmsg: string | null,
): string {
  return JSON.stringify({
    id: 'api.data.sync',
    ver: 'v1',
    ts: sunbirdTimestamp(),
    params: { resmsgid: randomUUID(), msgid, err, status: err ? 'FAILED' : 'SUCCESS', errmsg },
    responseCode,
    result,
  });
}

/** HTTP 200: `result.response` SUCCESS, plus `esSyncResponse` in verified mode. */
export const successBody = (msgid: string | null, esSyncResponse?: Record<string, boolean>) =>
  envelope(
    msgid,
    'OK',
    esSyncResponse ? { response: 'SUCCESS', esSyncResponse } : { response: 'SUCCESS' },
    null,
    null,
  );

export const clientError = (msgid: string | null, err: string, errmsg: string) =>
  envelope(msgid, 'CLIENT_ERROR', {}, err, errmsg);

export const serverError = (msgid: string | null) =>
  envelope(msgid, 'SERVER_ERROR', {}, 'INTERNAL_ERROR', 'Process failed,please try again later.');

const invalidData = (msgid: string | null) =>
  clientError(msgid, 'INVALID_REQUESTED_DATA', 'Requested data for this operation is not valid.');

/** The answer to any path that is not a sync route or an admin route. */
export const notFoundBody = () => clientError(null, 'RESOURCE_NOT_FOUND', 'Requested resource not found.');

// The gateway (Kong) answers its own rejections with a bare message, not a Sunbird envelope.
const GATEWAY_MESSAGES: Record<number, string> = {
  401: 'Unauthorized',
  403: 'You cannot consume this service',
  413: 'Request size limit exceeded',
  429: 'API rate limit exceeded',
  502: 'An invalid response was received from the upstream server',
  503: 'Service unavailable',
  504: 'The upstream server is timing out',
};

/** The body a status gets when a fault or script does not say otherwise. */
export function defaultBodyFor(status: number, msgid: string | null): string {
  if (status >= 200 && status < 300) return successBody(msgid);
  const gateway = GATEWAY_MESSAGES[status];
  if (gateway) return JSON.stringify({ message: gateway });
  if (status >= 500) return serverError(msgid);
  return invalidData(msgid);
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A request body as received: the JSON value, or `ok: false` when it is not JSON. */
export type ParsedBody = { ok: true; value: unknown } | { ok: false };

export function parseBody(raw: string): ParsedBody {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

/** The message id echoed in `params.msgid`: the X-Request-ID header, else the body's, else a new one. */
export function msgidOf(headers: IncomingHttpHeaders, body: ParsedBody): string {
  const header = firstHeader(headers['x-request-id']);
  if (header !== undefined) return header;
  const params = body.ok ? (body.value as { params?: { msgid?: unknown } } | null)?.params : undefined;
  return typeof params?.msgid === 'string' ? params.msgid : randomUUID();
}

/** A block the service accepted. */
export interface SyncRequest {
  objectType: string;
  objectIds: string[];
  /** `"operationType":"sync"`: index before answering and report `esSyncResponse`. */
  verify: boolean;
}

export type Validation = { ok: true; request: SyncRequest } | { ok: false; status: 400; body: string };

/** The service's checks of a sync request, with its exact error envelopes. */
export function validateSyncRequest(body: ParsedBody, msgid: string): Validation {
  if (!body.ok) return { ok: false, status: 400, body: invalidData(msgid) };
  const value =
    body.value !== null && typeof body.value === 'object' ? (body.value as Record<string, unknown>) : {};
  const request = (value.request ?? {}) as Record<string, unknown>;
  const objectType = request.objectType;
  if (objectType === undefined || objectType === null || objectType === '') {
    return {
      ok: false,
      status: 400,
      body: clientError(msgid, 'UOS_0003', 'Mandatory parameter objectType is missing.'),
    };
  }
  if (typeof objectType !== 'string' || !VALID_OBJECT_TYPES.includes(objectType)) {
    return { ok: false, status: 400, body: clientError(msgid, 'UOS_0072', 'Invalid Object Type.') };
  }
  const objectIds = Array.isArray(request.objectIds) ? request.objectIds.map(String) : [];
  return { ok: true, request: { objectType, objectIds, verify: request.operationType === 'sync' } };
}
