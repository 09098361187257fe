/**
 * The kubelet/containerd side of `pods/{name}/portforward` over WebSocket. Each rule below names
 * the source it copies (kubernetes/kubernetes unless said otherwise):
 *
 * - subprotocols `v4.channel.k8s.io` (binary), `v4.base64.channel.k8s.io` (text, base64) and
 *   none at all (binary, no `Sec-WebSocket-Protocol` in the answer):
 *   `staging/src/k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go`,
 *   `handleWebSocketStreams` (`wsstream.NewConn` with `""`, `v4BinaryWebsocketProtocol`,
 *   `v4Base64WebsocketProtocol`);
 * - per requested port `i`: data channel `2i` (`ReadWriteChannel`), error channel `2i+1`
 *   (`WriteChannel`: what a client sends on it is dropped); right after the upgrade each
 *   channel gets the port as 2 bytes little-endian (`binary.LittleEndian.PutUint16` written to
 *   both streams), so the first frames are `[0, lo, hi]` and `[1, lo, hi]`: same function;
 * - every message starts with its channel byte, `'0' + n` in base64 mode, where the rest is
 *   base64 (and a frame that does not decode is dropped); the codec follows the negotiated
 *   protocol, not the frame's opcode; empty messages and channels that do not exist are
 *   skipped: `staging/src/k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go`,
 *   `Conn.handle`, `Conn.write`, `websocketChannel.DataFromSocket`;
 * - reading stops while the pod connection has not taken what was read: `DataFromSocket`
 *   writes into an `io.Pipe`, which blocks `handle` until containerd's copy has read it (here:
 *   {@linkcode HIGH_WATER});
 * - one TCP connection to `localhost:port` in the pod's network namespace per port, IPv4 first
 *   (containerd `internal/cri/server/sandbox_portforward_linux.go`, `portForward`); no
 *   half-close: when one direction ends containerd waits at most 1 s for the other, then closes
 *   both; the kubelet then closes the streams and, once every port is done, the WebSocket with a
 *   Close of status 1000 (`websocketStreamHandler.portForward`, `handleWebSocketStreams`'s
 *   `defer conn.Close()`, see `websocket.ts`); when the WebSocket closes, the pod connection is
 *   closed;
 * - a failed dial is reported as text on the error channel, `error forwarding port %d to pod
 *   %s, uid %v: %v` (`websocketStreamHandler.portForward`) with the sandbox ID as pod name and
 *   an empty uid (`staging/src/k8s.io/kubelet/pkg/cri/streaming/server.go`,
 *   `servePortForward`), wrapping containerd's `failed to execute portforward in network
 *   namespace %q: %w` and `failed to connect to localhost:%d inside namespace %q, IPv4: %v
 *   IPv6 %v `; then everything closes.
 *
 * This runs in the stand-in's kubelet (`kubelet_server.ts`), a process inside the node's network
 * namespace, which is also the namespace of every pod of the test cluster: the pod connection is
 * dialled in-process (`Deno.connect`, TCP_NODELAY like Go's), no helper process in between.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { WebSocketConnection } from "./websocket.ts";

/** Subprotocols the kubelet accepts for port-forward (wsstream.NewConn in websocket.go). */
export const PORTFORWARD_PROTOCOLS = ["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/** Where the pod is reached. */
export interface PortForwardTarget {
  /**
   * Address dialled in the kubelet's (= the pod's) network namespace: containerd dials
   * localhost; the test cluster's pods bind their own pod IP, so that is what is dialled for them.
   */
  host: string;
  /** Pod sandbox ID, as containerd names it in errors. */
  sandboxId: string;
  /** Path of the network namespace as containerd reports it. */
  netnsPath: string;
}

/**
 * Parses the `port` query values of the kubelet's `/portForward/{namespace}/{pod}` like
 * `NewV4Options` (staging/src/k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go).
 * Returns the ports or the kubelet's 400 message.
 */
export function parsePorts(values: string[]): number[] | string {
  if (values.length === 0) return `query parameter "port" is required`;
  const ports: number[] = [];
  for (const value of values) {
    if (value === "") return `query parameter "port" cannot be empty`;
    for (const p of value.split(",")) {
      if (!/^\d+$/.test(p) || Number(p) > 65535) {
        return `unable to parse "${value}" as a port: strconv.ParseUint: parsing "${p}": ${
          /^\d+$/.test(p) ? "value out of range" : "invalid syntax"
        }`;
      }
      if (Number(p) < 1) return `port "${value}" must be > 0`;
      ports.push(Number(p));
    }
  }
  return ports;
}

/** Options of {@linkcode servePortForward}. */
export interface PortForwardOptions {
  /** Negotiated subprotocol. */
  protocol: string;
  ports: number[];
  target: PortForwardTarget;
  /** Debug log, or nothing. */
  log?: (line: string) => void;
}

/**
 * Client bytes read from the WebSocket and not yet taken by the pod connection before the
 * stand-in stops reading (TCP backpressure to the client), like the kubelet, whose receive loop
 * waits in `io.Pipe` until containerd has copied each message to the pod. (An earlier note here
 * blamed pausing for a 64 KiB message lost under load; that message was held in the client's
 * own TLS layer, see `pf_probe.ts`.)
 */
const HIGH_WATER = 1024 * 1024;
const live = new Set<PodConnection>();

/** Kills every pod connection (the server is stopping). */
export function closeAllPortForwards(): void {
  for (const b of live) b.kill();
}

/** Runs port-forward over an accepted WebSocket until either side ends. */
export function servePortForward(ws: WebSocketConnection, options: PortForwardOptions): void {
  const base64 = options.protocol.includes("base64");
  const send = (channel: number, data: Uint8Array): boolean => {
    if (base64) {
      const text = String.fromCharCode(48 + channel) + Buffer.from(data).toString("base64");
      return ws.send([Buffer.from(text)], "text");
    }
    return ws.send([Uint8Array.of(channel), data], "binary");
  };
  // Port headers on every data and error channel first.
  options.ports.forEach((port, i) => {
    const le = Uint8Array.of(port & 0xff, port >> 8);
    send(2 * i, le);
    send(2 * i + 1, le);
  });
  const conns = options.ports.map((port, i) =>
    new PodConnection(port, 2 * i, options.target, send, ws, options.log)
  );
  let pendingBytes = 0;
  let paused = false;
  ws.onmessage = (data) => {
    if (data.length === 0) return;
    let channel = data[0];
    let payload: Uint8Array = data.subarray(1);
    if (base64) {
      channel -= 48;
      const decoded = decodeBase64(payload);
      if (decoded === null) return;
      payload = decoded;
    }
    // Only even (data) channels are readable; the rest is ignored like wsstream does.
    const conn = channel % 2 === 0 ? conns[channel / 2] : undefined;
    if (!conn || payload.length === 0) return;
    pendingBytes += payload.length;
    if (pendingBytes > HIGH_WATER && !paused) {
      paused = true;
      ws.pause();
    }
    conn.write(payload).finally(() => {
      pendingBytes -= payload.length;
      if (paused && pendingBytes < HIGH_WATER / 2) {
        paused = false;
        ws.resume();
      }
    });
  };
  ws.onclose = () => {
    for (const c of conns) c.kill();
  };
  // The socket's end() flushes what is queued before the close frame.
  Promise.all(conns.map((c) => c.done)).then(() => ws.close());
}

/** Go's `base64.StdEncoding.Decode`: padding required, CR and LF ignored; null when invalid. */
function decodeBase64(data: Uint8Array): Uint8Array | null {
  const text = new TextDecoder().decode(data).replace(/[\r\n]/g, "");
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, "base64");
}

/** Read size of a pod connection (Go's io.Copy uses 32 KiB; bigger reads cost fewer ops here). */
const READ_SIZE = 128 * 1024;
/** How long one direction may outlive the other (containerd's `time.After(time.Second)`). */
const LINGER_MS = 1000;

/**
 * One pod connection, dialled in-process: containerd's `portForward` (see the module doc), its
 * two `io.Copy`s, and the kubelet's error text when the dial fails.
 */
class PodConnection {
  readonly done: Promise<void>;
  #conn: Deno.TcpConn | null = null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  readonly #dialled: Promise<Deno.TcpConn | null>;
  #ended = false;

  constructor(
    readonly port: number,
    readonly channel: number,
    readonly target: PortForwardTarget,
    readonly send: (channel: number, data: Uint8Array) => boolean,
    readonly ws: WebSocketConnection,
    readonly log?: (line: string) => void,
  ) {
    live.add(this);
    this.#dialled = this.#dial();
    this.done = this.#run().finally(() => {
      live.delete(this);
      this.kill();
    });
  }

  /** Writes client bytes to the pod connection; resolves when the kernel took them. */
  async write(data: Uint8Array): Promise<void> {
    const conn = await this.#dialled;
    if (!conn || this.#ended) return;
    this.#writer ??= conn.writable.getWriter();
    try {
      await this.#writer.write(data);
    } catch {
      // the pod side is gone; the read loop reports it
    }
  }

  /** Ends the pod connection (the WebSocket is gone, or both directions are done). */
  kill(): void {
    this.#ended = true;
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#conn = null;
  }

  async #dial(): Promise<Deno.TcpConn | null> {
    try {
      const conn = await Deno.connect({ hostname: this.target.host, port: this.port });
      // Go's net.Dial sets TCP_NODELAY on every TCP connection.
      conn.setNoDelay(true);
      if (this.#ended) {
        conn.close();
        return null;
      }
      this.#conn = conn;
      return conn;
    } catch (err) {
      if (!this.ws.closed) {
        const msg = this.#errorMessage(err as Error);
        this.log?.(`portforward: ${msg}`);
        this.send(this.channel + 1, new TextEncoder().encode(msg));
      }
      return null;
    }
  }

  /** Pod → client until the pod's side ends; then at most a second for the other direction. */
  async #run(): Promise<void> {
    const conn = await this.#dialled;
    if (!conn) return;
    try {
      for (;;) {
        const buf = new Uint8Array(READ_SIZE);
        const n = await conn.read(buf);
        if (n === null || this.#ended) break;
        // A short read gets its own small buffer: the socket may hold it until sent.
        const chunk = n < READ_SIZE / 4 ? buf.slice(0, n) : buf.subarray(0, n);
        if (!this.send(this.channel, chunk)) await this.ws.drained();
        if (this.ws.closed) break;
      }
    } catch {
      // reset, or closed by kill()
    }
    // The client → pod copy ends only when the WebSocket does: wait for that at most 1 s.
    if (!this.ws.closed && !this.#ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, LINGER_MS);
        this.ws.closedPromise.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * The kubelet's error text: websocket.go's `error forwarding port %d to pod %s, uid %v: %v`
   * around containerd's portForward error, from Go's dial error for `tcp4` (`dial tcp4
   * 127.0.0.1:<port>: connect: <errno text>`) and `tcp6` (no `::1` for localhost here).
   */
  #errorMessage(err: Error): string {
    const { port, target } = this;
    // Deno: "Connection refused (os error 111)"; Go prints the errno text in lower case.
    const why = err.message.replace(/\s*\(os error \d+\)\s*$/, "").toLowerCase();
    const inner =
      `failed to connect to localhost:${port} inside namespace "${target.sandboxId}", ` +
      `IPv4: dial tcp4 127.0.0.1:${port}: connect: ${why} ` +
      `IPv6 dial tcp6: address localhost: no suitable address found `;
    return `error forwarding port ${port} to pod ${target.sandboxId}, uid : ` +
      `failed to execute portforward in network namespace "${target.netnsPath}": ${inner}`;
  }
}
