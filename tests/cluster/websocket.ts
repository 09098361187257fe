/**
 * A small RFC 6455 WebSocket server side over a `node:http` upgrade socket, so the stand-in
 * can negotiate subprotocols exactly like kube-apiserver/kubelet (golang.org/x/net/websocket:
 * the first offered protocol the server supports wins; a comma-separated list with or without
 * spaces is fine; an offer with no supported protocol is refused with `403 Forbidden`), and
 * control backpressure itself.
 *
 * Frames are handled the way the kubelet's golang.org/x/net/websocket (vendored in
 * kubernetes/kubernetes, `vendor/golang.org/x/net/websocket/`) handles them, because the
 * kubelet's wsstream reads with `websocket.Message.Receive`:
 *
 * - every data frame is its own message (`Codec.Receive` "receives single frame"; a
 *   continuation frame keeps the payload type of the frame before it, `hybiFrameHandler.
 *   HandleFrame`), so a fragmented client message is NOT reassembled;
 * - a frame whose payload is larger than `DefaultMaxPayloadBytes` (32 MiB) ends the connection
 *   (`ErrFrameTooLarge`, and wsstream's `handle` loop stops on any receive error);
 * - client frames must be masked, else a Close with 1002 (`closeStatusProtocolError`);
 * - pings are answered with a pong carrying the same payload;
 * - a Close from the client is not echoed: `HandleFrame` returns `io.EOF`, wsstream's `handle`
 *   returns, and `Conn.Close()` writes its own Close with `closeStatusNormal` (1000, the
 *   `defaultCloseStatus`) and closes the connection. Close frames carry the 2-byte status only
 *   (`WriteClose`), never a reason.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** `websocket.DefaultMaxPayloadBytes`: 32 MiB. */
export const MAX_PAYLOAD_BYTES = 32 << 20;
/** `closeStatusNormal`, the status of every Close `Conn.Close()` writes. */
const CLOSE_NORMAL = 1000;
/** `closeStatusProtocolError`. */
const CLOSE_PROTOCOL_ERROR = 1002;

/** Opcodes of data messages. */
export type MessageType = "binary" | "text";

/** Splits a `Sec-WebSocket-Protocol` header the way x/net/websocket does (comma, trimmed). */
export function offeredProtocols(header: string | undefined): string[] {
  const value = (header ?? "").trim();
  if (!value) return [];
  return value.split(",").map((p) => p.trim());
}

/**
 * Picks the subprotocol: the client's first offer that `supported` contains; `""` when the
 * client offered none and `""` is supported; null when nothing matches (answer 403).
 */
export function negotiate(offered: string[], supported: string[]): string | null {
  const list = offered.length ? offered : [""];
  for (const p of list) if (supported.includes(p)) return p;
  return null;
}

/** Writes a bare HTTP error on a socket that was to be upgraded, then closes it. */
export function refuseUpgrade(socket: Duplex, code: number, text: string, body = ""): void {
  socket.end(`HTTP/1.1 ${code} ${text}\r\n\r\n${body}`);
}

/** One accepted WebSocket connection. */
export class WebSocketConnection {
  readonly #socket: Duplex;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Payload type of the last text or binary frame (`hybiFrameHandler.payloadType`). */
  #payloadType: MessageType = "text";
  #closed = false;
  readonly #closedSignal = Promise.withResolvers<void>();
  #closeSent = false;
  #paused = false;
  /** The TCP connection under the socket's TLS layer, when it has one (see {@linkcode pause}). */
  readonly #tcp: ReadHandle | null;
  /** Called with each complete data message. */
  onmessage: (data: Buffer, type: MessageType) => void = () => {};
  /** Called once when the connection is gone (close frame, EOF or error). */
  onclose: () => void = () => {};

  constructor(socket: Duplex, head: Buffer) {
    this.#socket = socket;
    this.#tcp = tcpHandle(socket);
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("end", () => this.#gone());
    socket.on("close", () => this.#gone());
    socket.on("error", () => this.#gone());
    if (head.length) queueMicrotask(() => this.#receive(head));
  }

  /**
   * Completes the handshake (101 with `Sec-WebSocket-Accept` and, when one was chosen, the
   * `Sec-WebSocket-Protocol`) and returns the connection.
   */
  static accept(
    key: string,
    protocol: string,
    socket: Duplex,
    head: Buffer,
  ): WebSocketConnection {
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${accept}`,
    ];
    if (protocol) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    socket.write(lines.join("\r\n") + "\r\n\r\n");
    (socket as Duplex & { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    return new WebSocketConnection(socket, head);
  }

  /** True once closed (by either side). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once closed (by either side). */
  get closedPromise(): Promise<void> {
    return this.#closedSignal.promise;
  }

  /** Bytes queued in the socket and not yet sent. */
  get bufferedAmount(): number {
    return (this.#socket as Duplex & { writableLength: number }).writableLength ?? 0;
  }

  /**
   * Resolves when the socket's queue is below its high-water mark again (at once when it is
   * not above it), or the connection closed.
   */
  drained(): Promise<void> {
    const needDrain = (this.#socket as Duplex & { writableNeedDrain?: boolean }).writableNeedDrain;
    if (this.#closed || !needDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#socket.off("drain", done);
        this.#socket.off("close", done);
        resolve();
      };
      this.#socket.on("drain", done);
      this.#socket.on("close", done);
    });
  }

  /**
   * Stops reading from the client (TCP backpressure) until {@linkcode resume}, as the kubelet
   * does while its `io.Pipe` is full.
   *
   * Pausing the stream is not enough on Deno's `node:tls` (2.9.x): its TLS wrap keeps reading the
   * TCP connection while the socket is paused, and `TLSWrap.readStop()` does not stop those reads,
   * so everything the client sends meanwhile is read, decrypted and kept, and `resume()` hands it
   * over as one `data` chunk (up to 342 MB in one measured upload). The client then never feels
   * backpressure and the stand-in copies and queues hundreds of MB. So the TCP handle under the
   * TLS wrap is stopped too ({@linkcode tcpHandle}).
   */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
    this.#tcp?.readStop();
  }

  /** Reads from the client again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#closed) this.#tcp?.readStart();
    this.#socket.resume();
  }

  /**
   * Sends one message made of `parts` (concatenated, not copied). Returns false when the
   * socket's queue is above its high-water mark: wait for {@linkcode drained}.
   */
  send(parts: Uint8Array[], type: MessageType = "binary"): boolean {
    if (this.#closed || this.#closeSent) return false;
    const len = parts.reduce((n, p) => n + p.length, 0);
    const socket = this.#socket;
    socket.cork();
    socket.write(frameHeader(type === "binary" ? 2 : 1, len));
    let ok = true;
    for (const p of parts) ok = socket.write(p);
    socket.uncork();
    return ok;
  }

  /**
   * Sends a Close with `code` (default 1000) and ends the socket, like `Conn.Close()`:
   * `WriteClose(status)` (the 2-byte status, no reason), then the connection is closed. What is
   * queued before it is written first (the socket's `end()` flushes before its FIN).
   */
  close(code = CLOSE_NORMAL): void {
    if (this.#closed) return;
    this.#writeClose(code);
    this.#socket.end();
    // Do not wait forever for the client to read.
    setTimeout(() => this.#socket.destroy(), 2000).unref?.();
  }

  #writeClose(code: number): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.#socket.write(Buffer.concat([frameHeader(8, 2), payload]));
  }

  /** Drops the TCP connection without a close frame. */
  destroy(): void {
    this.#socket.destroy();
    this.#gone();
  }

  #gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedSignal.resolve();
    this.onclose();
  }

  #receive(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (!this.#closed) {
      const frame = this.#parse();
      if (!frame) return;
      this.#handle(frame.opcode, frame.payload);
    }
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0].length >= n) return this.#chunks[0];
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all];
    return all;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first.length === n) {
      out = first;
      this.#chunks.shift();
    } else if (first.length > n) {
      out = first.subarray(0, n);
      this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.#chunks[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }

  #parse(): { opcode: number; payload: Buffer } | null {
    if (this.#buffered < 2) return null;
    let h = this.#peek(2);
    const opcode = h[0] & 0x0f;
    const masked = (h[1] & 0x80) !== 0;
    let len = h[1] & 0x7f;
    let headerLen = 2;
    if (len === 126) headerLen = 4;
    else if (len === 127) headerLen = 10;
    if (masked) headerLen += 4;
    if (this.#buffered < headerLen) return null;
    h = this.#peek(headerLen);
    if (len === 126) len = h.readUInt16BE(2);
    else if (len === 127) len = Number(h.readBigUInt64BE(2));
    if (!masked) {
      // hybiFrameHandler.HandleFrame: "The client MUST mask all frames sent to the server."
      this.close(CLOSE_PROTOCOL_ERROR);
      return null;
    }
    if (len > MAX_PAYLOAD_BYTES && opcode < 8) {
      // Codec.Receive: ErrFrameTooLarge; wsstream's handle() stops, Conn.Close() follows.
      this.close();
      return null;
    }
    if (this.#buffered < headerLen + len) return null;
    const header = this.#take(headerLen);
    const mask = header.subarray(headerLen - 4, headerLen);
    const payload = len ? this.#take(len) : Buffer.alloc(0);
    unmask(payload, mask);
    return { opcode, payload };
  }

  #handle(opcode: number, payload: Buffer): void {
    switch (opcode) {
      case 8: // close: not echoed; Conn.Close() answers with 1000 and closes
        this.#writeClose(CLOSE_NORMAL);
        this.#socket.end();
        this.#gone();
        return;
      case 9: // ping
        this.#socket.write(Buffer.concat([frameHeader(10, payload.length), payload]));
        return;
      case 10: // pong
        return;
      case 0: // continuation: a message of its own, with the payload type of the frame before
        return this.onmessage(payload, this.#payloadType);
      case 1:
      case 2:
        this.#payloadType = opcode === 2 ? "binary" : "text";
        return this.onmessage(payload, this.#payloadType);
      default:
        // HandleFrame passes frames of other opcodes through; Message.Receive returns their
        // payload as the message.
        return this.onmessage(payload, "binary");
    }
  }
}

/** What {@linkcode tcpHandle} returns: a stream handle whose reads can be stopped. */
export interface ReadHandle {
  readStart(): number;
  readStop(): number;
}

/**
 * The TCP handle under a `node:tls` socket on Deno (`socket._handle._nativeTcpHandle`, the handle
 * its TLS wrap reads from), or null (another runtime, or not a TLS socket): stopping that handle
 * is what stops reads from the client (see `WebSocketConnection.pause`).
 */
export function tcpHandle(socket: Duplex): ReadHandle | null {
  const handle = (socket as Duplex & { _handle?: { _nativeTcpHandle?: Partial<ReadHandle> } })
    ._handle?._nativeTcpHandle;
  return typeof handle?.readStop === "function" && typeof handle.readStart === "function"
    ? handle as ReadHandle
    : null;
}

function frameHeader(opcode: number, len: number): Buffer {
  let h: Buffer;
  if (len < 126) {
    h = Buffer.allocUnsafe(2);
    h[1] = len;
  } else if (len < 65536) {
    h = Buffer.allocUnsafe(4);
    h[1] = 126;
    h.writeUInt16BE(len, 2);
  } else {
    h = Buffer.allocUnsafe(10);
    h[1] = 127;
    h.writeBigUInt64BE(BigInt(len), 2);
  }
  h[0] = 0x80 | opcode;
  return h;
}

/** XORs `data` with the 4-byte mask in place, four bytes at a time where aligned. */
function unmask(data: Uint8Array, mask: Uint8Array): void {
  const n = data.length;
  let i = 0;
  // Align to 4 bytes so a Uint32Array view can be used.
  while (i < n && (data.byteOffset + i) % 4 !== 0) {
    data[i] ^= mask[i & 3];
    i++;
  }
  const words = (n - i) >>> 2;
  if (words > 0) {
    const rot = i & 3;
    const m = new Uint8Array(4);
    for (let k = 0; k < 4; k++) m[k] = mask[(k + rot) & 3];
    const m32 = new Uint32Array(m.buffer)[0];
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= m32;
    i += words * 4;
  }
  while (i < n) {
    data[i] ^= mask[i & 3];
    i++;
  }
}
