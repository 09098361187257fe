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
 * The dial is `ip netns exec <netns> socat STDIO TCP:<host>:<port>`, one process per port.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { WebSocketConnection } from "./websocket.ts";

/** Subprotocols the kubelet accepts for port-forward (wsstream.NewConn in websocket.go). */
export const PORTFORWARD_PROTOCOLS = ["", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/** Where the pod is reached. */
export interface PortForwardTarget {
  /** `ip netns` name of the pod's network namespace. */
  netns: string;
  /** Address dialled in it (the kubelet dials localhost). */
  host: string;
  /** Pod sandbox ID, as containerd names it in errors. */
  sandboxId: string;
  /** Path of the network namespace as containerd reports it. */
  netnsPath: string;
}

/**
 * Parses the `ports` query values like the kubelet's NewV4Options (the API server passes them
 * on as `port`). Returns the ports or the kubelet's 400 message.
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
const live = new Set<Bridge>();

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
  const bridges = options.ports.map((port, i) =>
    new Bridge(port, 2 * i, options.target, send, ws, options.log)
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
    const bridge = channel % 2 === 0 ? bridges[channel / 2] : undefined;
    if (!bridge || payload.length === 0) return;
    pendingBytes += payload.length;
    if (pendingBytes > HIGH_WATER && !paused) {
      paused = true;
      ws.pause();
    }
    bridge.write(payload).finally(() => {
      pendingBytes -= payload.length;
      if (paused && pendingBytes < HIGH_WATER / 2) {
        paused = false;
        ws.resume();
      }
    });
  };
  ws.onclose = () => {
    for (const b of bridges) b.kill();
  };
  // The socket's end() flushes what is queued before the close frame.
  Promise.all(bridges.map((b) => b.done)).then(() => ws.close());
}

/** Go's `base64.StdEncoding.Decode`: padding required, CR and LF ignored; null when invalid. */
function decodeBase64(data: Uint8Array): Uint8Array | null {
  const text = new TextDecoder().decode(data).replace(/[\r\n]/g, "");
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, "base64");
}

/** One pod connection: a socat process in the pod's namespace. */
class Bridge {
  readonly done: Promise<void>;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #ended = false;

  constructor(
    readonly port: number,
    readonly channel: number,
    readonly target: PortForwardTarget,
    readonly send: (channel: number, data: Uint8Array) => boolean,
    readonly ws: WebSocketConnection,
    readonly log?: (line: string) => void,
  ) {
    // -t 1: when one direction ends, wait at most 1 s for the other, then end (containerd's
    // portForward: the first copy done, then `time.After(time.Second)`).
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        target.netns,
        "socat",
        "-b",
        "131072",
        "-t",
        "1",
        "STDIO",
        // The kubelet dials from Go, whose sockets have TCP_NODELAY set; so does this bridge.
        `TCP:${target.host}:${port},nodelay`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    live.add(this);
    this.done = this.#pump().finally(() => live.delete(this));
  }

  /** Writes client bytes to the pod connection; resolves when taken. */
  async write(data: Uint8Array): Promise<void> {
    if (this.#ended) return;
    try {
      await this.#writer.write(data);
    } catch {
      // the pod side is gone; the pump reports it
    }
  }

  /** Ends the pod connection (the WebSocket is gone). */
  kill(): void {
    this.#ended = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }

  async #pump(): Promise<void> {
    const stderr = new Response(this.#child.stderr).text().catch(() => "");
    let sent = 0;
    try {
      for await (const chunk of this.#child.stdout) {
        sent += chunk.length;
        if (!this.send(this.channel, chunk)) await this.ws.drained();
        if (this.ws.closed) break;
      }
    } catch {
      // killed
    }
    this.#ended = true;
    const status = await this.#child.status;
    this.#writer.releaseLock();
    try {
      await this.#child.stdin.close();
    } catch {
      // already closed
    }
    const errText = await stderr;
    if (!status.success && sent === 0 && !this.ws.closed) {
      const msg = this.#errorMessage(errText);
      this.log?.(`portforward: ${msg}`);
      this.send(this.channel + 1, new TextEncoder().encode(msg));
    }
  }

  /** The kubelet's error text: websocket.go wraps containerd's portForward error. */
  #errorMessage(stderr: string): string {
    const { port, target } = this;
    const m = /E connect\([^)]*\): (.+)/.exec(stderr);
    const inner = m
      ? `failed to connect to localhost:${port} inside namespace "${target.sandboxId}", ` +
        `IPv4: dial tcp4 127.0.0.1:${port}: connect: ${m[1].trim().toLowerCase()} ` +
        `IPv6 dial tcp6: address localhost: no suitable address `
      : stderr.trim() || "unknown error";
    return `error forwarding port ${port} to pod ${target.sandboxId}, uid : ` +
      `failed to execute portforward in network namespace "${target.netnsPath}": ${inner}`;
  }
}
