/**
 * The small typed request that starts every stream (what the opener wants: a TCP dial, a UDP
 * flow, a DNS query, the control channel) and the reply to it. Binary and versioned:
 *
 * ```
 * request: version u8 (1) | kind u8 | body length u16 | body
 *   tcp (1): port u16 | timeoutMs u32 | host length u8 | host (UTF-8)
 *   udp (2): port u16 | host length u8 | host (UTF-8)
 *   dns (3), control (4): empty body
 * reply:   version u8 (1) | status u8 | message length u16 | message (UTF-8)
 * ```
 *
 * All integers big-endian. No I/O here; see `open.ts` for reading and writing on a stream.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";

/** Version byte of requests and replies. */
export const OPEN_VERSION = 1;
/** Longest request or reply body accepted, bytes. */
export const MAX_OPEN_BODY = 1024;
/** Bytes before the body: version, kind/status, body length. */
export const OPEN_HEADER_LENGTH = 4;

/** What the opener of a stream asks for. */
export type OpenRequest =
  /** Dial TCP `host:port`, giving up after `timeoutMs`. */
  | { kind: "tcp"; host: string; port: number; timeoutMs: number }
  /** Relay UDP to `host:port`; datagrams follow, each u16-length-prefixed. */
  | { kind: "udp"; host: string; port: number }
  /** One DNS query and its answer follow, each u16-length-prefixed (as DNS over TCP). */
  | { kind: "dns" }
  /** Length-prefixed (u32) JSON messages follow both ways. */
  | { kind: "control" };

/** How an open request went. */
export type OpenStatus = "ok" | "refused" | "unreachable" | "timeout" | "forbidden" | "error";

/** The answer to an {@linkcode OpenRequest}. */
export interface OpenReply {
  /** Outcome. */
  status: OpenStatus;
  /** Detail for a failure (UTF-8, cut to 1024 bytes when encoded). */
  message?: string;
}

const KINDS = ["tcp", "udp", "dns", "control"] as const;
const STATUSES: readonly OpenStatus[] = [
  "ok",
  "refused",
  "unreachable",
  "timeout",
  "forbidden",
  "error",
];
const MAX_HOST = 255;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function _checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${what}: port must be in [1, 65535], got ${port}`);
  }
}

function _hostBytes(host: string): Uint8Array {
  const b = encoder.encode(host);
  if (b.length === 0 || b.length > MAX_HOST) {
    throw new RangeError(`encode open request: host must be 1-${MAX_HOST} bytes, got ${b.length}`);
  }
  return b;
}

/**
 * Encodes a request. Throws RangeError for a port outside 1-65535, an empty or over-long
 * host, or a timeout outside u32.
 *
 * @example
 * ```ts
 * import { decodeOpenRequest, encodeOpenRequest } from "./open_request.ts";
 * const b = encodeOpenRequest({ kind: "tcp", host: "10.96.0.1", port: 443, timeoutMs: 5000 });
 * const d = decodeOpenRequest(b);
 * if (d === null || d.consumed !== b.length || d.request.kind !== "tcp") throw new Error("unexpected");
 * ```
 */
export function encodeOpenRequest(r: OpenRequest): Uint8Array {
  let body: Uint8Array;
  switch (r.kind) {
    case "tcp": {
      _checkPort(r.port, "encode open request");
      if (!Number.isInteger(r.timeoutMs) || r.timeoutMs < 0 || r.timeoutMs > 0xffffffff) {
        throw new RangeError(`encode open request: timeoutMs out of range: ${r.timeoutMs}`);
      }
      const host = _hostBytes(r.host);
      body = new Uint8Array(7 + host.length);
      const v = new DataView(body.buffer);
      v.setUint16(0, r.port);
      v.setUint32(2, r.timeoutMs);
      body[6] = host.length;
      body.set(host, 7);
      break;
    }
    case "udp": {
      _checkPort(r.port, "encode open request");
      const host = _hostBytes(r.host);
      body = new Uint8Array(3 + host.length);
      new DataView(body.buffer).setUint16(0, r.port);
      body[2] = host.length;
      body.set(host, 3);
      break;
    }
    case "dns":
    case "control":
      body = new Uint8Array(0);
      break;
    default:
      throw new RangeError(
        `encode open request: unknown kind ${(r as { kind: unknown }).kind}`,
      );
  }
  const out = new Uint8Array(OPEN_HEADER_LENGTH + body.length);
  out[0] = OPEN_VERSION;
  out[1] = KINDS.indexOf(r.kind) + 1;
  out[2] = body.length >>> 8;
  out[3] = body.length & 0xff;
  out.set(body, OPEN_HEADER_LENGTH);
  return out;
}

/** Reads the header; null if incomplete. Throws ProtocolError on a bad version or length. */
function _header(b: Uint8Array, what: string): { code: number; len: number } | null {
  if (b.length < 1) return null;
  if (b[0] !== OPEN_VERSION) throw new ProtocolError(`${what}: unsupported version ${b[0]}`);
  if (b.length < OPEN_HEADER_LENGTH) return null;
  const len = (b[2] << 8) | b[3];
  if (len > MAX_OPEN_BODY) {
    throw new ProtocolError(`${what}: body of ${len} bytes exceeds ${MAX_OPEN_BODY}`);
  }
  if (b.length < OPEN_HEADER_LENGTH + len) return null;
  return { code: b[1], len };
}

function _utf8(b: Uint8Array, what: string): string {
  try {
    return decoder.decode(b);
  } catch {
    throw new ProtocolError(`${what}: invalid UTF-8`);
  }
}

/**
 * Body length of the request or reply at the start of `b` once its 4-byte header is there,
 * else null. Throws {@linkcode ProtocolError} on a bad version or an over-long body.
 *
 * @example
 * ```ts
 * import { openBodyLength } from "./open_request.ts";
 * if (openBodyLength(new Uint8Array([1, 3, 0, 0])) !== 0) throw new Error("unexpected");
 * ```
 */
export function openBodyLength(b: Uint8Array): number | null {
  if (b.length < OPEN_HEADER_LENGTH) return null;
  if (b[0] !== OPEN_VERSION) throw new ProtocolError(`open message: unsupported version ${b[0]}`);
  const len = (b[2] << 8) | b[3];
  if (len > MAX_OPEN_BODY) {
    throw new ProtocolError(`open message: body of ${len} bytes exceeds ${MAX_OPEN_BODY}`);
  }
  return len;
}

/**
 * Decodes the request at the start of `b`: the request and how many bytes it took, or null
 * when `b` holds only part of it. Throws {@linkcode ProtocolError} when malformed.
 *
 * @example
 * ```ts
 * import { decodeOpenRequest, encodeOpenRequest } from "./open_request.ts";
 * const b = encodeOpenRequest({ kind: "dns" });
 * if (decodeOpenRequest(b.subarray(0, 2)) !== null) throw new Error("should be incomplete");
 * ```
 */
export function decodeOpenRequest(
  b: Uint8Array,
): { request: OpenRequest; consumed: number } | null {
  const what = "decode open request";
  const h = _header(b, what);
  if (h === null) return null;
  const body = b.subarray(OPEN_HEADER_LENGTH, OPEN_HEADER_LENGTH + h.len);
  const consumed = OPEN_HEADER_LENGTH + h.len;
  const kind = KINDS[h.code - 1];
  const v = new DataView(body.buffer, body.byteOffset, body.length);
  const hostAt = (at: number): string => {
    if (body.length < at + 1) throw new ProtocolError(`${what}: ${kind} body truncated`);
    const n = body[at];
    if (n === 0) throw new ProtocolError(`${what}: empty host`);
    if (body.length !== at + 1 + n) {
      throw new ProtocolError(
        `${what}: ${kind} body is ${body.length} bytes, expected ${at + 1 + n}`,
      );
    }
    return _utf8(body.subarray(at + 1), what);
  };
  const port = (): number => {
    const p = v.getUint16(0);
    if (p === 0) throw new ProtocolError(`${what}: port 0`);
    return p;
  };
  switch (kind) {
    case "tcp": {
      if (body.length < 7) throw new ProtocolError(`${what}: tcp body truncated`);
      const host = hostAt(6);
      return { request: { kind, host, port: port(), timeoutMs: v.getUint32(2) }, consumed };
    }
    case "udp": {
      if (body.length < 3) throw new ProtocolError(`${what}: udp body truncated`);
      const host = hostAt(2);
      return { request: { kind, host, port: port() }, consumed };
    }
    case "dns":
    case "control":
      if (body.length !== 0) {
        throw new ProtocolError(`${what}: ${kind} request with a ${body.length}-byte body`);
      }
      return { request: { kind }, consumed };
    default:
      throw new ProtocolError(`${what}: unknown kind ${h.code}`);
  }
}

/**
 * Encodes a reply; a message longer than 1024 bytes is cut at a character boundary.
 *
 * @example
 * ```ts
 * import { decodeOpenReply, encodeOpenReply } from "./open_request.ts";
 * const d = decodeOpenReply(encodeOpenReply({ status: "refused", message: "port 81 closed" }));
 * if (d?.reply.status !== "refused") throw new Error("unexpected");
 * ```
 */
export function encodeOpenReply(r: OpenReply): Uint8Array {
  const code = STATUSES.indexOf(r.status);
  if (code < 0) throw new RangeError(`encode open reply: unknown status ${r.status}`);
  const out = new Uint8Array(OPEN_HEADER_LENGTH + MAX_OPEN_BODY);
  const { written } = encoder.encodeInto(r.message ?? "", out.subarray(OPEN_HEADER_LENGTH));
  out[0] = OPEN_VERSION;
  out[1] = code;
  out[2] = written >>> 8;
  out[3] = written & 0xff;
  return out.slice(0, OPEN_HEADER_LENGTH + written);
}

/**
 * Decodes the reply at the start of `b`, or null when incomplete. Throws
 * {@linkcode ProtocolError} when malformed.
 *
 * @example
 * ```ts
 * import { decodeOpenReply } from "./open_request.ts";
 * const d = decodeOpenReply(new Uint8Array([1, 0, 0, 0]));
 * if (d?.reply.status !== "ok" || d.consumed !== 4) throw new Error("unexpected");
 * ```
 */
export function decodeOpenReply(b: Uint8Array): { reply: OpenReply; consumed: number } | null {
  const what = "decode open reply";
  const h = _header(b, what);
  if (h === null) return null;
  const status = STATUSES[h.code];
  if (status === undefined) throw new ProtocolError(`${what}: unknown status ${h.code}`);
  const consumed = OPEN_HEADER_LENGTH + h.len;
  if (h.len === 0) return { reply: { status }, consumed };
  const message = _utf8(b.subarray(OPEN_HEADER_LENGTH, consumed), what);
  return { reply: { status, message }, consumed };
}
