/**
 * A Bloom filter of ids: "certainly not in the set" or "probably in it". The diff fills one from the
 * index's listing, so the Cassandra scan needs an index look-up only for the ids it says are absent —
 * a few, where the index is nearly complete — instead of one per id.
 *
 * Sized for the expected count at one false positive in a million, and never more than `maxBytes`: a
 * larger set only raises the false-positive rate, which the diff's digests catch (see diff.ts), so the
 * memory stays bounded whatever the index's size. Double hashing (Kirsch–Mitzenmacher) from two 32-bit
 * hashes of the id.
 */
import { hash32 } from '#shared/drift/digest.ts';

const SEED_1 = 0x5bd1e995;
const SEED_2 = 0x27d4eb2f;
const TARGET_RATE = 1e-6;
export const DEFAULT_BLOOM_MAX_BYTES = 64 * 1024 * 1024;

export class BloomFilter {
  readonly bits: number;
  readonly hashes: number;
  readonly #words: Uint32Array;

  constructor(expected: number, maxBytes = DEFAULT_BLOOM_MAX_BYTES) {
    const n = Math.max(1, expected);
    const wanted = Math.ceil((-n * Math.log(TARGET_RATE)) / Math.LN2 ** 2);
    const bits = Math.max(64, Math.min(wanted, maxBytes * 8));
    this.#words = new Uint32Array(Math.ceil(bits / 32));
    this.bits = this.#words.length * 32;
    this.hashes = Math.max(1, Math.min(20, Math.round((this.bits / n) * Math.LN2)));
  }

  get bytes(): number {
    return this.#words.byteLength;
  }

  add(id: string): void {
    const h1 = hash32(id, SEED_1);
    const h2 = (hash32(id, SEED_2) | 1) >>> 0;
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + i * h2) % this.bits;
      this.#words[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  /** False: certainly not added. True: added, or (rarely) a false positive. */
  has(id: string): boolean {
    const h1 = hash32(id, SEED_1);
    const h2 = (hash32(id, SEED_2) | 1) >>> 0;
    for (let i = 0; i < this.hashes; i++) {
      const bit = (h1 + i * h2) % this.bits;
      if ((this.#words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}
