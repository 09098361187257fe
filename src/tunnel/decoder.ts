/**
 * Incremental frame decoder: feed it transport chunks with `push()`, take frames with `next()`
 * (or iterate). Frames may be split across chunks and many may share one chunk. The header is
 * checked as soon as it is complete, so a bad version, type, flag combination or oversized
 * Data length throws {@linkcode ProtocolError} before any payload is awaited.
 *
 * A Data payload split across chunks comes out in pieces, one per chunk, as views of the
 * chunks (`partial` on all but the last): gathering it into a new buffer first would cost an
 * allocation, a zero fill and a copy per byte, and a stream only appends the bytes anyway.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { Flag, type Frame, FrameType, HEADER_LENGTH, VERSION } from "./frame.ts";

/** Options for {@linkcode Decoder}. */
export interface DecoderOptions {
  /** Longest Data payload accepted, bytes. Default 1 MiB. */
  maxFrameSize?: number;
  /** Accept kconnect's Ack frames (a resumable session's). Default false: plain yamux. */
  acks?: boolean;
}

const EMPTY = new Uint8Array(0);

interface _Pending {
  flags: number;
  streamId: number;
  /** Payload bytes still to come. */
  left: number;
  /** No piece handed out yet. */
  first: boolean;
}
/**
 * How many times its payload's size an owned view may keep alive (see `Decoder.push`): with
 * 256 KiB messages of 64 KiB frames, the usual case, every payload qualifies.
 */
export const MAX_RETAIN_FACTOR = 4;
const KNOWN_FLAGS = Flag.SYN | Flag.ACK | Flag.FIN | Flag.RST;

/**
 * Checks a frame header; throws {@linkcode ProtocolError} naming what is wrong.
 *
 * @example
 * ```ts
 * import { checkHeader } from "./decoder.ts";
 * checkHeader(0, 2, 1, 0, 7, 1024); // a ping request is fine
 * ```
 */
export function checkHeader(
  version: number,
  type: number,
  flags: number,
  streamId: number,
  length: number,
  maxFrameSize: number,
  acks = false,
): void {
  if (version !== VERSION) throw new ProtocolError(`decode frame: unsupported version ${version}`);
  if (type > (acks ? FrameType.Ack : FrameType.GoAway)) {
    throw new ProtocolError(`decode frame: unknown type ${type}`);
  }
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new ProtocolError(`decode frame: unknown flags 0x${flags.toString(16)}`);
  }
  if ((flags & Flag.SYN) !== 0 && (flags & Flag.ACK) !== 0) {
    throw new ProtocolError("decode frame: SYN and ACK together");
  }
  switch (type) {
    case FrameType.Data:
    case FrameType.WindowUpdate:
      if (streamId === 0) throw new ProtocolError(`decode frame: type ${type} on stream 0`);
      if (type === FrameType.Data && length > maxFrameSize) {
        throw new ProtocolError(
          `decode frame: data frame of ${length} bytes exceeds the maximum ${maxFrameSize}`,
        );
      }
      break;
    case FrameType.Ping:
      if (streamId !== 0) throw new ProtocolError(`decode frame: ping on stream ${streamId}`);
      if (flags !== Flag.SYN && flags !== Flag.ACK) {
        throw new ProtocolError(`decode frame: ping with flags 0x${flags.toString(16)}`);
      }
      break;
    case FrameType.Ack:
      if (streamId !== 0) throw new ProtocolError(`decode frame: ack on stream ${streamId}`);
      if (flags !== 0) {
        throw new ProtocolError(`decode frame: ack with flags 0x${flags.toString(16)}`);
      }
      break;
    case FrameType.GoAway:
      if (streamId !== 0) throw new ProtocolError(`decode frame: go-away on stream ${streamId}`);
      if (flags !== 0) {
        throw new ProtocolError(`decode frame: go-away with flags 0x${flags.toString(16)}`);
      }
      break;
  }
}

/**
 * The incremental decoder. After it has thrown once it stays failed (every call throws the
 * same error).
 *
 * @example
 * ```ts
 * import { Decoder } from "./decoder.ts";
 * import { encodeFrame, FrameType } from "./frame.ts";
 * const bytes = encodeFrame(FrameType.Data, 0, 1, new Uint8Array([7, 8, 9]));
 * const d = new Decoder();
 * d.push(bytes.subarray(0, 5));
 * if (d.next() !== null) throw new Error("frame before it is complete");
 * d.push(bytes.subarray(5));
 * const f = d.next();
 * if (f === null || f.data.length !== 3) throw new Error("unexpected");
 * ```
 */
export class Decoder implements Iterable<Frame> {
  #maxFrameSize: number;
  #acks: boolean;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  /** Header bytes gathered across chunks. */
  #head = new Uint8Array(HEADER_LENGTH);
  #headFill = 0;
  /** The Data frame whose header is complete but whose payload is still coming. */
  #pending: _Pending | null = null;
  #failed: ProtocolError | null = null;
  /** Payloads at least this long are handed out owned (see `push`). */
  #keepBelow = Infinity;

  constructor(options: DecoderOptions = {}) {
    this.#maxFrameSize = options.maxFrameSize ?? 1024 * 1024;
    this.#acks = options.acks ?? false;
  }

  /** Bytes of the last pushed chunk not yet decoded plus header bytes held. */
  get bufferedBytes(): number {
    return this.#chunk.length - this.#pos + this.#headFill;
  }

  /**
   * Adds a chunk. Views of earlier chunks handed out in frames become invalid; the chunk is
   * not copied, so the caller must not change it until the frames from it are consumed.
   * Throws if the previous chunk still has undecoded bytes (call `next()` until null first).
   *
   * With `owned` the caller gives the chunk away (nothing will write to its buffer again), and
   * a Data payload that is a view of it comes out `owned` too, so a stream keeps the view
   * instead of copying it — if the payload is at least 1/{@linkcode MAX_RETAIN_FACTOR} of the
   * whole buffer: a view keeps all of its buffer alive, and a stream's accounting sees only
   * the payload, so a small frame in a large buffer is still copied.
   */
  push(chunk: Uint8Array, owned = false): void {
    if (this.#failed) throw this.#failed;
    if (this.#pos < this.#chunk.length) {
      throw new Error("decoder push: previous chunk not fully decoded");
    }
    this.#chunk = chunk;
    this.#pos = 0;
    this.#keepBelow = owned ? chunk.buffer.byteLength / MAX_RETAIN_FACTOR : Infinity;
  }

  /** The next frame (or piece of one), or null when more bytes are needed. Throws {@linkcode ProtocolError}. */
  next(): Frame | null {
    if (this.#failed) throw this.#failed;
    try {
      return this.#next();
    } catch (e) {
      if (e instanceof ProtocolError) this.#failed = e;
      throw e;
    }
  }

  /** Iterates the frames (and pieces) available now. */
  *[Symbol.iterator](): Iterator<Frame> {
    while (true) {
      const f = this.next();
      if (f === null) return;
      yield f;
    }
  }

  #next(): Frame | null {
    const chunk = this.#chunk;
    let pos = this.#pos;
    const pending = this.#pending;
    if (pending !== null) {
      // Continue a payload that spans chunks: hand on what this chunk has of it.
      const take = Math.min(pending.left, chunk.length - pos);
      if (take === 0) return null;
      pending.left -= take;
      this.#pos = pos + take;
      if (pending.left === 0) this.#pending = null;
      return this.#piece(pending, chunk.subarray(pos, pos + take));
    }
    let h: Uint8Array;
    let hp: number;
    if (this.#headFill === 0 && chunk.length - pos >= HEADER_LENGTH) {
      h = chunk;
      hp = pos;
      pos += HEADER_LENGTH;
    } else {
      const take = Math.min(HEADER_LENGTH - this.#headFill, chunk.length - pos);
      this.#head.set(chunk.subarray(pos, pos + take), this.#headFill);
      this.#headFill += take;
      pos += take;
      this.#pos = pos;
      if (this.#headFill < HEADER_LENGTH) return null;
      this.#headFill = 0;
      h = this.#head;
      hp = 0;
    }
    const version = h[hp];
    const type = h[hp + 1];
    const flags = (h[hp + 2] << 8) | h[hp + 3];
    const streamId = ((h[hp + 4] << 24) | (h[hp + 5] << 16) | (h[hp + 6] << 8) | h[hp + 7]) >>> 0;
    const length = ((h[hp + 8] << 24) | (h[hp + 9] << 16) | (h[hp + 10] << 8) | h[hp + 11]) >>> 0;
    checkHeader(version, type, flags, streamId, length, this.#maxFrameSize, this.#acks);
    this.#pos = pos;
    if (type !== FrameType.Data || length === 0) {
      return { type: type as FrameType, flags, streamId, length, data: EMPTY, owned: true };
    }
    if (chunk.length - pos >= length) {
      this.#pos = pos + length;
      return {
        type: FrameType.Data,
        flags,
        streamId,
        length,
        data: chunk.subarray(pos, pos + length),
        owned: length >= this.#keepBelow,
      };
    }
    // The payload goes on in later chunks: hand on what is here now, the rest as it comes.
    const take = chunk.length - pos;
    const p: _Pending = { flags, streamId, left: length - take, first: true };
    this.#pos = chunk.length;
    this.#pending = p;
    return take === 0 ? null : this.#piece(p, chunk.subarray(pos));
  }

  /**
   * One piece of a Data frame that spans chunks: SYN and ACK ride on the first piece, FIN and
   * RST on the last, so a receiver that handles each piece as a frame sees the stream open
   * before its data and end after it.
   */
  #piece(p: _Pending, data: Uint8Array): Frame {
    const last = p.left === 0;
    const flags = (p.first ? p.flags & (Flag.SYN | Flag.ACK) : 0) |
      (last ? p.flags & (Flag.FIN | Flag.RST) : 0);
    p.first = false;
    return {
      type: FrameType.Data,
      flags,
      streamId: p.streamId,
      length: data.length,
      data,
      owned: data.length >= this.#keepBelow,
      partial: !last,
    };
  }
}
