/**
 * The dialer `kconnect up` gives the flow engine: every flow becomes a stream of the tunnel to
 * the traffic manager, which dials the destination inside the cluster.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import {
  type DatagramFlow,
  type Dialer,
  DialError,
  type DialOptions,
  type Endpoint,
  type UdpOptions,
} from "../io/dialer.ts";
import { datagramSender, FrameReader } from "../tunnel/length_prefixed.ts";
import { readOpenReply } from "../tunnel/open.ts";
import { encodeOpenRequest } from "../tunnel/open_request.ts";
import type { OpenReply } from "../tunnel/open_request.ts";
import type { Stream } from "../tunnel/stream.ts";
import { logger } from "../log.ts";

/** Where streams come from: a session pool, or one session in tests. */
export interface StreamOpener {
  /** Opens a stream; `initial` leaves with the SYN, in the same transport write. */
  open(
    options?: { signal?: AbortSignal; initial?: Uint8Array; closeWrite?: boolean },
  ): Promise<Stream>;
}

/** Options for {@linkcode TunnelDialer}. */
export interface TunnelDialerOptions {
  /** Connect timeout the manager applies, ms. Default 10000. */
  connectTimeoutMs?: number;
}

const log = logger("tunnel");

/** Prefix of the manager's reply when a budget of its refused the stream (`src/manager/budget.ts`). */
export const BUSY_PREFIX = "traffic manager busy:";
/** How often a busy manager is logged at most, ms. */
const BUSY_LOG_MS = 10_000;
let busyLoggedAt = -Infinity;

function failure(reply: OpenReply, what: string): DialError {
  if (reply.message?.startsWith(BUSY_PREFIX) && Date.now() - busyLoggedAt >= BUSY_LOG_MS) {
    // Not one flow's problem: say it where the user looks, once in a while.
    busyLoggedAt = Date.now();
    log.warn(`${what} refused: ${reply.message}`);
  }
  const reason = reply.status === "ok" || reply.status === "error" ? "unreachable" : reply.status;
  return new DialError(
    reason,
    `${what}: ${reply.status}${reply.message ? ` (${reply.message})` : ""}`,
  );
}

/** Dials through the tunnel. */
export class TunnelDialer implements Dialer {
  readonly #opener: StreamOpener;
  readonly #timeoutMs: number;

  constructor(opener: StreamOpener, options: TunnelDialerOptions = {}) {
    this.#opener = opener;
    this.#timeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  async #openStream(
    signal: AbortSignal,
    what: string,
    initial: Uint8Array,
    closeWrite = false,
  ): Promise<Stream> {
    try {
      return await this.#opener.open({ signal, initial, closeWrite });
    } catch (err) {
      if (signal.aborted) throw new DialError("timeout", `${what}: aborted`);
      throw new DialError("unreachable", `${what}: tunnel unavailable (${(err as Error).message})`);
    }
  }

  async dialTcp(dst: Endpoint, options: DialOptions): Promise<Conn> {
    const what = `tcp ${dst.address}:${dst.port}`;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const request = encodeOpenRequest({
      kind: "tcp",
      host: dst.address,
      port: dst.port,
      timeoutMs,
    });
    const stream = await this.#openStream(options.signal, what, request);
    const onAbort = () => stream.reset();
    options.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await readOpenReply(stream);
      if (reply.status !== "ok") throw failure(reply, what);
      return stream;
    } catch (err) {
      stream.reset();
      if (err instanceof DialError) throw err;
      throw new DialError(
        options.signal.aborted ? "timeout" : "unreachable",
        `${what}: ${(err as Error).message}`,
      );
    } finally {
      options.signal.removeEventListener("abort", onAbort);
    }
  }

  async openUdp(dst: Endpoint, options: UdpOptions): Promise<DatagramFlow> {
    const what = `udp ${dst.address}:${dst.port}`;
    const request = encodeOpenRequest({ kind: "udp", host: dst.address, port: dst.port });
    const stream = await this.#openStream(options.signal, what, request);
    try {
      const reply = await readOpenReply(stream);
      if (reply.status !== "ok") throw failure(reply, what);
    } catch (err) {
      stream.reset();
      throw err instanceof DialError
        ? err
        : new DialError("unreachable", `${what}: ${(err as Error).message}`);
    }
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      // Closed by the flow: nothing is left on the signal, whatever its lifetime.
      options.signal.removeEventListener("abort", close);
      stream.close();
    };
    options.signal.addEventListener("abort", close, { once: true });
    (async () => {
      const reader = new FrameReader(stream);
      try {
        for (;;) {
          const d = await reader.readU16Frame();
          if (d === null) break;
          options.onDatagram(d);
        }
      } catch { /* reset: the flow ends */ }
      const byUs = closed;
      close();
      if (!byUs) options.onClose?.();
    })();
    const sendFrame = datagramSender(stream, close);
    return {
      send(payload: Uint8Array) {
        if (!closed) sendFrame(payload);
      },
      close,
    };
  }

  /** Sends one DNS query through the tunnel and returns the answer. */
  async queryDns(query: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    // The request and the query leave with the SYN: one round trip per lookup.
    const request = encodeOpenRequest({ kind: "dns" });
    const initial = new Uint8Array(request.length + 2 + query.length);
    initial.set(request);
    new DataView(initial.buffer).setUint16(request.length, query.length);
    initial.set(query, request.length + 2);
    // With the FIN on the same frame, nothing is written after the answer: a lone FIN on a
    // WebSocket with Nagle on would hold the next query until the peer's delayed ACK (~40 ms).
    const stream = await this.#openStream(signal, "dns", initial, true);
    const onAbort = () => stream.reset();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const answer = await new FrameReader(stream).readU16Frame();
      if (answer === null) {
        throw new Error("the traffic manager closed the DNS stream without an answer");
      }
      return answer;
    } finally {
      signal.removeEventListener("abort", onAbort);
      stream.close();
    }
  }
}
