/**
 * A table of flows keyed by their 4-tuple (source address and port, destination address and
 * port), looked up from the bytes of a packet without allocating.
 *
 * @module
 */
import { sameAddress } from "../wire/address.ts";

/** What a {@linkcode TupleTable} entry must carry: its own key. Addresses are private copies. */
export interface TupleKeyed {
  srcAddr: Uint8Array;
  srcPort: number;
  dstAddr: Uint8Array;
  dstPort: number;
}

/**
 * Maps a 4-tuple to an entry. The ports pick a bucket (`srcPort * 65536 + dstPort`); the
 * addresses are compared inside it, so a lookup with live subarrays of a packet allocates
 * nothing.
 */
export class TupleTable<T extends TupleKeyed> {
  #buckets = new Map<number, T[]>();
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The entry for this tuple, if any. */
  get(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): T | undefined {
    const bucket = this.#buckets.get(srcPort * 65536 + dstPort);
    if (bucket === undefined) return undefined;
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i];
      if (sameAddress(e.srcAddr, src) && sameAddress(e.dstAddr, dst)) return e;
    }
    return undefined;
  }

  /** Adds an entry; the caller makes sure its tuple is not in the table yet. */
  add(entry: T): void {
    const key = entry.srcPort * 65536 + entry.dstPort;
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) this.#buckets.set(key, [entry]);
    else bucket.push(entry);
    this.#size++;
  }

  /** Removes this very entry; returns whether it was there. */
  delete(entry: T): boolean {
    const key = entry.srcPort * 65536 + entry.dstPort;
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) return false;
    const i = bucket.indexOf(entry);
    if (i < 0) return false;
    if (bucket.length === 1) this.#buckets.delete(key);
    else bucket.splice(i, 1);
    this.#size--;
    return true;
  }

  /** Every entry, in no particular order. Safe against deletion while iterating. */
  values(): T[] {
    const all: T[] = [];
    for (const bucket of this.#buckets.values()) all.push(...bucket);
    return all;
  }
}
