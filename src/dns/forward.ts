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

/** Length of the header and question section of a query, or -1 if malformed. */
function questionEnd(m: Uint8Array): number {
  let o = 12;
  while (o < m.length) {
    const len = m[o];
    if (len === 0) return o + 1 + 4 <= m.length ? o + 1 + 4 : -1;
    if (len > 63) return -1;
    o += len + 1;
  }
  return -1;
}

/**
 * One query over UDP, from a fresh connected socket (a random source port) with a fresh random ID from
 * the system's CSPRNG; an answer counts only if it comes from the server's address and port,
 * carries that ID and repeats the question. The client's ID is put back on the answer.
 */
function udpQuery(
  server: string,
  port: number,
  query: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  const qEnd = questionEnd(query);
  const out = query.slice();
  crypto.getRandomValues(out.subarray(0, 2));
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(server.includes(":") ? "udp6" : "udp4");
    const timer = setTimeout(
      () => done(new Error(`no answer from ${server} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (err: Error | null, answer?: Uint8Array) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(answer!);
    };
    sock.on("error", (err) => done(err));
    sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      if (rinfo.port !== port || msg.length < 12 || msg[0] !== out[0] || msg[1] !== out[1]) return;
      if (qEnd > 0) {
        if (msg.length < qEnd) return;
        for (let i = 12; i < qEnd; i++) {
          // Names compare case-insensitively (a server may answer in other case).
          const a = msg[i], b = query[i];
          if (a !== b && (a | 0x20) !== (b | 0x20)) return;
        }
      }
      const answer = new Uint8Array(msg);
      answer[0] = query[0];
      answer[1] = query[1];
      done(null, answer);
    });
    // Connected: the kernel drops datagrams from any other address and port.
    sock.connect(port, server, () => sock.send(out));
  });
}

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
      const answer = await udpQuery(server, port, query, timeoutMs);
      const truncated = (answer[2] & 0x02) !== 0;
      return truncated ? await tcpQuery(server, port, query, timeoutMs) : answer;
    } catch (err) {
      errors.push(`${server}: ${(err as Error).message}`);
    }
  }
  throw new Error(`DNS query failed: ${errors.join("; ")}`);
}
