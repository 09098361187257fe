/**
 * Helpers shared by the wire tests (not exported from mod.ts): the scapy vectors, hex
 * conversion and a seeded PRNG.
 *
 * @module
 */

import vectorsJson from "../../tests/testdata/wire/vectors.json" with { type: "json" };
import type { TcpOptions } from "./tcp.ts";

/** ICMP fields as scapy reports them. */
export interface IcmpFields {
  type: number;
  code: number;
  chksum: number;
  id: number | null;
  seq: number | null;
  body: string;
  chksum_ok: boolean;
}

/** One packet from vectors.json, as scapy described it. */
export interface Vector {
  name: string;
  hex: string;
  emit: boolean;
  padding?: number;
  ip: {
    version: number;
    src: string;
    dst: string;
    ihl?: number;
    tos?: number;
    len?: number;
    id?: number;
    df?: boolean;
    mf?: boolean;
    frag?: number;
    ttl?: number;
    proto?: number;
    chksum?: number;
    chksum_ok?: boolean;
    tc?: number;
    fl?: number;
    plen?: number;
    nh?: number;
    hlim?: number;
  };
  l4: { proto: number; offset: number };
  tcp?: {
    sport: number;
    dport: number;
    seq: number;
    ack: number;
    dataofs: number;
    flags: number;
    window: number;
    chksum: number;
    urgptr: number;
    options: TcpOptions;
    payload: string;
    chksum_ok: boolean;
  };
  udp?: {
    sport: number;
    dport: number;
    len: number;
    chksum: number;
    payload: string;
    chksum_ok: boolean;
  };
  icmp?: IcmpFields;
  icmpv6?: IcmpFields;
}

/** All scapy vectors. */
export const vectors: Vector[] = (vectorsJson as unknown as { vectors: Vector[] }).vectors;

/** Decodes hex text. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Encodes bytes as hex text. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A seeded PRNG (mulberry32) returning uint32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** `n` random bytes from `next`. */
export function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}
