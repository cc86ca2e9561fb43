/**
 * Murmur3 token-ring arithmetic (Cassandra's default partitioner): tokens are signed 64-bit integers,
 * written as decimal strings. A range is (start, end]; an end at the minimum token means "to the end of
 * the ring" (the upper half of a wrapped range, as the driver unwraps it).
 */
import type { TokenRange } from '#shared/sync/ports.ts';

export const MIN_TOKEN = '-9223372036854775808';
const MIN = -(2n ** 63n);
const RING = 2n ** 64n;

/** How many tokens a range spans. */
export function rangeWidth(range: TokenRange): bigint {
  const end = range.end === MIN_TOKEN ? 2n ** 63n : BigInt(range.end);
  const w = end - BigInt(range.start);
  return w > 0n ? w : w + RING;
}

/** Splits a range into `parts` contiguous ranges of (nearly) equal width that tile it exactly. */
export function splitRange(range: TokenRange, parts: number): TokenRange[] {
  if (parts <= 1) return [range];
  const width = rangeWidth(range);
  const n = width < BigInt(parts) ? width : BigInt(parts);
  const start = BigInt(range.start);
  const out: TokenRange[] = [];
  let prev = range.start;
  for (let i = 1n; i < n; i++) {
    let boundary = start + (width * i) / n;
    if (boundary >= 2n ** 63n) boundary -= RING; // a range that wraps past the maximum token
    out.push({ start: prev, end: boundary.toString() });
    prev = boundary.toString();
  }
  out.push({ start: prev, end: range.end });
  return out;
}

/** A token for an id in the in-memory id source (any stable spread over the ring will do there). */
export function tokenOf(id: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < id.length; i++) {
    h ^= BigInt(id.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const token = h + MIN;
  return token === MIN ? MIN + 1n : token; // the minimum token belongs to no range
}

/** Whether `token` lies in the range (start, end]. */
export function inRange(token: bigint, range: TokenRange): boolean {
  const start = BigInt(range.start);
  if (range.end === MIN_TOKEN) return token > start;
  return token > start && token <= BigInt(range.end);
}
