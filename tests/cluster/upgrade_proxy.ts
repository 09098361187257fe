/**
 * The API server's side of an upgraded request that a kubelet answers, like kube-apiserver's
 * `UpgradeAwareHandler.tryUpgrade` (k8s.io/apimachinery `pkg/util/proxy/upgradeaware.go`), which
 * `pods/{name}/portforward` uses (`pkg/registry/core/pod/rest/subresources.go`,
 * `PortForwardREST.Connect`, `newThrottledUpgradeAwareProxyHandler`):
 *
 * - dial the kubelet over TLS with the API server's kubelet client certificate, verifying the
 *   kubelet's serving certificate; a failed dial is `error dialing backend: …` (`dial`), which
 *   the API server answers with a 500 Status;
 * - write the client's request there with the kubelet's URL (`clone.URL = &location`), the
 *   client's Host, its headers (without `Authorization`, which the authentication filter
 *   removed: k8s.io/apiserver `pkg/endpoints/filters/authentication.go`) and `X-Forwarded-For`
 *   with the client's address appended (k8s.io/apimachinery `pkg/util/net/http.go`,
 *   `AppendForwardedForHeader`), then the bytes the client sent after its request;
 * - read the kubelet's response head (`getResponse`); one that is neither `101` nor an error
 *   (400 or more) is `invalid upgrade response: status code N`; otherwise those raw bytes go to
 *   the client as they are, then bytes are copied both ways, unchanged (no WebSocket framing
 *   here), until one direction ends; then both connections close.
 *
 * Each direction has backpressure, like `io.Copy`'s blocking writes: a side is no longer read
 * while more than {@linkcode HIGH_WATER} bytes of it wait to be written to the other, until that
 * queue has drained. Under Deno's `node:tls` pausing a socket does not stop its TLS layer from
 * reading, so the TCP handle under it is stopped too (`tcpHandle`, see `WebSocketConnection.pause`
 * in `websocket.ts`).
 *
 * Both connections have TCP_NODELAY, as every Go TCP connection has. (The kubelet connection is
 * `node:tls`: `Deno.connectTls` sets no TCP_NODELAY and has no way to, and `Deno.startTls` sends no
 * client certificate; with Nagle on that hop a new port-forward took about 40 ms longer to its
 * first byte.)
 *
 * @module
 */
import tls from "node:tls";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { type ReadHandle, tcpHandle } from "./websocket.ts";

/** Where and how the API server dials the kubelet. */
export interface Backend {
  hostname: string;
  port: number;
  /** CA that signed the kubelet's serving certificate (`--kubelet-certificate-authority`). */
  caPem: string;
  /** The API server's kubelet client certificate and key. */
  certPem: string;
  keyPem: string;
}

/** The request line and headers written to the kubelet. */
export interface BackendRequest {
  method: string;
  /** Path and query on the kubelet, e.g. `/portForward/default/web?port=8080`. */
  target: string;
  /** Header lines, in order, without the request line (Host first). */
  headers: [string, string][];
}

/** What {@linkcode proxyUpgrade} did: proxied (the kubelet's status), or an error to answer. */
export type ProxyResult = { code: number } | { error: string };

/** Bytes of one side waiting to be written to the other before that side is no longer read. */
export const HIGH_WATER = 1024 * 1024;
/** Largest response head accepted from the kubelet. */
const MAX_HEAD = 64 * 1024;

const live = new Set<() => void>();

/** Closes every proxied connection (the server is stopping). */
export function closeAllProxies(): void {
  for (const stop of [...live]) stop();
}

/** Go's `textproto.CanonicalMIMEHeaderKey` for header names made of letters, digits and `-`. */
export function canonicalHeader(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
}

type NoDelay = { setNoDelay?: (v: boolean) => void };

/**
 * Dials `backend`, sends `request` and `head`, and once the kubelet has answered hands the
 * client `socket` over to a two-way byte copy. Resolves with the kubelet's status code, or with
 * an error text when nothing was written to the client yet (the caller answers with a Status).
 */
export async function proxyUpgrade(
  socket: Duplex,
  head: Uint8Array,
  backend: Backend,
  request: BackendRequest,
): Promise<ProxyResult> {
  (socket as Duplex & NoDelay).setNoDelay?.(true);
  // Nothing is read from the client until the kubelet has answered.
  const clientTcp = tcpHandle(socket);
  socket.pause();
  clientTcp?.readStop();
  let up: TLSSocket;
  try {
    up = await dial(backend);
  } catch (err) {
    return { error: `error dialing backend: ${goDialError(err as Error, backend)}` };
  }
  up.setNoDelay(true);
  let response: { code: number; raw: Buffer };
  try {
    const lines = [`${request.method} ${request.target} HTTP/1.1`];
    for (const [k, v] of request.headers) lines.push(`${k}: ${v}`);
    up.write(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), head]));
    response = await readResponseHead(up);
  } catch (err) {
    up.destroy();
    return { error: `error sending request: ${(err as Error).message}` };
  }
  if (response.code !== 101 && response.code < 400) {
    up.destroy();
    return { error: `invalid upgrade response: status code ${response.code}` };
  }
  if (socket.destroyed) {
    // The client left while the kubelet was dialled: nothing to copy.
    up.destroy();
    return { code: response.code };
  }
  copyBothWays(socket, clientTcp, up, response.raw);
  return { code: response.code };
}

function dial(backend: Backend): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const up = tls.connect({
      host: backend.hostname,
      port: backend.port,
      ca: backend.caPem,
      cert: backend.certPem,
      key: backend.keyPem,
    });
    up.once("error", reject);
    up.once("secureConnect", () => {
      up.off("error", reject);
      if (up.authorized) return resolve(up);
      up.destroy();
      reject(
        new Error(`tls: ${up.authorizationError ?? "the kubelet's certificate is not trusted"}`),
      );
    });
  });
}

/** Reads up to the end of the response head; returns its status and every byte read. */
function readResponseHead(up: TLSSocket): Promise<{ code: number; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    let raw: Buffer = Buffer.alloc(0);
    const done = (err: Error | null) => {
      up.off("data", onData);
      up.off("end", onEnd);
      up.off("close", onEnd);
      up.off("error", done);
      if (err) return reject(err);
      // Later bytes wait in the paused stream until the copy starts.
      up.pause();
      const first = raw.subarray(0, raw.indexOf("\r\n")).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(first);
      if (!m) return reject(new Error(`malformed HTTP response ${JSON.stringify(first)}`));
      resolve({ code: Number(m[1]), raw });
    };
    const onData = (chunk: Buffer) => {
      raw = raw.length ? Buffer.concat([raw, chunk]) : chunk;
      if (raw.indexOf("\r\n\r\n") >= 0) done(null);
      else if (raw.length > MAX_HEAD) done(new Error("the kubelet's response head is too large"));
    };
    const onEnd = () => done(new Error("the kubelet closed the connection before answering"));
    up.on("data", onData);
    up.once("end", onEnd);
    up.once("close", onEnd);
    up.once("error", done);
  });
}

/** The two `io.Copy`s of tryUpgrade; the first to finish closes both connections. */
function copyBothWays(
  client: Duplex,
  clientTcp: ReadHandle | null,
  up: TLSSocket,
  raw: Buffer,
): void {
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    live.delete(finish);
    // Each end flushes what is queued for it, then FIN; neither waits for ever on a stuck peer.
    for (const s of [client, up]) {
      s.end();
      const timer = setTimeout(() => s.destroy(), 2000);
      s.once("close", () => clearTimeout(timer));
    }
  };
  live.add(finish);
  client.write(raw);
  const toUp = copy(client, clientTcp, up, () => finished);
  const toClient = copy(up, tcpHandle(up), client, () => finished);
  for (const s of [client, up]) {
    s.on("end", finish);
    s.on("close", finish);
    s.on("error", finish);
  }
  toUp.resume();
  toClient.resume();
}

/** Copies `from` to `to`, not reading `from` while more than HIGH_WATER bytes wait in `to`. */
function copy(
  from: Duplex,
  fromTcp: ReadHandle | null,
  to: Duplex,
  finished: () => boolean,
): { resume: () => void } {
  let paused = true; // both sides start paused (proxyUpgrade, readResponseHead)
  const pause = () => {
    if (paused) return;
    paused = true;
    from.pause();
    fromTcp?.readStop();
  };
  const resume = () => {
    if (!paused || finished()) return;
    paused = false;
    fromTcp?.readStart();
    from.resume();
  };
  from.on("data", (chunk: Buffer) => {
    if (finished()) return;
    to.write(chunk);
    // Past HIGH_WATER the last write returned false, so "drain" comes once the queue is empty.
    if ((to as Duplex & { writableLength: number }).writableLength > HIGH_WATER) pause();
  });
  to.on("drain", resume);
  return { resume };
}

/** Go's dial error text (`dial tcp <addr>: connect: <errno text>`) for a Node or Deno error. */
function goDialError(err: Error, backend: Backend): string {
  const why = err.message.replace(/\s*\(os error \d+\)\s*$/, "");
  const code = (err as Error & { code?: string }).code;
  const errno: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    EHOSTUNREACH: "no route to host",
    ENETUNREACH: "network is unreachable",
    ETIMEDOUT: "connection timed out",
  };
  if (code && errno[code]) {
    return `dial tcp ${backend.hostname}:${backend.port}: connect: ${errno[code]}`;
  }
  return why;
}
