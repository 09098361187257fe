/**
 * TCP through the kernel's own stack (README, "How the data path works").
 *
 * A packet from a local program `S:sp → D:dp` is rewritten to `peer:natPort → tun:listenPort`
 * and written back into the TUN, where the kernel's TCP delivers it to the engine's listener;
 * the listener's packets `tun:listenPort → peer:natPort` are rewritten back to `D:dp → S:sp`.
 * Only addresses, ports and checksums change. The program's SYN is held until the dialer has
 * answered: success injects it, refusal answers RST, unreachable answers ICMP, silence lets
 * the program time out.
 *
 * This file does no I/O: packets come in as arguments, packets to write go to a sink, dials
 * are requested through a hook, and the time is passed in. Every packet given to the sink has
 * `TUN_HEADROOM` free bytes in front of it in its own buffer (`packet_buffer.ts`): replies are
 * built that way, and a held SYN is kept in such a copy.
 *
 * @module
 */
import { sameAddress } from "../wire/address.ts";
import { TcpSegment } from "../wire/tcp.ts";
import type { Conn } from "../io/conn.ts";
import type { DialFailure } from "../io/dialer.ts";
import { type IpInfo, rewriteAddresses, viewIp } from "./ip_info.ts";
import { icmpUnreachable, tcpReset } from "./replies.ts";
import { type TupleKeyed, TupleTable } from "./tuple_table.ts";
import { adjust16 } from "../wire/checksum.ts";
import { copyPacket } from "./packet_buffer.ts";

/** Where one address family's rewritten packets meet the kernel. */
export interface NatAddresses {
  /** The TUN's own address; the listener is bound to it. */
  tunAddr: Uint8Array;
  /** The fake peer every rewritten connection comes from. */
  peerAddr: Uint8Array;
  /** The listener's port. */
  listenPort: number;
}

/** Limits and timings of the TCP NAT. */
export interface TcpNatOptions {
  /** Most flows at once (dialing, open or lingering); a SYN past it is answered with RST. Default 16384. */
  maxFlows?: number;
  /** Longest a SYN is held waiting for the dialer, ms. Default 75000. */
  synHoldMs?: number;
  /** Longest an injected SYN may wait for the listener to accept, ms. Default 10000. */
  acceptTimeoutMs?: number;
  /** How long a finished flow keeps its NAT port, so late packets and the listener's TIME_WAIT drain, ms. Default 65000. */
  lingerMs?: number;
}

/** Life of one TCP flow. */
export type TcpFlowState = "dialing" | "open" | "closed";

/** One TCP connection from a local program, keyed by its original 4-tuple. */
export interface TcpFlow extends TupleKeyed {
  family: 4 | 6;
  natPort: number;
  state: TcpFlowState;
  /** The program's initial sequence number, to tell a retransmitted SYN from a new connection. */
  isn: number;
  /** The held SYN (a private copy, with headroom for the TUN), while dialing. */
  syn: Uint8Array | null;
  /** The dialled far side, once the dialer answered. */
  conn: Conn | null;
  /** Set once the listener accepted this flow's connection. */
  accepted: boolean;
  /**
   * The program's side as the listener accepted it, while the owner relays it to `conn` (the
   * owner sets and clears it; the NAT only carries it, so that `released` can close both).
   */
  program: Conn | null;
  /**
   * Aborts the dial (tells the dialer the flow is gone) while the dial runs; null once the
   * dialer answered, so an open flow keeps no controller.
   */
  abort: AbortController | null;
  /** When the current state began. */
  since: number;
  /**
   * The acknowledgement number of the program's last segment: where its receive sequence is,
   * so that {@linkcode TcpNat.abort} can reset the connection (RFC 9293 3.10.7.4, RFC 5961).
   */
  appAck: number;
}

/** What the NAT asks of its owner. */
export interface TcpNatHooks {
  /** Start dialing `flow`'s destination; answer with `dialSucceeded` or `dialFailed`. */
  dial(flow: TcpFlow): void;
  /** A flow is gone for good: release whatever the owner holds for it. */
  released(flow: TcpFlow): void;
}

/** Counters. */
export interface TcpNatStats {
  flowsOpened: number;
  refused: number;
  unreachable: number;
  timedOut: number;
  /** SYNs refused because `maxFlows` was reached. */
  overLimit: number;
  /** Packets for no known flow (answered with RST unless they were RSTs). */
  strays: number;
}

const NAT_PORT_FIRST = 1024;
const NAT_PORT_COUNT = 65536 - NAT_PORT_FIRST;

class FamilyNat {
  readonly byNatPort: (TcpFlow | undefined)[] = new Array(65536);
  #next = 0;
  constructor(readonly addrs: NatAddresses) {}

  /** A free NAT port, least recently used first; -1 when every port is taken. */
  allocate(): number {
    for (let i = 0; i < NAT_PORT_COUNT; i++) {
      const port = NAT_PORT_FIRST + ((this.#next + i) % NAT_PORT_COUNT);
      if (this.byNatPort[port] === undefined) {
        this.#next = (port - NAT_PORT_FIRST + 1) % NAT_PORT_COUNT;
        return port;
      }
    }
    return -1;
  }
}

/** The TCP half of the flow engine. */
export class TcpNat {
  readonly flows = new TupleTable<TcpFlow>();
  readonly stats: TcpNatStats = {
    flowsOpened: 0,
    refused: 0,
    unreachable: 0,
    timedOut: 0,
    overLimit: 0,
    strays: 0,
  };
  readonly #v4: FamilyNat | null;
  readonly #v6: FamilyNat | null;
  readonly #hooks: TcpNatHooks;
  readonly #maxFlows: number;
  readonly #synHoldMs: number;
  readonly #acceptTimeoutMs: number;
  readonly #lingerMs: number;

  constructor(
    addrs: { v4?: NatAddresses; v6?: NatAddresses },
    hooks: TcpNatHooks,
    options: TcpNatOptions = {},
  ) {
    this.#v4 = addrs.v4 ? new FamilyNat(addrs.v4) : null;
    this.#v6 = addrs.v6 ? new FamilyNat(addrs.v6) : null;
    this.#hooks = hooks;
    this.#maxFlows = options.maxFlows ?? 16384;
    this.#synHoldMs = options.synHoldMs ?? 75_000;
    this.#acceptTimeoutMs = options.acceptTimeoutMs ?? 10_000;
    this.#lingerMs = options.lingerMs ?? 65_000;
  }

  #family(family: 4 | 6): FamilyNat | null {
    return family === 4 ? this.#v4 : this.#v6;
  }

  /**
   * Handles a TCP packet read from the TUN. Returns true when the packet was rewritten in place
   * and should be written back to the TUN; packets the NAT makes up go to `out`.
   */
  handle(ip: IpInfo, now: number, out: (packet: Uint8Array) => void): boolean {
    const seg = TcpSegment.view(ip.bytes.subarray(ip.l4));
    if (seg === null) return false;
    const fam = this.#family(ip.family);
    if (fam === null) return false;
    const a = fam.addrs;
    // From the listener, back towards a program.
    if (
      seg.srcPort === a.listenPort && sameAddress(ip.src, a.tunAddr) &&
      sameAddress(ip.dst, a.peerAddr)
    ) {
      const flow = fam.byNatPort[seg.dstPort];
      if (flow === undefined || flow.state === "dialing") return false;
      this.#rewrite(ip, seg, flow.dstAddr, flow.dstPort, flow.srcAddr, flow.srcPort);
      return true;
    }
    // From a program, towards the cluster.
    let flow = this.flows.get(ip.src, seg.srcPort, ip.dst, seg.dstPort);
    const isSyn = seg.syn && !seg.ackFlag;
    if (flow !== undefined && isSyn && flow.isn !== seg.seq && flow.state !== "dialing") {
      // The program reused the tuple for a new connection: the old flow is over.
      this.#release(flow);
      flow = undefined;
    }
    if (flow === undefined) {
      if (!isSyn) {
        this.stats.strays++;
        if (!seg.rst) this.#strayReset(ip, seg, out);
        return false;
      }
      return this.#open(ip, seg, fam, now, out);
    }
    if (flow.state === "dialing") {
      if (isSyn) {
        flow.syn = copyPacket(ip.bytes); // keep the newest SYN, and its ISN for RST and reuse checks
        flow.isn = seg.seq;
      }
      return false;
    }
    if (seg.ackFlag) flow.appAck = seg.ack;
    this.#rewrite(ip, seg, a.peerAddr, flow.natPort, a.tunAddr, a.listenPort);
    return true;
  }

  /**
   * `flow` failed (its tunnel stream was reset, or its session ended): the program gets a RST
   * from the far end at once, instead of an orderly end, and the flow is forgotten. The RST
   * carries the sequence number the program last acknowledged; if it has received more since,
   * it answers with an ACK (RFC 5961's challenge), which finds no flow and gets the exact RST.
   */
  abort(flow: TcpFlow, out: (packet: Uint8Array) => void): void {
    if (this.flows.get(flow.srcAddr, flow.srcPort, flow.dstAddr, flow.dstPort) !== flow) return;
    if (flow.accepted) {
      out(tcpReset(
        { address: flow.dstAddr, port: flow.dstPort },
        { address: flow.srcAddr, port: flow.srcPort },
        { seq: flow.appAck },
      ));
    }
    this.#release(flow);
  }

  #open(
    ip: IpInfo,
    seg: TcpSegment,
    fam: FamilyNat,
    now: number,
    out: (packet: Uint8Array) => void,
  ): boolean {
    const natPort = this.flows.size >= this.#maxFlows ? -1 : fam.allocate();
    if (natPort < 0) {
      this.stats.overLimit++;
      out(tcpReset(
        { address: ip.dst, port: seg.dstPort },
        { address: ip.src, port: seg.srcPort },
        { ack: seg.seq + 1 },
      ));
      return false;
    }
    const flow: TcpFlow = {
      family: ip.family,
      srcAddr: ip.src, // the table keeps its shared copies of both addresses
      srcPort: seg.srcPort,
      dstAddr: ip.dst,
      dstPort: seg.dstPort,
      natPort,
      state: "dialing",
      isn: seg.seq,
      syn: copyPacket(ip.bytes),
      conn: null,
      accepted: false,
      program: null,
      abort: new AbortController(),
      since: now,
      appAck: 0,
    };
    this.flows.add(flow);
    fam.byNatPort[natPort] = flow;
    this.#hooks.dial(flow);
    return false;
  }

  /**
   * The dialer connected `flow`: inject its held SYN (rewritten) so the kernel's listener
   * accepts it. Returns false when the flow is gone meanwhile (the caller closes `conn`).
   */
  dialSucceeded(
    flow: TcpFlow,
    conn: Conn,
    now: number,
    out: (packet: Uint8Array) => void,
  ): boolean {
    if (flow.state !== "dialing" || flow.syn === null) return false;
    const fam = this.#family(flow.family)!;
    const syn = flow.syn;
    flow.syn = null;
    flow.abort = null;
    flow.conn = conn;
    flow.state = "open";
    flow.since = now;
    this.stats.flowsOpened++;
    const ip = viewIp(syn);
    if (ip === null) return false;
    const seg = TcpSegment.view(ip.bytes.subarray(ip.l4))!;
    const a = fam.addrs;
    this.#rewrite(ip, seg, a.peerAddr, flow.natPort, a.tunAddr, a.listenPort);
    out(ip.bytes);
    return true;
  }

  /** The dialer could not connect `flow`: tell the program the way a network would. */
  dialFailed(flow: TcpFlow, reason: DialFailure, out: (packet: Uint8Array) => void): void {
    if (flow.state !== "dialing") return;
    const syn = flow.syn;
    flow.abort = null; // the dial is over: nothing to abort
    this.#release(flow);
    if (syn === null) return;
    switch (reason) {
      case "refused":
        this.stats.refused++;
        out(tcpReset(
          { address: flow.dstAddr, port: flow.dstPort },
          { address: flow.srcAddr, port: flow.srcPort },
          { ack: flow.isn + 1 },
        ));
        break;
      case "unreachable":
      case "forbidden":
        this.stats.unreachable++;
        out(
          icmpUnreachable(
            reason === "forbidden" ? "prohibited" : "host",
            syn,
            flow.dstAddr,
            flow.srcAddr,
          ),
        );
        break;
      case "timeout":
        this.stats.timedOut++; // silence: the program's own connect timeout decides
        break;
    }
  }

  /** The listener accepted a connection from the fake peer's `natPort`: which flow is it? */
  accepted(family: 4 | 6, natPort: number): TcpFlow | undefined {
    const flow = this.#family(family)?.byNatPort[natPort];
    if (flow === undefined || flow.state !== "open" || flow.accepted) return undefined;
    flow.accepted = true;
    return flow;
  }

  /** Both directions of `flow` are finished: keep its NAT port a while for late packets. */
  finished(flow: TcpFlow, now: number): void {
    if (flow.state === "closed") return;
    flow.state = "closed";
    flow.since = now;
  }

  /** Expires held SYNs, unaccepted injections and lingering flows. Call about once a second. */
  sweep(now: number): void {
    for (const flow of this.flows.values()) {
      const age = now - flow.since;
      if (flow.state === "dialing" && age > this.#synHoldMs) {
        this.stats.timedOut++;
        this.#release(flow);
      } else if (flow.state === "open" && !flow.accepted && age > this.#acceptTimeoutMs) {
        this.#release(flow);
      } else if (flow.state === "closed" && age > this.#lingerMs) {
        this.#release(flow);
      }
    }
  }

  /** Forgets every flow (the engine is closing). */
  clear(): void {
    for (const flow of this.flows.values()) this.#release(flow);
  }

  #release(flow: TcpFlow): void {
    if (!this.flows.delete(flow)) return;
    const fam = this.#family(flow.family)!;
    if (fam.byNatPort[flow.natPort] === flow) fam.byNatPort[flow.natPort] = undefined;
    flow.syn = null;
    flow.state = "closed";
    flow.abort?.abort();
    this.#hooks.released(flow);
  }

  #rewrite(
    ip: IpInfo,
    seg: TcpSegment,
    src: Uint8Array,
    srcPort: number,
    dst: Uint8Array,
    dstPort: number,
  ): void {
    let c = rewriteAddresses(ip, src, dst, seg.checksum);
    c = adjust16(c, seg.srcPort, srcPort);
    c = adjust16(c, seg.dstPort, dstPort);
    seg.srcPort = srcPort;
    seg.dstPort = dstPort;
    seg.checksum = c;
  }

  /** RFC 9293 3.10.7.1: a segment for no connection gets a RST (unless it is one). */
  #strayReset(ip: IpInfo, seg: TcpSegment, out: (packet: Uint8Array) => void): void {
    const from = { address: ip.dst, port: seg.dstPort };
    const to = { address: ip.src, port: seg.srcPort };
    if (seg.ackFlag) {
      out(tcpReset(from, to, { seq: seg.ack }));
    } else {
      const len = seg.payload.length + (seg.syn ? 1 : 0) + (seg.fin ? 1 : 0);
      out(tcpReset(from, to, { ack: seg.seq + len }));
    }
  }
}
