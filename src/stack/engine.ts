/**
 * The flow engine: reads packets from a TUN device, terminates TCP through the kernel's own
 * stack and UDP in user space, and hands every flow to a {@linkcode Dialer}.
 *
 * Every buffer it gives the TUN keeps {@linkcode TUN_HEADROOM} bytes in front of the packet: it
 * reads at that offset, rewrites TCP packets in place and writes them back from the same buffer,
 * and builds the packets it makes up after that much room (`packet_buffer.ts`). A driver that
 * needs a header in front (macOS utun) puts it there instead of copying each packet.
 *
 * @module
 */
import { TUN_HEADROOM, type TunDevice } from "../tun/device.ts";
import { formatAddress, parseAddress, sameAddress } from "../wire/address.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/protocol.ts";
import { type Clock, systemClock } from "../io/clock.ts";
import { type Dialer, DialError, type DialFailure } from "../io/dialer.ts";
import { viewIp } from "./ip_info.ts";
import { MAX_RELAY_BUFFER, relay } from "../io/relay.ts";
import { type TcpFlow, TcpNat, type TcpNatOptions } from "./tcp_nat.ts";
import { type UdpFlow, type UdpFlowOptions, UdpFlows } from "./udp_flows.ts";
import { LocalAddresses, type SourceFilter } from "./local_addresses.ts";
import { copyPacket, withHeadroom } from "./packet_buffer.ts";
import { logger } from "../log.ts";

const log = logger("stack");

/** The two addresses of one family inside the TUN's own small prefix. */
export interface EngineAddresses {
  /** The TUN's address (already assigned to the device); the listener binds to it. */
  tun: string;
  /** The fake peer in the same prefix that rewritten connections come from. */
  peer: string;
}

/** Options for {@linkcode FlowEngine.start}. */
export interface FlowEngineOptions {
  /** The device; the engine owns it from now on and closes it. */
  tun: TunDevice;
  /** Where flows go. */
  dialer: Dialer;
  /** IPv4 addresses; omit to ignore IPv4 TCP. */
  v4?: EngineAddresses;
  /** IPv6 addresses; omit to ignore IPv6 TCP. */
  v6?: EngineAddresses;
  /** TCP limits and timings. */
  tcp?: TcpNatOptions;
  /** UDP limits and timings. */
  udp?: UdpFlowOptions;
  /**
   * Largest relay buffer per direction per TCP flow, bytes (buffers start at 4 KiB and grow
   * for flows that fill them). Default 64 KiB.
   */
  relayBufferSize?: number;
  /** Packets taken from the TUN per read. Default 64. */
  batch?: number;
  /** Time source. Default the monotonic clock. */
  clock?: Clock;
  /**
   * Which source addresses may use the tunnel. Default: this host's own addresses
   * ({@linkcode LocalAddresses}, with the TUN's addresses pinned), so packets forwarded from
   * other hosts are dropped. The engine closes it.
   */
  sources?: SourceFilter;
}

/** Counters of the engine as a whole. */
export interface EngineStats {
  packetsIn: number;
  packetsOut: number;
  /** Packets that were not well-formed IP/TCP/UDP: dropped. */
  malformed: number;
  /** IP fragments: dropped (the kernel does not fragment TCP; UDP over the MTU is not supported). */
  fragments: number;
  /** Other protocols (ICMP, …): dropped. */
  unsupported: number;
  /**
   * TCP/UDP packets whose source is not one of this host's addresses, i.e. forwarded from
   * another host or a container behind this one: dropped, so only this machine's own traffic
   * rides the tunnel.
   */
  notLocal: number;
  /** TCP connections open now (accepted and relaying). */
  activeTcp: number;
  /**
   * Packets copied to give them `TUN_HEADROOM` in front before they were written: 0 unless some
   * packet builder forgot to leave the room.
   */
  headroomCopies: number;
}

function reasonOf(err: unknown): DialFailure {
  return err instanceof DialError ? err.reason : "unreachable";
}

async function listenOn(hostname: string): Promise<Deno.TcpListener> {
  // A new IPv6 address is unusable while duplicate address detection runs; wait it out.
  for (let attempt = 0;; attempt++) {
    try {
      return Deno.listen({ hostname, port: 0, transport: "tcp" });
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrNotAvailable) || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A running flow engine. Close it (or `await using` it) to stop. */
export class FlowEngine implements AsyncDisposable {
  readonly stats: EngineStats = {
    packetsIn: 0,
    packetsOut: 0,
    malformed: 0,
    fragments: 0,
    unsupported: 0,
    notLocal: 0,
    activeTcp: 0,
    headroomCopies: 0,
  };
  readonly tcp: TcpNat;
  readonly udp: UdpFlows;
  readonly #tun: TunDevice;
  readonly #dialer: Dialer;
  readonly #clock: Clock;
  readonly #sources: SourceFilter;
  readonly #listeners: Deno.TcpListener[];
  readonly #peers: Uint8Array[];
  readonly #relayBufferSize: number;
  readonly #batchSize: number;
  /** Packets to write at the end of this batch, each with its headroom (see `#frame`). */
  readonly #out: Uint8Array[] = [];
  #inLoop = false;
  #closed = false;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #done: Promise<void> = Promise.resolve();

  private constructor(
    options: FlowEngineOptions,
    listeners: Deno.TcpListener[],
    addrs: { v4?: { tun: Uint8Array; peer: Uint8Array; port: number }; v6?: typeof addrs.v4 },
  ) {
    this.#tun = options.tun;
    this.#dialer = options.dialer;
    this.#clock = options.clock ?? systemClock;
    this.#sources = options.sources ?? FlowEngine.#localSources(options);
    this.#listeners = listeners;
    this.#relayBufferSize = options.relayBufferSize ?? MAX_RELAY_BUFFER;
    this.#batchSize = options.batch ?? 64;
    this.#peers = [addrs.v4?.peer, addrs.v6?.peer].filter((p) => p !== undefined);
    const nat = (a?: { tun: Uint8Array; peer: Uint8Array; port: number }) =>
      a && { tunAddr: a.tun, peerAddr: a.peer, listenPort: a.port };
    this.tcp = new TcpNat({ v4: nat(addrs.v4), v6: nat(addrs.v6) }, {
      dial: (flow) => this.#dialTcp(flow),
      released: (flow) => FlowEngine.#closeFlow(flow),
    }, options.tcp);
    this.udp = new UdpFlows({ open: (flow) => this.#openUdp(flow) }, options.udp);
  }

  static #localSources(options: FlowEngineOptions): SourceFilter {
    let warned = false;
    const local = new LocalAddresses({
      onError: (err) => {
        if (!warned) log.warn(`cannot list this host's addresses: ${(err as Error).message}`);
        warned = true;
      },
    });
    for (const a of [options.v4?.tun, options.v6?.tun]) if (a !== undefined) local.pin(a);
    return local;
  }

  /**
   * Binds the listeners on the TUN's addresses and starts reading packets. The TUN must be up
   * with `v4.tun`/`v6.tun` assigned and the peers inside its prefix.
   */
  static async start(options: FlowEngineOptions): Promise<FlowEngine> {
    const listeners: Deno.TcpListener[] = [];
    const addrs: {
      v4?: { tun: Uint8Array; peer: Uint8Array; port: number };
      v6?: { tun: Uint8Array; peer: Uint8Array; port: number };
    } = {};
    try {
      for (const family of ["v4", "v6"] as const) {
        const a = options[family];
        if (a === undefined) continue;
        const tun = parseAddress(a.tun);
        const peer = parseAddress(a.peer);
        if (tun === null || peer === null || tun.length !== peer.length) {
          throw new TypeError(
            `Cannot start flow engine: bad ${family} addresses ${a.tun}, ${a.peer}`,
          );
        }
        const l = await listenOn(a.tun);
        listeners.push(l);
        addrs[family] = { tun, peer, port: (l.addr as Deno.NetAddr).port };
      }
    } catch (err) {
      for (const l of listeners) l.close();
      await options.tun.close();
      throw err;
    }
    const engine = new FlowEngine(options, listeners, addrs);
    engine.#done = Promise.all([
      engine.#readLoop(),
      ...listeners.map((l) => engine.#acceptLoop(l)),
    ]).then(() => {});
    engine.#sweeper = setInterval(() => {
      const now = engine.#clock.now();
      engine.tcp.sweep(now);
      engine.udp.sweep(now);
    }, 1000);
    return engine;
  }

  /** Resolves when the engine has stopped (closed, or the TUN went away). */
  get done(): Promise<void> {
    return this.#done;
  }

  #emit = (packet: Uint8Array): void => {
    if (this.#inLoop) {
      this.#out.push(this.#frame(packet));
    } else if (!this.#closed) {
      this.stats.packetsOut++;
      this.#tun.write([this.#frame(packet)], TUN_HEADROOM);
    }
  };

  /** `packet` with the `TUN_HEADROOM` bytes before it, to write at that offset. */
  #frame(packet: Uint8Array): Uint8Array {
    const frame = withHeadroom(packet);
    if (frame !== null) return frame;
    this.stats.headroomCopies++;
    return withHeadroom(copyPacket(packet))!;
  }

  async #readLoop(): Promise<void> {
    const mtu = this.#tun.mtu;
    const bufs = Array.from(
      { length: this.#batchSize },
      () => new Uint8Array(TUN_HEADROOM + mtu + 64),
    );
    const sizes = new Array<number>(this.#batchSize).fill(0);
    const out = this.#out;
    while (!this.#closed) {
      let n: number;
      try {
        n = await this.#tun.read(bufs, sizes, TUN_HEADROOM);
      } catch (err) {
        if (!this.#closed) log.error(`reading the TUN failed: ${(err as Error).message}`);
        break;
      }
      if (n === 0) break;
      const now = this.#clock.now();
      this.#inLoop = true;
      for (let i = 0; i < n; i++) {
        this.#handle(bufs[i].subarray(TUN_HEADROOM, TUN_HEADROOM + sizes[i]), now);
      }
      this.#inLoop = false;
      if (out.length > 0) {
        this.stats.packetsOut += out.length;
        this.#tun.write(out, TUN_HEADROOM);
        out.length = 0;
      }
    }
    if (!this.#closed) void this.close();
  }

  #handle(packet: Uint8Array, now: number): void {
    this.stats.packetsIn++;
    const ip = viewIp(packet);
    if (ip === null) {
      this.stats.malformed++;
      return;
    }
    if (ip.fragment) {
      this.stats.fragments++;
      return;
    }
    const tcp = ip.protocol === IPPROTO_TCP;
    if (!tcp && ip.protocol !== IPPROTO_UDP) {
      this.stats.unsupported++;
      return;
    }
    // Only this machine's own traffic rides the tunnel: a packet from another source was
    // forwarded here (ip_forward on, a route via this host) and is dropped unanswered.
    if (!this.#sources.allows(ip.src)) {
      this.stats.notLocal++;
      return;
    }
    if (tcp) {
      // Rewritten in place: written back from the read buffer, headroom and all.
      if (this.tcp.handle(ip, now, this.#emit)) this.#out.push(this.#frame(ip.bytes));
    } else {
      this.udp.handle(ip, now);
    }
  }

  /**
   * Closes what a released flow still holds: its dialled side and, while the relay runs, the
   * program's side, as the relay closes both when it fails. The relay then sees both fail; its
   * `onError` finds the flow gone from the table and does nothing.
   */
  static #closeFlow(flow: TcpFlow): void {
    for (const c of [flow.program, flow.conn]) {
      try {
        c?.close();
      } catch { /* already closed */ }
    }
    flow.program = null;
    flow.conn = null;
  }

  #dialTcp(flow: TcpFlow): void {
    const dst = { address: formatAddress(flow.dstAddr), port: flow.dstPort };
    // The flow drops its controller once the dial settles; this call keeps the signal till then.
    const signal = flow.abort!.signal;
    this.#dialer.dialTcp(dst, { signal }).then(
      (conn) => {
        if (!this.tcp.dialSucceeded(flow, conn, this.#clock.now(), this.#emit)) conn.close();
      },
      (err) => {
        if (signal.aborted) return;
        if (!(err instanceof DialError)) log.warn(`dial ${dst.address}:${dst.port}: ${err}`);
        else log.debug(`dial ${dst.address}:${dst.port}: ${err.message}`);
        this.tcp.dialFailed(flow, reasonOf(err), this.#emit);
      },
    );
  }

  #openUdp(flow: UdpFlow): void {
    const dst = { address: formatAddress(flow.dstAddr), port: flow.dstPort };
    this.#dialer.openUdp(dst, {
      signal: flow.abort.signal,
      onClose: () => this.udp.forget(flow),
      onDatagram: (payload) => {
        const p = this.udp.reply(flow, payload, this.#clock.now());
        if (p !== null) this.#emit(p);
      },
    }).then(
      (df) => {
        if (!this.udp.opened(flow, df)) df.close();
      },
      (err) => {
        if (flow.abort.signal.aborted) return;
        log.debug(`udp ${dst.address}:${dst.port}: ${err}`);
        this.udp.failed(flow, reasonOf(err), this.#emit);
      },
    );
  }

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    const family = (listener.addr as Deno.NetAddr).hostname.includes(":") ? 6 : 4;
    try {
      for await (const conn of listener) {
        const ra = conn.remoteAddr as Deno.NetAddr;
        const flow = this.#fromPeer(ra.hostname) ? this.tcp.accepted(family, ra.port) : undefined;
        if (flow === undefined || flow.conn === null) {
          conn.close(); // not from the fake peer, or no flow waits for it
          continue;
        }
        conn.setNoDelay(true);
        this.#relayTcp(conn, flow);
      }
    } catch (err) {
      if (!this.#closed) log.error(`TCP listener failed: ${(err as Error).message}`);
    }
  }

  /** Whether a connection to the listener comes from one of the fake peers. */
  #fromPeer(hostname: string): boolean {
    const from = parseAddress(hostname);
    if (from === null) return false;
    for (const p of this.#peers) if (sameAddress(p, from)) return true;
    return false;
  }

  /**
   * Relays an accepted connection to its flow's dialled side. What an idle flow keeps here is
   * the flow, the relay, and the two callbacks below (whose scope holds only the flow): closing
   * the flow closes both sides (`#closeFlow`), so it needs no abort signal of its own.
   */
  #relayTcp(conn: Deno.TcpConn, flow: TcpFlow): void {
    flow.program = conn;
    this.stats.activeTcp++;
    relay(conn, flow.conn!, {
      maxBuffer: this.#relayBufferSize,
      // A failed flow (its stream reset, its tunnel session ended) is reset for the program, as
      // the far end's host would, before closing the kernel's socket could send it an orderly FIN.
      onError: () => this.tcp.abort(flow, this.#emit),
    }).then((r) => {
      this.stats.activeTcp--;
      // Both sides are closed: nothing for the flow to hold or close any more.
      flow.program = null;
      flow.conn = null;
      // One that ended both ways lingers for late packets.
      if (r.error === undefined) this.tcp.finished(flow, this.#clock.now());
    });
  }

  /** Stops reading, closes every flow, the listeners and the TUN. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sources.close();
    this.tcp.clear();
    this.udp.clear();
    for (const l of this.#listeners) {
      try {
        l.close();
      } catch { /* already closed */ }
    }
    await this.#tun.close();
    await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
