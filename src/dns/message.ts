/**
 * DNS messages: `dns-packet` for parsing and building, plus the few raw-header operations that
 * must work even on messages it cannot parse (answering FORMERR to garbage with the right ID).
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";

/** A parsed DNS message. */
export type Message = dnsPacket.Packet & {
  id?: number;
  flags?: number;
  rcode?: string;
  flag_tc?: boolean;
};

/** An answer record as `dns-packet` represents it. */
export type DnsRecord = dnsPacket.Answer;

/** RCODE numbers. */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Longest name in presentation form (RFC 1035: 255 octets on the wire). */
export const MAX_NAME = 253;

/** Parses a message; null when it is not one. */
export function decode(bytes: Uint8Array): Message | null {
  try {
    return dnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as Message;
  } catch {
    return null;
  }
}

/** Serialises a message. */
export function encode(m: Message): Uint8Array {
  const b = dnsPacket.encode(m);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * A bare error response built from a raw query header: same ID and opcode, QR set, RD copied,
 * the given RCODE, no records. Works on messages `dns-packet` cannot parse; null when there is
 * not even a header or the message is itself a response.
 */
export function errorFromHeader(query: Uint8Array, rcode: number): Uint8Array | null {
  if (query.length < 12 || (query[2] & 0x80) !== 0) return null;
  const r = new Uint8Array(12);
  r[0] = query[0];
  r[1] = query[1];
  r[2] = 0x80 | (query[2] & 0x79); // QR, opcode, RD
  r[3] = 0x80 | (rcode & 0x0f); // RA
  return r;
}

/**
 * A response to `q` with `rcode` and optional records, echoing its question, ID and RD; RA set.
 */
export function respond(
  q: Message,
  rcode: number,
  parts: { answers?: DnsRecord[]; authorities?: DnsRecord[]; authoritative?: boolean } = {},
): Uint8Array {
  const rd = (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
  return encode({
    id: q.id,
    type: "response",
    flags: rd | dnsPacket.RECURSION_AVAILABLE |
      (parts.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
      (rcode & 0x0f),
    questions: q.questions,
    answers: parts.answers ?? [],
    authorities: parts.authorities ?? [],
  });
}

/** The largest UDP response the querier accepts (its EDNS payload size, else 512). */
export function udpLimit(q: Message): number {
  const opt = (q.additionals ?? []).find((r) => r.type === "OPT") as
    | { udpPayloadSize?: number }
    | undefined;
  return Math.max(512, Math.min(opt?.udpPayloadSize ?? 512, 4096));
}

/** Header and question only, with TC set: tells a UDP client to retry over TCP. */
export function truncated(response: Uint8Array): Uint8Array {
  const m = decode(response);
  if (m === null) return response.slice(0, 12);
  return encode({
    id: m.id,
    type: "response",
    flags: (m.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
    questions: m.questions,
  });
}
