/**
 * A fixed-size digest of a set of ids, for telling where two sets differ without holding either: ids
 * are spread over 2^bits buckets by a hash, and each bucket keeps a count and two 32-bit sums of two
 * more, independent hashes of its ids. Two digests of equal sets are equal bucket by bucket; a bucket
 * where the sets differ shows it unless the ids in between happen to collide in count and in both sums
 * (about one chance in 2^64). This is the idea of Cassandra's own repair (Merkle trees), one level deep.
 *
 * Memory: 12 bytes per bucket, whatever the size of the sets (3 MB at the default 18 bits).
 */

const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units, from a seed, with a final avalanche (murmur3's fmix32). */
export function hash32(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_BUCKET = 0x811c9dc5;
const SEED_A = 0x9747b28c;
const SEED_B = 0x3c6ef372;

export const DEFAULT_DIGEST_BITS = 18;

export class IdDigest {
  readonly bits: number;
  readonly #shift: number;
  readonly #count: Uint32Array;
  readonly #a: Uint32Array;
  readonly #b: Uint32Array;

  constructor(bits = DEFAULT_DIGEST_BITS) {
    if (!Number.isInteger(bits) || bits < 1 || bits > 24) throw new RangeError('digest bits must be 1–24');
    this.bits = bits;
    this.#shift = 32 - bits;
    const size = 2 ** bits;
    this.#count = new Uint32Array(size);
    this.#a = new Uint32Array(size);
    this.#b = new Uint32Array(size);
  }

  bucketOf(id: string): number {
    return hash32(id, SEED_BUCKET) >>> this.#shift;
  }

  add(id: string): void {
    const bucket = this.bucketOf(id);
    this.#count[bucket] = (this.#count[bucket]! + 1) >>> 0;
    this.#a[bucket] = (this.#a[bucket]! + hash32(id, SEED_A)) >>> 0;
    this.#b[bucket] = (this.#b[bucket]! + hash32(id, SEED_B)) >>> 0;
  }

  addAll(ids: Iterable<string>): void {
    for (const id of ids) this.add(id);
  }

  /** The buckets where this digest and `other` differ (1 = differs), and how many there are. */
  differing(other: IdDigest): { buckets: Uint8Array; count: number } {
    if (other.bits !== this.bits) throw new RangeError('digests of different sizes');
    const buckets = new Uint8Array(this.#count.length);
    let count = 0;
    for (let i = 0; i < buckets.length; i++) {
      if (this.#count[i] !== other.#count[i] || this.#a[i] !== other.#a[i] || this.#b[i] !== other.#b[i]) {
        buckets[i] = 1;
        count++;
      }
    }
    return { buckets, count };
  }
}
