/**
 * The `pods/{name}/portforward` subresource as a byte stream: one WebSocket with subprotocol
 * `v4.channel.k8s.io` carries one TCP connection to `localhost:port` inside the pod.
 *
 * Framing (kubelet / API server): every binary message starts with a channel byte; for a single
 * port, channel 0 carries data and channel 1 errors. The first message on each channel is the
 * port number as 2 little-endian bytes. There is no half-close: the connection ends when the
 * WebSocket closes, and text on the error channel says why.
 *
 * Deno's `WebSocket` over `wss:` (2.9.x) can keep the end of a message inside its TLS layer: a
 * send completes, and `bufferedAmount` drops, once rustls has taken the bytes, and when the
 * socket was full at that moment nothing writes them out until the next send
 * (denoland/deno#36862: ext/websocket's `ServerWebSocket::write_frame` does not flush, and
 * tokio-rustls' `poll_write` returns with ciphertext still buffered). Up to 64 KiB of what kconnect
 * wrote last would then wait for the next keepalive ping, or for ever with keepalive off. So
 * once writes go quiet and the queue has drained, the connection sends an empty message (after
 * 5 ms, again after 50 ms and 500 ms, in case the socket was still full): sending pushes out
 * what was held, and the kubelet skips empty messages (`wsstream.Conn.handle` in
 * k8s.io/apimachinery: `if len(data) == 0 { continue }`).
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import type { ClusterAccess } from "./access.ts";

/** The subprotocol kconnect speaks. */
export const PORTFORWARD_PROTOCOL = "v4.channel.k8s.io";

/** When empty messages follow the last write (ms after it, and after each other): see above. */
export const FLUSH_NUDGE_DELAYS_MS: readonly number[] = [5, 50, 500];
const EMPTY = new Uint8Array(0);

/**
 * How much error-channel text is kept (security review L3): the kubelet's messages are one line;
 * a peer that streams text there must not grow the client's memory.
 */
export const MAX_ERROR_TEXT = 4096;

/** What one WebSocket message meant. */
export type PortForwardEvent =
  | { type: "data"; data: Uint8Array }
  | { type: "error"; text: string }
  | { type: "none" };

/**
 * Splits port-forward messages into data and error text, dropping each channel's port header.
 * No I/O; one instance per WebSocket.
 */
export class PortForwardDemux {
  #headerLeft = [2, 2];
  readonly #decoder = new TextDecoder();

  /** Interprets one binary message. Throws a TypeError on a channel that cannot exist. */
  message(msg: Uint8Array): PortForwardEvent {
    if (msg.length === 0) return { type: "none" };
    const channel = msg[0];
    if (channel > 1) throw new TypeError(`port-forward message on unknown channel ${channel}`);
    let body = msg.subarray(1);
    const skip = Math.min(this.#headerLeft[channel], body.length);
    this.#headerLeft[channel] -= skip;
    body = body.subarray(skip);
    if (body.length === 0) return { type: "none" };
    if (channel === 0) return { type: "data", data: body };
    return { type: "error", text: this.#decoder.decode(body) };
  }
}

/** Options for {@linkcode openPortForward}. */
export interface PortForwardOptions {
  namespace: string;
  pod: string;
  port: number;
  /** Milliseconds to wait for the WebSocket to open. Default 15000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Bytes queued in the WebSocket before `write` waits. Default 4 MiB. */
  highWaterMark?: number;
}

/** A port-forward connection. `closeWrite` is a no-op: port-forward has no half-close. */
export interface PortForwardConn extends Conn {
  /** Resolves when the WebSocket has closed, with the error channel's text if any. */
  readonly closed: Promise<string | null>;
}

/** The WebSocket URL of a pod's port-forward. */
export function portForwardUrl(server: string, o: PortForwardOptions): string {
  const base = server.replace(/^http/, "ws");
  const ns = encodeURIComponent(o.namespace), pod = encodeURIComponent(o.pod);
  return `${base}/api/v1/namespaces/${ns}/pods/${pod}/portforward?ports=${o.port}`;
}

/**
 * Opens a port-forward WebSocket to `pod`'s `port`. Rejects when the WebSocket cannot be opened
 * (the caller can ask the REST API why: the WebSocket handshake does not expose the HTTP status).
 */
export async function openPortForward(
  access: ClusterAccess,
  options: PortForwardOptions,
): Promise<PortForwardConn> {
  const url = portForwardUrl(access.server, options);
  const ws = new WebSocket(url, {
    protocols: [PORTFORWARD_PROTOCOL],
    headers: await access.headers(),
    client: access.httpClient,
  });
  ws.binaryType = "arraybuffer";
  const demux = new PortForwardDemux();
  const chunks: Uint8Array[] = [];
  let errorText = "";
  const addError = (text: string) => {
    if (errorText.length >= MAX_ERROR_TEXT) return;
    errorText += text;
    if (errorText.length > MAX_ERROR_TEXT) errorText = `${errorText.slice(0, MAX_ERROR_TEXT)}…`;
  };
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  let resolveClosed!: (t: string | null) => void;
  const closed = new Promise<string | null>((r) => resolveClosed = r);

  // Listen before anything can arrive: a message handled late would lose the port header or the
  // first bytes of the session, and every frame after would be read out of step.
  ws.onmessage = (e) => {
    if (typeof e.data === "string") return; // v4 sends binary only
    try {
      const ev = demux.message(new Uint8Array(e.data as ArrayBuffer));
      if (ev.type === "data") chunks.push(ev.data);
      else if (ev.type === "error") addError(ev.text);
    } catch (err) {
      addError((err as Error).message);
      ws.close();
    }
    notify();
  };

  let settle!: () => void;
  const settled = new Promise<void>((r) => settle = r);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`port-forward to ${options.namespace}/${options.pod}: no answer in time`));
    }, options.timeoutMs ?? 15_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(
        new Error(
          `port-forward to ${options.namespace}/${options.pod}:${options.port} failed: ${why}`,
        ),
      );
    };
    ws.onopen = () => {
      clearTimeout(timer);
      if (ws.protocol !== PORTFORWARD_PROTOCOL) {
        ws.close();
        fail(`the server chose subprotocol "${ws.protocol}", not ${PORTFORWARD_PROTOCOL}`);
      } else resolve();
    };
    ws.onerror = (e) => fail((e as ErrorEvent).message || "WebSocket error");
    const onAbort = () => {
      ws.close();
      fail("aborted");
    };
    // The listener goes once the WebSocket opened or failed: the signal outlives many attempts.
    settled.finally(() => options.signal?.removeEventListener("abort", onAbort));
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  }).finally(settle);

  // Flush nudges (module doc): armed by a write, re-armed while writes continue or the queue
  // has not drained, each later one sent only if nothing was written meanwhile.
  let writes = 0;
  let nudgeTimer: ReturnType<typeof setTimeout> | undefined;
  let nudgeStep = 0;
  let armedAt = 0;
  const arm = (step: number) => {
    nudgeStep = step;
    armedAt = writes;
    const timer = setTimeout(nudge, FLUSH_NUDGE_DELAYS_MS[step]);
    Deno.unrefTimer(timer);
    nudgeTimer = timer;
  };
  const nudge = () => {
    nudgeTimer = undefined;
    if (ended || ws.readyState !== WebSocket.OPEN) return;
    if (writes !== armedAt || ws.bufferedAmount > 0) return arm(0);
    ws.send(EMPTY);
    if (nudgeStep + 1 < FLUSH_NUDGE_DELAYS_MS.length) arm(nudgeStep + 1);
  };

  const finish = () => {
    if (ended) return;
    ended = true;
    clearTimeout(nudgeTimer);
    nudgeTimer = undefined;
    resolveClosed(errorText || null);
    notify();
  };
  ws.onclose = finish;
  ws.onerror = finish;

  const hwm = options.highWaterMark ?? 4 << 20;
  // Sends `frame`, whose byte 0 is free for the channel; resolves with the payload length.
  // `send` copies the bytes before it returns, so the caller may reuse `frame` at once.
  const send = async (frame: Uint8Array): Promise<number> => {
    if (ended || ws.readyState !== WebSocket.OPEN) {
      throw new Error(
        `port-forward to ${options.pod} is closed${errorText ? `: ${errorText.trim()}` : ""}`,
      );
    }
    frame[0] = 0;
    ws.send(frame);
    writes++;
    if (nudgeTimer === undefined) arm(0);
    while (ws.bufferedAmount > hwm && !ended) await new Promise((r) => setTimeout(r, 2));
    return frame.length - 1;
  };
  // Each chunk is a view of its own message's buffer, which nothing else holds: handed out as is.
  const readChunk = async (max: number): Promise<Uint8Array | null> => {
    while (chunks.length === 0) {
      if (ended) {
        if (errorText) throw new Error(`port-forward to ${options.pod}: ${errorText.trim()}`);
        return null;
      }
      await new Promise<void>((r) => wake = r);
    }
    const head = chunks[0];
    if (head.length <= max) {
      chunks.shift();
      return head;
    }
    chunks[0] = head.subarray(max);
    return head.subarray(0, max);
  };
  return {
    closed,
    async read(p: Uint8Array): Promise<number | null> {
      const c = await readChunk(p.length);
      if (c === null) return null;
      p.set(c);
      return c.length;
    },
    readChunk,
    write(p: Uint8Array): Promise<number> {
      const frame = new Uint8Array(p.length + 1);
      frame.set(p, 1);
      return send(frame);
    },
    writeHeadroom: 1,
    writeWithHeadroom: send,
    closeWrite: () => Promise.resolve(),
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(1000);
      }
      finish();
    },
  };
}
