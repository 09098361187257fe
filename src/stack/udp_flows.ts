/**
 * UDP, terminated in user space: one flow per 4-tuple of the local program's datagrams, opened
 * through the dialer, with replies built as packets for the TUN, and idle expiry.
 *
 * No I/O here: datagrams come in as arguments, packets to write go to a sink, opens are
 * requested through a hook, the time is passed in. Packets for the TUN (replies, ICMP errors)
 * are built after `TUN_HEADROOM` free bytes of their own buffer (`replies.ts`).
 *
 * @module
 */
import { UdpDatagram } from "../wire/udp.ts";
import type { DatagramFlow, DialFailure } from "../io/dialer.ts";
import type { IpInfo } from "./ip_info.ts";
import { type AddrPort, icmpUnreachable, udpReply } from "./replies.ts";
import { type TupleKeyed, TupleTable } from "./tuple_table.ts";

/** Limits and timings of the UDP flow table. */
export interface UdpFlowOptions {
  /** Most flows at once; past it the least recently active flow is closed. Default 4096. */
  maxFlows?: number;
  /** A flow with no datagram either way for this long is closed, ms. Default 60000. */
  idleMs?: number;
  /** Bytes of datagrams held per flow while it is being opened; more are dropped. Default 65536. */
  maxPendingBytes?: number;
}

/** One UDP association of a local program, keyed by its 4-tuple. */
export interface UdpFlow extends TupleKeyed {
  family: 4 | 6;
  /** The local program's end (the key's source), built once for the replies. */
  local: AddrPort;
  /** The far end (the key's destination). */
  far: AddrPort;
  state: "opening" | "open" | "closed";
  flow: DatagramFlow | null;
  pending: Uint8Array[];
  pendingBytes: number;
  lastActive: number;
  abort: AbortController;
}

/** What the table asks of its owner. */
export interface UdpFlowHooks {
  /** Open `flow`'s destination; answer with `opened` or `failed`. */
  open(flow: UdpFlow): void;
}

/** Counters. */
export interface UdpFlowStats {
  flowsOpened: number;
  datagramsOut: number;
  datagramsIn: number;
  /** Datagrams dropped: while opening past the byte cap, or after a failed open. */
  dropped: number;
  expired: number;
  evicted: number;
}

/** The UDP half of the flow engine. */
export class UdpFlows {
  readonly flows = new TupleTable<UdpFlow>();
  readonly stats: UdpFlowStats = {
    flowsOpened: 0,
    datagramsOut: 0,
    datagramsIn: 0,
    dropped: 0,
    expired: 0,
    evicted: 0,
  };
  readonly #hooks: UdpFlowHooks;
  readonly #maxFlows: number;
  readonly #idleMs: number;
  readonly #maxPendingBytes: number;

  constructor(hooks: UdpFlowHooks, options: UdpFlowOptions = {}) {
    this.#hooks = hooks;
    this.#maxFlows = options.maxFlows ?? 4096;
    this.#idleMs = options.idleMs ?? 60_000;
    this.#maxPendingBytes = options.maxPendingBytes ?? 65536;
  }

  /** Handles a UDP packet read from the TUN. */
  handle(ip: IpInfo, now: number): void {
    const dgram = UdpDatagram.view(ip.bytes.subarray(ip.l4));
    if (dgram === null) return;
    let flow = this.flows.get(ip.src, dgram.srcPort, ip.dst, dgram.dstPort);
    if (flow === undefined) {
      if (this.flows.size >= this.#maxFlows) this.#evictOldest();
      flow = {
        family: ip.family,
        srcAddr: ip.src,
        srcPort: dgram.srcPort,
        dstAddr: ip.dst,
        dstPort: dgram.dstPort,
        local: { address: ip.src, port: dgram.srcPort },
        far: { address: ip.dst, port: dgram.dstPort },
        state: "opening",
        flow: null,
        pending: [],
        pendingBytes: 0,
        lastActive: now,
        abort: new AbortController(),
      };
      this.flows.add(flow); // the addresses become the table's shared copies
      flow.local.address = flow.srcAddr;
      flow.far.address = flow.dstAddr;
      this.#queue(flow, dgram.payload);
      this.#hooks.open(flow);
      return;
    }
    flow.lastActive = now;
    if (flow.state === "open") {
      this.stats.datagramsOut++;
      flow.flow!.send(dgram.payload.slice());
    } else {
      this.#queue(flow, dgram.payload);
    }
  }

  #queue(flow: UdpFlow, payload: Uint8Array): void {
    if (flow.pendingBytes + payload.length > this.#maxPendingBytes) {
      this.stats.dropped++;
      return;
    }
    flow.pending.push(payload.slice());
    flow.pendingBytes += payload.length;
  }

  /** The dialer opened `flow`: send what was held. Returns false if the flow is gone. */
  opened(flow: UdpFlow, dflow: DatagramFlow): boolean {
    if (flow.state !== "opening") return false;
    flow.state = "open";
    flow.flow = dflow;
    this.stats.flowsOpened++;
    for (const p of flow.pending) {
      this.stats.datagramsOut++;
      dflow.send(p);
    }
    flow.pending = [];
    flow.pendingBytes = 0;
    return true;
  }

  /**
   * The dialer could not open `flow`: tell the program with ICMP (port unreachable for a
   * refusal, so a connected UDP socket sees ECONNREFUSED) and forget the flow.
   */
  failed(flow: UdpFlow, reason: DialFailure, out: (packet: Uint8Array) => void): void {
    if (flow.state !== "opening") return;
    const first = flow.pending[0];
    this.stats.dropped += flow.pending.length;
    this.#close(flow);
    if (first === undefined || reason === "timeout") return;
    const kind = reason === "refused" ? "port" : reason === "forbidden" ? "prohibited" : "host";
    // The invoking packet: rebuild the program's first datagram as it was sent.
    const invoking = udpReply(flow.local, flow.far, first);
    out(icmpUnreachable(kind, invoking, flow.dstAddr, flow.srcAddr));
  }

  /** A reply datagram from the far end of `flow`, as a packet for the TUN; null if closed. */
  reply(flow: UdpFlow, payload: Uint8Array, now: number): Uint8Array | null {
    if (flow.state === "closed") return null;
    flow.lastActive = now;
    this.stats.datagramsIn++;
    return udpReply(flow.far, flow.local, payload);
  }

  /** Closes flows idle longer than the idle timeout. Call about once a second. */
  sweep(now: number): void {
    for (const flow of this.flows.values()) {
      if (now - flow.lastActive > this.#idleMs) {
        this.stats.expired++;
        this.#close(flow);
      }
    }
  }

  /** Forgets `flow` (its far side ended); the program's next datagram opens a new one. */
  forget(flow: UdpFlow): void {
    this.#close(flow);
  }

  /** Closes every flow (the engine is closing). */
  clear(): void {
    for (const flow of this.flows.values()) this.#close(flow);
  }

  #evictOldest(): void {
    let oldest: UdpFlow | undefined;
    for (const f of this.flows.values()) {
      if (oldest === undefined || f.lastActive < oldest.lastActive) oldest = f;
    }
    if (oldest !== undefined) {
      this.stats.evicted++;
      this.#close(oldest);
    }
  }

  #close(flow: UdpFlow): void {
    if (!this.flows.delete(flow)) return;
    flow.state = "closed";
    flow.pending = [];
    flow.pendingBytes = 0;
    flow.abort.abort();
    flow.flow?.close();
    flow.flow = null;
  }
}
