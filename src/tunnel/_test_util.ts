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
  const buf = new Uint8Array(64 * 1024);
  const out: Frame[] = [];
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return out;
    d.push(buf.subarray(0, n));
    for (const f of d) {
      out.push({ ...f, data: f.data.slice(), owned: true });
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
