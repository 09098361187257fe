/**
 * Services kconnect itself answers at addresses inside the TUN's prefix (its DNS server): flows
 * to them are handled in the process; every other flow goes to the wrapped dialer.
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
import { memoryPipe } from "../io/pipe.ts";
import { parseAddress } from "../wire/address.ts";
import { sameAddress } from "../wire/address.ts";

/** One local service. */
export interface LocalService {
  address: string;
  port: number;
  /** Answers one datagram; null sends nothing back. */
  datagram?: (payload: Uint8Array) => Promise<Uint8Array | null>;
  /** Serves one stream connection. */
  stream?: (conn: Conn) => Promise<void>;
}

/** A dialer that answers some endpoints itself. */
export class LocalServicesDialer implements Dialer {
  readonly #inner: Dialer;
  readonly #services: { addr: Uint8Array; s: LocalService }[];

  constructor(inner: Dialer, services: LocalService[]) {
    this.#inner = inner;
    this.#services = services.map((s) => ({ addr: parseAddress(s.address)!, s }));
  }

  #find(dst: Endpoint): LocalService | undefined {
    const a = parseAddress(dst.address);
    if (a === null) return undefined;
    return this.#services.find((e) => e.s.port === dst.port && sameAddress(e.addr, a))?.s;
  }

  #isLocalAddress(dst: Endpoint): boolean {
    const a = parseAddress(dst.address);
    return a !== null && this.#services.some((e) => sameAddress(e.addr, a));
  }

  dialTcp(dst: Endpoint, options: DialOptions): Promise<Conn> {
    const s = this.#find(dst);
    if (s?.stream) {
      const [mine, theirs] = memoryPipe();
      void s.stream(mine);
      return Promise.resolve(theirs);
    }
    // Other ports of a local service's address are closed, as on any host.
    if (this.#isLocalAddress(dst)) return Promise.reject(new DialError("refused"));
    return this.#inner.dialTcp(dst, options);
  }

  openUdp(dst: Endpoint, options: UdpOptions): Promise<DatagramFlow> {
    const s = this.#find(dst);
    if (s?.datagram) {
      const handle = s.datagram;
      let closed = false;
      const close = () => {
        closed = true;
        options.signal.removeEventListener("abort", close);
      };
      options.signal.addEventListener("abort", close, { once: true });
      return Promise.resolve({
        send(payload: Uint8Array) {
          handle(payload).then((reply) => {
            if (reply !== null && !closed) options.onDatagram(reply);
          }, () => {});
        },
        close,
      });
    }
    if (this.#isLocalAddress(dst)) return Promise.reject(new DialError("refused"));
    return this.#inner.openUdp(dst, options);
  }
}
