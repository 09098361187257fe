/**
 * TCP (RFC 9293): a typed view over a segment's bytes, option parsing (RFC 7323 window scale
 * and timestamps, RFC 2018 SACK), and a parsed representation with emit.
 *
 * @module
 */

import { checksum, pseudoHeaderSum, sum16 } from "./checksum.ts";
import { IPPROTO_TCP } from "./protocol.ts";

/** FIN flag: no more data from the sender. */
export const TCP_FIN = 0x01;
/** SYN flag: synchronize sequence numbers. */
export const TCP_SYN = 0x02;
/** RST flag: reset the connection. */
export const TCP_RST = 0x04;
/** PSH flag: push function. */
export const TCP_PSH = 0x08;
/** ACK flag: the acknowledgment field is significant. */
export const TCP_ACK = 0x10;
/** URG flag: the urgent pointer field is significant. */
export const TCP_URG = 0x20;
/** ECE flag: ECN-Echo (RFC 3168). */
export const TCP_ECE = 0x40;
/** CWR flag: Congestion Window Reduced (RFC 3168). */
export const TCP_CWR = 0x80;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
const _EOL = 0;
const _NOP = 1;
const _MSS = 2;
const _WSCALE = 3;
const _SACK_PERMITTED = 4;
const _SACK = 5;
const _TIMESTAMP = 8;

/**
 * A view over a TCP segment (header, options and payload). The segment is the whole buffer
 * passed to {@linkcode TcpSegment.view}, which checks lengths once; after that no accessor can
 * fail. Setters write in place and do not update the checksum.
 *
 * @example
 * ```ts
 * import { emitTcp, TCP_SYN, TcpSegment } from "./tcp.ts";
 * const src = new Uint8Array([10, 0, 0, 1]);
 * const dst = new Uint8Array([10, 96, 0, 10]);
 * const buf = new Uint8Array(64);
 * const n = emitTcp({
 *   srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 64240,
 *   options: { mss: 1460 },
 * }, buf, src, dst);
 * const s = TcpSegment.view(buf.subarray(0, n))!;
 * if (!s.syn || s.dstPort !== 80 || !s.verifyChecksum(src, dst)) throw new Error("unexpected");
 * ```
 */
export class TcpSegment {
  /** The whole segment: header, options and payload. */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Makes a view over `buf`, or returns null when it is shorter than 20 bytes or the data
   * offset is below 5 words or past the end of `buf`. Never throws.
   *
   * @param buf The segment: the IP payload.
   * @returns The view, spanning all of `buf`, or null.
   */
  static view(buf: Uint8Array): TcpSegment | null {
    if (buf.length < 20) return null;
    const headerLength = (buf[12] >> 4) << 2;
    if (headerLength < 20 || headerLength > buf.length) return null;
    return new TcpSegment(buf);
  }

  /** Source port. */
  get srcPort(): number {
    return this.#view.getUint16(0);
  }

  /** Sets the source port (the checksum is not updated). */
  set srcPort(value: number) {
    this.#view.setUint16(0, value);
  }

  /** Destination port. */
  get dstPort(): number {
    return this.#view.getUint16(2);
  }

  /** Sets the destination port (the checksum is not updated). */
  set dstPort(value: number) {
    this.#view.setUint16(2, value);
  }

  /** Sequence number, uint32. */
  get seq(): number {
    return this.#view.getUint32(4) >>> 0;
  }

  /** Sets the sequence number (taken modulo 2^32; the checksum is not updated). */
  set seq(value: number) {
    this.#view.setUint32(4, value >>> 0);
  }

  /** Acknowledgment number, uint32. */
  get ack(): number {
    return this.#view.getUint32(8) >>> 0;
  }

  /** Sets the acknowledgment number (taken modulo 2^32; the checksum is not updated). */
  set ack(value: number) {
    this.#view.setUint32(8, value >>> 0);
  }

  /** Header length in bytes (data offset × 4), 20..60. */
  get headerLength(): number {
    return (this.bytes[12] >> 4) << 2;
  }

  /** The eight flag bits (CWR ECE URG ACK PSH RST SYN FIN), byte 13. */
  get flags(): number {
    return this.bytes[13];
  }

  /** Whether FIN is set. */
  get fin(): boolean {
    return (this.bytes[13] & TCP_FIN) !== 0;
  }

  /** Whether SYN is set. */
  get syn(): boolean {
    return (this.bytes[13] & TCP_SYN) !== 0;
  }

  /** Whether RST is set. */
  get rst(): boolean {
    return (this.bytes[13] & TCP_RST) !== 0;
  }

  /** Whether PSH is set. */
  get psh(): boolean {
    return (this.bytes[13] & TCP_PSH) !== 0;
  }

  /** Whether ACK is set (named `ackFlag` because `ack` is the acknowledgment number). */
  get ackFlag(): boolean {
    return (this.bytes[13] & TCP_ACK) !== 0;
  }

  /** Window field (unscaled). */
  get window(): number {
    return this.#view.getUint16(14);
  }

  /** Checksum field. */
  get checksum(): number {
    return this.#view.getUint16(16);
  }

  /** Sets the checksum field. */
  set checksum(value: number) {
    this.#view.setUint16(16, value);
  }

  /** Urgent pointer field. */
  get urgentPointer(): number {
    return this.#view.getUint16(18);
  }

  /** The options bytes, 20..headerLength (a subarray; parse with {@linkcode parseTcpOptions}). */
  get options(): Uint8Array {
    return this.bytes.subarray(20, this.headerLength);
  }

  /** The payload after the header (a subarray). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength);
  }

  /**
   * Whether the checksum is correct for the given IP addresses.
   *
   * @param src IP source address, 4 or 16 bytes.
   * @param dst IP destination address, same length.
   * @returns True when the segment and pseudo-header sum to 0xffff.
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    const b = this.bytes;
    return sum16(b, pseudoHeaderSum(src, dst, IPPROTO_TCP, b.length)) === 0xffff;
  }

  /**
   * Computes the checksum for the given IP addresses and stores it in the segment.
   *
   * @param src IP source address, 4 or 16 bytes.
   * @param dst IP destination address, same length.
   */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    const b = this.bytes;
    this.#view.setUint16(16, 0);
    this.#view.setUint16(16, checksum(b, pseudoHeaderSum(src, dst, IPPROTO_TCP, b.length)));
  }
}

/** The TCP options kconnect understands. */
export interface TcpOptions {
  /** Maximum Segment Size (kind 2). */
  mss?: number;
  /** Window scale shift count (kind 3, RFC 7323). */
  windowScale?: number;
  /** SACK-permitted (kind 4, RFC 2018). */
  sackPermitted?: boolean;
  /** SACK blocks as `[left, right]` uint32 pairs (kind 5, RFC 2018). */
  sack?: [number, number][];
  /** Timestamps (kind 8, RFC 7323): TSval and TSecr. */
  timestamp?: { value: number; echo: number };
}

/**
 * Parses TCP options. End-of-list stops parsing, NOPs are skipped, unknown kinds are skipped by
 * their length. Never throws.
 *
 * @param bytes The options bytes, e.g. {@linkcode TcpSegment.options}.
 * @returns The options, or null when malformed: a length byte missing or below 2, an option
 *   running past the end, or a known option with the wrong length.
 *
 * @example
 * ```ts
 * import { parseTcpOptions } from "./tcp.ts";
 * const o = parseTcpOptions(new Uint8Array([2, 4, 0x05, 0xb4, 1, 3, 3, 7]));
 * if (o?.mss !== 1460 || o.windowScale !== 7) throw new Error("unexpected");
 * if (parseTcpOptions(new Uint8Array([2, 4, 0x05])) !== null) throw new Error("unexpected");
 * ```
 */
export function parseTcpOptions(bytes: Uint8Array): TcpOptions | null {
  const out: TcpOptions = {};
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const kind = bytes[i];
    if (kind === _EOL) break;
    if (kind === _NOP) {
      i++;
      continue;
    }
    if (i + 1 >= n) return null;
    const len = bytes[i + 1];
    if (len < 2 || i + len > n) return null;
    switch (kind) {
      case _MSS:
        if (len !== 4) return null;
        out.mss = (bytes[i + 2] << 8) | bytes[i + 3];
        break;
      case _WSCALE:
        if (len !== 3) return null;
        out.windowScale = bytes[i + 2];
        break;
      case _SACK_PERMITTED:
        if (len !== 2) return null;
        out.sackPermitted = true;
        break;
      case _SACK: {
        if (len < 10 || (len - 2) % 8 !== 0) return null;
        const blocks: [number, number][] = [];
        for (let j = i + 2; j < i + len; j += 8) blocks.push([_u32(bytes, j), _u32(bytes, j + 4)]);
        out.sack = blocks;
        break;
      }
      case _TIMESTAMP:
        if (len !== 10) return null;
        out.timestamp = { value: _u32(bytes, i + 2), echo: _u32(bytes, i + 6) };
        break;
    }
    i += len;
  }
  return out;
}

/** Big-endian uint32 at `i`. */
function _u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Writes a big-endian uint32 at `i`. */
function _put32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

/** The parsed fields of a TCP segment. */
export interface TcpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number, uint32. */
  seq: number;
  /** Acknowledgment number, uint32. */
  ack: number;
  /** Flag bits, e.g. `TCP_SYN | TCP_ACK`. */
  flags: number;
  /** Window field (unscaled). */
  window: number;
  /** Urgent pointer. Default 0. */
  urgentPointer?: number;
  /** Options. Default none. */
  options?: TcpOptions;
  /** Payload. Default empty. */
  payload?: Uint8Array;
}

/**
 * Parses a segment into a {@linkcode TcpRepr}. The payload is a subarray of the segment (not a
 * copy).
 *
 * @param s A view from {@linkcode TcpSegment.view}.
 * @returns The parsed segment, or null when its options are malformed.
 *
 * @example
 * ```ts
 * import { parseTcp, TcpSegment } from "./tcp.ts";
 * const bytes = new Uint8Array(20);
 * bytes[12] = 5 << 4;
 * bytes[13] = 0x12;
 * if (parseTcp(TcpSegment.view(bytes)!)?.flags !== 0x12) throw new Error("unexpected");
 * ```
 */
export function parseTcp(s: TcpSegment): TcpRepr | null {
  const options = parseTcpOptions(s.options);
  if (options === null) return null;
  return {
    srcPort: s.srcPort,
    dstPort: s.dstPort,
    seq: s.seq,
    ack: s.ack,
    flags: s.flags,
    window: s.window,
    urgentPointer: s.urgentPointer,
    options,
    payload: s.payload,
  };
}

/** Maximum bytes of TCP options (data offset 15 words). */
const _MAX_OPTIONS = 40;

/** Number of SACK blocks that fit after the other options, at most 4. */
function _sackBlocks(o: TcpOptions, fixed: number): number {
  const want = o.sack?.length ?? 0;
  if (want === 0) return 0;
  const room = Math.floor((_MAX_OPTIONS - fixed - 4) / 8);
  return Math.max(0, Math.min(want, room, 4));
}

/** Bytes of options other than SACK blocks, in the Linux layout. */
function _fixedOptionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.timestamp !== undefined) n += 12; // SACK-permitted rides in the timestamp's padding
  else if (o.sackPermitted) n += 4;
  if (o.windowScale !== undefined) n += 4;
  return n;
}

/**
 * The header length {@linkcode emitTcp} writes for `repr`: 20 plus the options, which are laid
 * out as Linux does (each padded with NOPs to a 4-byte boundary): MSS (4), SACK-permitted +
 * timestamps (12, or NOP NOP + timestamps, or NOP NOP + SACK-permitted), NOP + window scale (4),
 * NOP NOP + SACK blocks (4 + 8n). SACK blocks that do not fit in 40 bytes of options are
 * dropped, as Linux does.
 *
 * @param repr The segment to emit.
 * @returns The header length in bytes, a multiple of 4 between 20 and 60.
 *
 * @example
 * ```ts
 * import { tcpHeaderLength } from "./tcp.ts";
 * const n = tcpHeaderLength({
 *   srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 2, window: 0,
 *   options: { mss: 1460, sackPermitted: true, timestamp: { value: 1, echo: 0 }, windowScale: 7 },
 * });
 * if (n !== 40) throw new Error("unexpected");
 * ```
 */
export function tcpHeaderLength(repr: TcpRepr): number {
  const o = repr.options;
  if (o === undefined) return 20;
  const fixed = _fixedOptionsLength(o);
  const blocks = _sackBlocks(o, fixed);
  return 20 + fixed + (blocks > 0 ? 4 + 8 * blocks : 0);
}

/**
 * Writes a TCP segment — header, options (see {@linkcode tcpHeaderLength}) and payload — with a
 * correct checksum for the given IP addresses into `buf`.
 *
 * @param repr The segment.
 * @param buf The output buffer; must hold `tcpHeaderLength(repr) + payload.length` bytes.
 * @param src IP source address, 4 or 16 bytes (for the pseudo-header).
 * @param dst IP destination address, same length.
 * @returns The segment length in bytes.
 * @throws {RangeError} When `buf` is too short.
 *
 * @example
 * ```ts
 * import { emitTcp, TCP_ACK, TCP_RST } from "./tcp.ts";
 * const buf = new Uint8Array(20);
 * const n = emitTcp(
 *   { srcPort: 80, dstPort: 40000, seq: 0, ack: 1, flags: TCP_RST | TCP_ACK, window: 0 },
 *   buf, new Uint8Array([10, 96, 0, 10]), new Uint8Array([10, 0, 0, 1]),
 * );
 * if (n !== 20) throw new Error("unexpected");
 * ```
 */
export function emitTcp(
  repr: TcpRepr,
  buf: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  const headerLength = tcpHeaderLength(repr);
  const payload = repr.payload;
  const total = headerLength + (payload?.length ?? 0);
  if (buf.length < total) {
    throw new RangeError(`Cannot emit TCP segment: needs ${total} bytes, buffer has ${buf.length}`);
  }
  const seg = buf.length === total ? buf : buf.subarray(0, total);
  seg[0] = repr.srcPort >> 8;
  seg[1] = repr.srcPort & 0xff;
  seg[2] = repr.dstPort >> 8;
  seg[3] = repr.dstPort & 0xff;
  _put32(seg, 4, repr.seq >>> 0);
  _put32(seg, 8, repr.ack >>> 0);
  seg[12] = (headerLength >> 2) << 4;
  seg[13] = repr.flags & 0xff;
  seg[14] = (repr.window >> 8) & 0xff;
  seg[15] = repr.window & 0xff;
  seg[16] = 0;
  seg[17] = 0;
  const up = repr.urgentPointer ?? 0;
  seg[18] = (up >> 8) & 0xff;
  seg[19] = up & 0xff;
  const o = repr.options;
  if (o !== undefined) {
    let i = 20;
    if (o.mss !== undefined) {
      seg[i] = _MSS;
      seg[i + 1] = 4;
      seg[i + 2] = (o.mss >> 8) & 0xff;
      seg[i + 3] = o.mss & 0xff;
      i += 4;
    }
    if (o.timestamp !== undefined) {
      if (o.sackPermitted) {
        seg[i] = _SACK_PERMITTED;
        seg[i + 1] = 2;
      } else {
        seg[i] = _NOP;
        seg[i + 1] = _NOP;
      }
      seg[i + 2] = _TIMESTAMP;
      seg[i + 3] = 10;
      _put32(seg, i + 4, o.timestamp.value >>> 0);
      _put32(seg, i + 8, o.timestamp.echo >>> 0);
      i += 12;
    } else if (o.sackPermitted) {
      seg[i] = _NOP;
      seg[i + 1] = _NOP;
      seg[i + 2] = _SACK_PERMITTED;
      seg[i + 3] = 2;
      i += 4;
    }
    if (o.windowScale !== undefined) {
      seg[i] = _NOP;
      seg[i + 1] = _WSCALE;
      seg[i + 2] = 3;
      seg[i + 3] = o.windowScale;
      i += 4;
    }
    const blocks = _sackBlocks(o, i - 20);
    if (blocks > 0) {
      seg[i] = _NOP;
      seg[i + 1] = _NOP;
      seg[i + 2] = _SACK;
      seg[i + 3] = 2 + 8 * blocks;
      i += 4;
      for (let k = 0; k < blocks; k++) {
        const [left, right] = o.sack![k];
        _put32(seg, i, left >>> 0);
        _put32(seg, i + 4, right >>> 0);
        i += 8;
      }
    }
  }
  if (payload !== undefined) seg.set(payload, headerLength);
  const c = checksum(seg, pseudoHeaderSum(src, dst, IPPROTO_TCP, total));
  seg[16] = c >> 8;
  seg[17] = c & 0xff;
  return total;
}
