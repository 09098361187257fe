/**
 * Prefix arithmetic for CIDR discovery: the smallest prefixes that cover a set of addresses,
 * and merging a list of prefixes into as few as possible.
 *
 * @module
 */
import { Cidr, parseAddress } from "../wire/address.ts";

function bit(a: Uint8Array, i: number): number {
  return (a[i >> 3] >> (7 - (i & 7))) & 1;
}

function commonPrefix(a: Uint8Array, b: Uint8Array, max: number): number {
  let n = 0;
  while (n < max && bit(a, n) === bit(b, n)) n++;
  return n;
}

/** Shortest prefix length a cover may have before it is split: /8 for IPv4, /32 for IPv6. */
const BROADEST = { 4: 8, 6: 32 } as const;
/** Width addresses are grouped by when one cover would be too broad. */
const GROUP = { 4: 16, 6: 64 } as const;

/**
 * The smallest prefix containing every address of one family; when that would be broader than
 * /8 (IPv4) or /32 (IPv6), one cover per /16 (or /64) group instead. Unparseable addresses are
 * skipped. Result sorted, IPv4 first.
 */
export function coverAddresses(addresses: Iterable<string>): Cidr[] {
  const byFamily: Record<4 | 6, Uint8Array[]> = { 4: [], 6: [] };
  for (const text of addresses) {
    const a = parseAddress(text);
    if (a !== null) byFamily[a.length === 4 ? 4 : 6].push(a);
  }
  const out: Cidr[] = [];
  for (const family of [4, 6] as const) {
    const list = byFamily[family];
    if (list.length === 0) continue;
    const cover = coverOf(list);
    if (cover.prefixLength >= BROADEST[family]) {
      out.push(cover);
      continue;
    }
    const groups = new Map<string, Uint8Array[]>();
    for (const a of list) {
      const key = Cidr.from(a, GROUP[family])!.toString();
      const g = groups.get(key);
      if (g) g.push(a);
      else groups.set(key, [a]);
    }
    out.push(...[...groups.values()].map(coverOf));
  }
  return mergeCidrs(out);
}

function coverOf(list: Uint8Array[]): Cidr {
  const first = list[0];
  let len = first.length * 8;
  for (const a of list) len = Math.min(len, commonPrefix(first, a, len));
  return Cidr.from(first, len)!;
}

function compare(a: Cidr, b: Cidr): number {
  if (a.address.length !== b.address.length) return a.address.length - b.address.length;
  for (let i = 0; i < a.address.length; i++) {
    if (a.address[i] !== b.address[i]) return a.address[i] - b.address[i];
  }
  return a.prefixLength - b.prefixLength;
}

/**
 * Merges prefixes: drops those inside another and joins sibling pairs (10.244.0.0/24 and
 * 10.244.1.0/24 → 10.244.0.0/23), repeatedly. Result sorted.
 */
export function mergeCidrs(cidrs: Cidr[]): Cidr[] {
  let list = [...cidrs].sort(compare);
  for (let changed = true; changed;) {
    changed = false;
    const next: Cidr[] = [];
    for (const c of list) {
      const last = next.at(-1);
      if (last && last.overlaps(c)) {
        if (c.prefixLength < last.prefixLength) next[next.length - 1] = c;
        changed ||= true;
        continue;
      }
      if (
        last && last.prefixLength === c.prefixLength && last.prefixLength > 0 &&
        last.address.length === c.address.length &&
        Cidr.from(last.address, last.prefixLength - 1)!.contains(c.address)
      ) {
        next[next.length - 1] = Cidr.from(last.address, last.prefixLength - 1)!;
        changed = true;
        continue;
      }
      next.push(c);
    }
    list = next.sort(compare);
  }
  return list;
}
