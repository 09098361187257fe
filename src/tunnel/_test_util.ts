/**
 * Helpers for the tunnel tests: session pairs over a memory pipe, a relay that can inject raw
 * bytes, and readers of raw frames.
 *
 * @module
 */
import type { Conn } from "../stack/dialer.ts";
import type { SessionOptions } from "./config.ts";
import { Decoder } from "./decoder.ts";
import type { Frame } from "./frame.ts";
import { memoryPipe, type MemoryPipeOptions } from "./pipe.ts";
import { Session } from "./session.ts";

/** Two connected sessions and their transports. */
export interface Pair extends AsyncDisposable {
  client: Session;
  server: Session;
}

/** A client and a server session over one memory pipe. */
export function sessionPair(
  options: { client?: Partial<SessionOptions>; server?: Partial<SessionOptions> } = {},
  pipe: MemoryPipeOptions = {},
): Pair {
  const [a, b] = memoryPipe(pipe);
  const client = new Session(a, { ...options.client, client: true });
  const server = new Session(b, { ...options.server, client: false });
  return {
    client,
    server,
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

/** The header of a frame seen on the wire (payloads are not kept). */
export interface SeenFrame {
  type: number;
  flags: number;
  streamId: number;
  length: number;
}

/**
 * Wraps `conn` so every frame read through it is recorded (headers only) in `frames`: what the
 * session on this end received from its peer, in order.
 */
export function tapReads(conn: Conn): { conn: Conn; frames: SeenFrame[] } {
  const frames: SeenFrame[] = [];
  const d = new Decoder({ maxFrameSize: 0xffffffff });
  const carry = { frame: null };
  return {
    frames,
    conn: {
      async read(p: Uint8Array): Promise<number | null> {
        const n = await conn.read(p);
        if (n !== null && n > 0) {
          d.push(p.slice(0, n));
          for (const f of wholeFrames(d, carry)) {
            frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, length: f.length });
          }
        }
        return n;
      },
      write: (p) => conn.write(p),
      closeWrite: () => conn.closeWrite(),
      close: () => conn.close(),
    },
  };
}

/**
 * Like {@linkcode sessionPair}, and `toClient` records every frame the client session read from
 * the server (window updates, ping answers, ...).
 */
export function tappedSessionPair(
  options: { client?: Partial<SessionOptions>; server?: Partial<SessionOptions> } = {},
  pipe: MemoryPipeOptions = {},
): Pair & { toClient: SeenFrame[] } {
  const [a, b] = memoryPipe(pipe);
  const tap = tapReads(a);
  const client = new Session(tap.conn, { ...options.client, client: true });
  const server = new Session(b, { ...options.server, client: false });
  return {
    client,
    server,
    toClient: tap.frames,
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

/**
 * Polls `cond` every few ms until it holds; throws naming `what` when it has not within
 * `timeoutMs`. For waiting on something that happens asynchronously, instead of sleeping a
 * fixed time and hoping it happened (the deadline is generous: only a broken build reaches it).
 */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** `p`, or a rejection naming `what` if it has not settled within `ms` (instead of a hang). */
export async function withDeadline<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads exactly `n` bytes from `conn` (throws at end of stream). */
export async function readExactly(conn: Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error(`end of stream after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

/** Reads `conn` to end of stream. */
export async function readAll(conn: Conn, bufSize = 64 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(bufSize);
  let total = 0;
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Hex SHA-256 of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic pseudo-random bytes. */
export function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reads raw frames from `conn` until `stop` returns true or end of stream. */
export async function readFramesUntil(
  conn: Conn,
  stop: (f: Frame) => boolean,
): Promise<Frame[]> {
  const d = new Decoder();
  const carry = { frame: null };
  const buf = new Uint8Array(64 * 1024);
  const out: Frame[] = [];
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return out;
    d.push(buf.subarray(0, n));
    for (const f of wholeFrames(d, carry)) {
      out.push({ ...f, owned: true });
      if (stop(f)) return out;
    }
  }
}

/**
 * Two sessions joined through a relay that copies bytes both ways and lets the test inject
 * raw bytes towards the server.
 */
export function relayedPair(options: { server?: Partial<SessionOptions> } = {}): Pair & {
  injectToServer(bytes: Uint8Array): Promise<void>;
} {
  const [c, r1] = memoryPipe();
  const [r2, s] = memoryPipe();
  const client = new Session(c, { client: true });
  const server = new Session(s, { ...options.server, client: false });
  const pump = async (from: Conn, to: Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        await to.write(buf.subarray(0, n));
      }
    } catch {
      // the other side closed
    }
    to.close();
    from.close();
  };
  const pumps = Promise.all([pump(r1, r2), pump(r2, r1)]);
  return {
    client,
    server,
    async injectToServer(bytes: Uint8Array) {
      await r2.write(bytes);
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
      await pumps;
    },
  };
}

/**
 * What a hashicorp/yamux client (default config: 256 KiB window) puts on the wire for: open a
 * stream, write "hello", ping, close the stream, close the session. Written by hand (Go is
 * not available here to capture them) from hashicorp/yamux's spec.md
 * (https://github.com/hashicorp/yamux/blob/master/spec.md; "Framing": Version 8 bits, always 0; Type 8 bits, 0x0 Data, 0x1
 * Window Update, 0x2 Ping, 0x3 Go Away; Flags 16 bits, 0x1 SYN, 0x2 ACK, 0x4 FIN, 0x8 RST;
 * StreamID 32 bits, client ids odd, 0 for the session; Length 32 bits; all fields big endian;
 * "Opening a stream": a data or window update frame with SYN; "Closing a stream": FIN on a data
 * or window update frame; Ping: SYN to ask, opaque value echoed; Go Away code 0x0 normal), and
 * from what its stream.go sends: sendWindowUpdate() on open, a WindowUpdate with SYN and delta
 * MaxStreamWindowSize - recvWindow = 0; Write(), a Data frame (no flags once SYN went out);
 * Close(), sendClose(): a WindowUpdate with FIN and length 0. Not produced by this project's
 * encoder.
 */
export const YAMUX_CLIENT_VECTOR: { name: string; bytes: number[] }[] = [
  // type 1 Window Update, flags 0x0001 SYN, stream 1, length (window delta) 0
  { name: "open stream 1", bytes: [0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0] },
  // type 0 Data, no flags, stream 1, length 5, then the payload
  {
    name: "data on stream 1",
    bytes: [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0x68, 0x65, 0x6c, 0x6c, 0x6f],
  },
  // type 2 Ping, flags 0x0001 SYN, stream 0, opaque 0x00000102 (its 259th ping)
  { name: "ping", bytes: [0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2] },
  // type 1 Window Update, flags 0x0004 FIN, stream 1, length 0
  { name: "close stream 1", bytes: [0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0] },
  // type 3 Go Away, no flags, stream 0, code 0 (normal termination)
  { name: "go away", bytes: [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
];

/**
 * The frames `decoder` yields now, with the pieces of a Data frame that spans chunks joined
 * into one frame again (`carry` holds a frame still incomplete at the end of a chunk).
 */
export function wholeFrames(
  decoder: Iterable<Frame>,
  carry: { frame: Frame | null },
): Frame[] {
  const out: Frame[] = [];
  for (const f of decoder) {
    const prev = carry.frame;
    const joined: Frame = prev === null ? { ...f, data: f.data.slice() } : {
      ...prev,
      flags: prev.flags | f.flags,
      length: prev.length + f.length,
      data: new Uint8Array([...prev.data, ...f.data]),
    };
    if (f.partial) carry.frame = joined;
    else {
      carry.frame = null;
      delete joined.partial;
      out.push(joined);
    }
  }
  return out;
}
