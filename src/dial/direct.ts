/**
 * A dialer that reaches destinations from this host's own network, optionally rewriting them
 * first. It is what `kconnect forward` uses to exercise the data path without a cluster, and
 * what tests use to map cluster addresses to local servers.
 *
 * @module
 */
import dgram from "node:dgram";
import type { Conn } from "../io/conn.ts";
import {
  type DatagramFlow,
  type Dialer,
  DialError,
  type DialOptions,
  type Endpoint,
  type UdpOptions,
} from "../io/dialer.ts";
import { type AddressMapRule, mapAddress } from "./address_map.ts";

/** Options for {@linkcode DirectDialer}. */
export interface DirectDialerOptions {
  /** Rewrite rules applied to each destination address. Default none. */
  map?: AddressMapRule[];
  /** TCP connect timeout, ms. Default 10000. */
  connectTimeoutMs?: number;
}

/** Classifies a connect error the way the local program should see it. */
export function dialFailureOf(err: unknown): DialError {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof Deno.errors.ConnectionRefused || /ECONNREFUSED|refused/i.test(msg)) {
    return new DialError("refused", msg);
  }
  if (err instanceof Deno.errors.TimedOut || /ETIMEDOUT|timed out/i.test(msg)) {
    return new DialError("timeout", msg);
  }
  if (err instanceof Deno.errors.PermissionDenied || /EACCES|EPERM/i.test(msg)) {
    return new DialError("forbidden", msg);
  }
  return new DialError("unreachable", msg);
}

/** Dials from this host, after applying the address map. */
export class DirectDialer implements Dialer {
  readonly #map: AddressMapRule[];
  readonly #timeoutMs: number;

  constructor(options: DirectDialerOptions = {}) {
    this.#map = options.map ?? [];
    this.#timeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** Where `dst` is really dialled. */
  target(dst: Endpoint): Endpoint {
    return { address: mapAddress(this.#map, dst.address), port: dst.port };
  }

  async dialTcp(dst: Endpoint, options: DialOptions): Promise<Conn> {
    const signal = options.signal;
    if (signal.aborted) throw new DialError("timeout", "aborted");
    const t = this.target(dst);
    const connecting = Deno.connect({ hostname: t.address, port: t.port, transport: "tcp" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: () => void = () => {};
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DialError("timeout", "connect timed out")),
        options.timeoutMs ?? this.#timeoutMs,
      );
      onAbort = () => reject(new DialError("timeout", "aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const conn = await Promise.race([connecting, giveUp]);
      conn.setNoDelay(true);
      return conn;
    } catch (err) {
      connecting.then((c) => c.close(), () => {});
      throw err instanceof DialError ? err : dialFailureOf(err);
    } finally {
      // The signal may live as long as the connection (the manager's is the stream's lifetime):
      // left on it, the listener would keep this call's closure, promise and timer until then.
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  openUdp(dst: Endpoint, options: UdpOptions): Promise<DatagramFlow> {
    const signal = options.signal;
    const t = this.target(dst);
    const socket = dgram.createSocket(t.address.includes(":") ? "udp6" : "udp4");
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        reject(dialFailureOf(err));
      };
      socket.once("error", onError);
      socket.connect(t.port, t.address, () => {
        socket.off("error", onError);
        socket.on("error", () => {}); // ICMP errors on later sends: the flow just sees no reply
        socket.on("message", (msg: Uint8Array) => options.onDatagram(new Uint8Array(msg)));
        let closed = false;
        const close = () => {
          if (closed) return;
          closed = true;
          signal.removeEventListener("abort", close);
          socket.close();
        };
        signal.addEventListener("abort", close, { once: true });
        if (signal.aborted) close(); // aborted while connecting: the listener would never run
        resolve({ send: (payload) => !closed && socket.send(payload), close });
      });
    });
  }
}
