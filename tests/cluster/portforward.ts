/**
 * The kubelet/containerd side of `pods/{name}/portforward` over WebSocket, as
 * pkg/kubelet/cri/streaming/portforward/websocket.go and containerd's
 * sandbox_portforward_linux.go do it:
 *
 * - subprotocols `v4.channel.k8s.io` (binary), `v4.base64.channel.k8s.io` (text, base64) and
 *   none at all (binary, no `Sec-WebSocket-Protocol` in the answer);
 * - per requested port `i`: data channel `2i`, error channel `2i+1`; right after the upgrade
 *   each channel gets the port as 2 bytes little-endian (`[0, lo, hi]`, `[1, lo, hi]`);
 * - every message starts with its channel byte (`'0' + n` in base64 mode);
 * - one TCP connection to `localhost:port` in the pod's network namespace per port; no
 *   half-close: when the pod side ends, the streams and the WebSocket close; when the
 *   WebSocket closes, the pod connection is closed;
 * - a failed dial is reported as text on the error channel, then everything closes.
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
 * Client bytes queued towards the pod before the stand-in stops reading the WebSocket. Pausing the
 * node:net socket under Deno appeared to lose a 64 KiB message now and then (1 run in 3 of four
 * concurrent 64 MB echoes under load; 0 in 3 without pausing), so the limit is set high enough that tests
 * never reach it: the clients' own flow control (kconnect's yamux windows) bounds what is in flight.
 */
const HIGH_WATER = 1024 * 1024 * 1024;
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
  ws.onmessage = (data, type) => {
    if (data.length === 0) return;
    let channel = data[0];
    let payload: Uint8Array = data.subarray(1);
    if (base64 || type === "text") {
      channel -= 48;
      payload = Buffer.from(new TextDecoder().decode(payload), "base64");
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
    // -t 0: when one direction ends, end at once (containerd returns on the first copy done).
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        target.netns,
        "socat",
        "-b",
        "131072",
        "-t",
        "0",
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
