/**
 * Forwards a raw DNS message to the cluster's DNS server, as a pod's resolver would: UDP first,
 * TCP when the answer is truncated, the next server when one does not answer.
 *
 * @module
 */
import dgram from "node:dgram";

/** Options for {@linkcode forwardDns}. */
export interface ForwardOptions {
  /** Milliseconds to wait for each server over UDP. Default 2000. */
  timeoutMs?: number;
  /** Port of the servers. Default 53. */
  port?: number;
}

/**
 * One UDP socket per address family, shared by every forwarded query: each query leaves with a
 * fresh random ID (so answers cannot be guessed), and the answer gets the client's ID back.
 * Opening a socket per query cost about 0.1 ms each.
 */
class UdpForwarder {
  readonly #sockets = new Map<string, dgram.Socket>();
  readonly #pending = new Map<
    string,
    { id0: number; id1: number; server: string; resolve: (a: Uint8Array) => void }
  >();

  #socket(family: "udp4" | "udp6"): dgram.Socket {
    let sock = this.#sockets.get(family);
    if (sock !== undefined) return sock;
    sock = dgram.createSocket(family);
    sock.on("error", () => {}); // ICMP errors: the query just times out
    sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      if (msg.length < 12) return;
      const key = `${family}/${(msg[0] << 8) | msg[1]}`;
      const p = this.#pending.get(key);
      if (p === undefined || p.server !== rinfo.address) return; // not ours, or spoofed
      this.#pending.delete(key);
      const answer = new Uint8Array(msg);
      answer[0] = p.id0;
      answer[1] = p.id1;
      p.resolve(answer);
    });
    sock.unref();
    this.#sockets.set(family, sock);
    return sock;
  }

  query(server: string, port: number, query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const family = server.includes(":") ? "udp6" : "udp4";
    const sock = this.#socket(family);
    let id: number;
    do id = (Math.random() * 65536) | 0; while (this.#pending.has(`${family}/${id}`));
    const key = `${family}/${id}`;
    const out = query.slice();
    out[0] = id >> 8;
    out[1] = id & 0xff;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new Error(`no answer from ${server} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(key, {
        id0: query[0],
        id1: query[1],
        server,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      });
      sock.send(out, port, server, (err: Error | null) => {
        if (err === null) return;
        clearTimeout(timer);
        this.#pending.delete(key);
        reject(err);
      });
    });
  }
}

const forwarder = new UdpForwarder();

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error("the DNS server closed the TCP connection early");
    got += r;
  }
  return out;
}

async function tcpQuery(
  server: string,
  port: number,
  query: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: server, port });
  const timer = setTimeout(() => conn.close(), timeoutMs * 2);
  try {
    const msg = new Uint8Array(2 + query.length);
    new DataView(msg.buffer).setUint16(0, query.length);
    msg.set(query, 2);
    let off = 0;
    while (off < msg.length) off += await conn.write(msg.subarray(off));
    const len = new DataView((await readExactly(conn, 2)).buffer).getUint16(0);
    return await readExactly(conn, len);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/**
 * Sends `query` (a whole DNS message) to each server in turn until one answers; switches to TCP
 * for a truncated UDP answer. Throws when none answers.
 */
export async function forwardDns(
  query: Uint8Array,
  servers: string[],
  options: ForwardOptions = {},
): Promise<Uint8Array> {
  if (query.length < 12) {
    throw new TypeError(`DNS query of ${query.length} bytes is shorter than a header`);
  }
  if (servers.length === 0) throw new Error("no DNS server configured (empty resolv.conf)");
  const timeoutMs = options.timeoutMs ?? 2000, port = options.port ?? 53;
  const errors: string[] = [];
  for (const server of servers) {
    try {
      const answer = await forwarder.query(server, port, query, timeoutMs);
      const truncated = (answer[2] & 0x02) !== 0;
      return truncated ? await tcpQuery(server, port, query, timeoutMs) : answer;
    } catch (err) {
      errors.push(`${server}: ${(err as Error).message}`);
    }
  }
  throw new Error(`DNS query failed: ${errors.join("; ")}`);
}
