/**
 * A table of flows keyed by their 4-tuple (source address and port, destination address and
 * port), looked up from the bytes of a packet without allocating.
 *
 * @module
 */
import { sameAddress } from "../wire/address.ts";

/**
 * What a {@linkcode TupleTable} entry must carry: its own key. Once the entry is added its
 * addresses are the table's shared, read-only copies (see {@linkcode TupleTable.add}).
 */
export interface TupleKeyed {
  srcAddr: Uint8Array;
  srcPort: number;
  dstAddr: Uint8Array;
  dstPort: number;
}

/** One address the table's entries share, and how many of them hold it. */
interface _Shared {
  bytes: Uint8Array;
  refs: number;
}

/** The key of an address in the shared set: the number for IPv4, 8 UTF-16 units for IPv6. */
function _addressKey(a: Uint8Array): number | string {
  if (a.length === 4) return ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
  let k = "";
  for (let i = 0; i < a.length; i += 2) k += String.fromCharCode((a[i] << 8) | a[i + 1]);
  return k;
}

/**
 * Maps a 4-tuple to an entry. The ports pick a bucket (`srcPort * 65536 + dstPort`); the
 * addresses are compared inside it, so a lookup with live subarrays of a packet allocates
 * nothing. Entries share their address bytes: every flow from this host's address holds the same
 * one array, so an entry costs no buffer of its own.
 */
export class TupleTable<T extends TupleKeyed> {
  #buckets = new Map<number, T[]>();
  #addresses = new Map<number | string, _Shared>();
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

  /**
   * Adds an entry; the caller makes sure its tuple is not in the table yet. Its `srcAddr` and
   * `dstAddr` may be views of a packet: they are replaced by the table's copies of those bytes,
   * shared with other entries and never written (the entry keeps them after `delete`).
   */
  add(entry: T): void {
    entry.srcAddr = this.#share(entry.srcAddr);
    entry.dstAddr = this.#share(entry.dstAddr);
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
    this.#unshare(entry.srcAddr);
    this.#unshare(entry.dstAddr);
    return true;
  }

  /** Every entry, in no particular order. Safe against deletion while iterating. */
  values(): T[] {
    const all: T[] = [];
    for (const bucket of this.#buckets.values()) all.push(...bucket);
    return all;
  }

  /** The shared copy of `bytes`, one more holder counted. */
  #share(bytes: Uint8Array): Uint8Array {
    const key = _addressKey(bytes);
    const shared = this.#addresses.get(key);
    if (shared !== undefined) {
      shared.refs++;
      return shared.bytes;
    }
    const copy = bytes.slice();
    this.#addresses.set(key, { bytes: copy, refs: 1 });
    return copy;
  }

  #unshare(bytes: Uint8Array): void {
    const key = _addressKey(bytes);
    const shared = this.#addresses.get(key);
    if (shared !== undefined && --shared.refs === 0) this.#addresses.delete(key);
  }
}
