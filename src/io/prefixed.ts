/**
 * A connection with bytes already read put back in front: what a server that looked at the
 * first bytes to choose a protocol hands on to the protocol's reader.
 *
 * @module
 */
import type { Conn } from "./conn.ts";

/**
 * `conn`, reading `prefix` first. Writes and the rest go straight to `conn`.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "./pipe.ts";
 * import { prefixed } from "./prefixed.ts";
 * const [a, b] = memoryPipe();
 * await a.write(new Uint8Array([2, 3]));
 * const c = prefixed(b, new Uint8Array([1]));
 * const buf = new Uint8Array(3);
 * let n = (await c.read(buf))!;
 * n += (await c.read(buf.subarray(n)))!;
 * if (n !== 3 || buf.join() !== "1,2,3") throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export function prefixed(conn: Conn, prefix: Uint8Array): Conn {
  let rest: Uint8Array | null = prefix.length > 0 ? prefix : null;
  const out: Conn = {
    read(p: Uint8Array): Promise<number | null> {
      if (rest === null) return conn.read(p);
      const n = Math.min(p.length, rest.length);
      p.set(rest.subarray(0, n));
      rest = n === rest.length ? null : rest.subarray(n);
      return Promise.resolve(n);
    },
    write: (p) => conn.write(p),
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
  };
  if (conn.readChunk) {
    out.readChunk = (max: number) => {
      if (rest === null) return conn.readChunk!(max);
      const chunk = rest.slice(0, max);
      rest = chunk.length === rest.length ? null : rest.subarray(chunk.length);
      return Promise.resolve(chunk);
    };
  }
  if (conn.writeWithHeadroom) {
    Object.defineProperty(out, "writeHeadroom", { value: conn.writeHeadroom });
    out.writeWithHeadroom = (buf) => conn.writeWithHeadroom!(buf);
  }
  return out;
}
