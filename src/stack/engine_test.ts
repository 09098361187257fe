import assert from "node:assert/strict";
import net from "node:net";
import { MemoryTun } from "../tun/memory.ts";
import { formatAddress } from "../wire/address.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, TcpSegment } from "../wire/tcp.ts";
import { UdpDatagram } from "../wire/udp.ts";
import type { Conn } from "../io/conn.ts";
import { type DatagramFlow, type Dialer, DialError, type Endpoint } from "../io/dialer.ts";
import { anySource } from "./local_addresses.ts";
import { FlowEngine } from "./engine.ts";
import { viewIp } from "./ip_info.ts";
import { tcpPacket, udpPacket } from "./_test_packets.ts";

// The listener binds the "TUN address"; loopback stands in for it, so no root is needed.
const V4 = { tun: "127.0.0.1", peer: "127.0.0.2" };

class ScriptedDialer implements Dialer {
  tcp: Endpoint[] = [];
  udp: Endpoint[] = [];
  dialTcp(dst: Endpoint): Promise<never> {
    this.tcp.push(dst);
    return Promise.reject(new DialError("refused"));
  }
  openUdp(dst: Endpoint, o: { onDatagram: (p: Uint8Array) => void }): Promise<DatagramFlow> {
    this.udp.push(dst);
    return Promise.resolve({
      send: (p) => queueMicrotask(() => o.onDatagram(new Uint8Array([...p].reverse()))),
      close: () => {},
    });
  }
}

Deno.test("FlowEngine answers a refused dial with a RST written to the TUN", async () => {
  const tun = new MemoryTun();
  const dialer = new ScriptedDialer();
  await using engine = await FlowEngine.start({ tun, dialer, v4: V4 });
  tun.inject(tcpPacket("127.0.0.1", 40000, "10.96.0.10", 443, { flags: TCP_SYN, seq: 41 }));
  const pkt = await tun.nextWrite();
  const ip = viewIp(pkt)!;
  const seg = TcpSegment.view(ip.bytes.subarray(ip.l4))!;
  assert.deepEqual(dialer.tcp, [{ address: "10.96.0.10", port: 443 }]);
  assert.equal(formatAddress(ip.src), "10.96.0.10");
  assert.equal(seg.flags, TCP_RST | TCP_ACK);
  assert.equal(seg.ack, 42);
  assert.equal(engine.tcp.stats.refused, 1);
});

Deno.test("FlowEngine relays UDP through the dialer and writes replies as packets", async () => {
  const tun = new MemoryTun();
  const dialer = new ScriptedDialer();
  await using engine = await FlowEngine.start({ tun, dialer, v4: V4 });
  tun.inject(udpPacket("127.0.0.1", 5353, "10.96.0.53", 53, new Uint8Array([1, 2, 3])));
  const ip = viewIp(await tun.nextWrite())!;
  const d = UdpDatagram.view(ip.bytes.subarray(ip.l4))!;
  assert.deepEqual([formatAddress(ip.src), d.srcPort, d.dstPort], ["10.96.0.53", 53, 5353]);
  assert.deepEqual([...d.payload], [3, 2, 1]);
  assert.equal(engine.udp.stats.flowsOpened, 1);
});

Deno.test("FlowEngine counts and drops malformed packets and fragments without stopping", async () => {
  const tun = new MemoryTun();
  const dialer = new ScriptedDialer();
  await using engine = await FlowEngine.start({ tun, dialer, v4: V4 });
  tun.inject(new Uint8Array([0x45, 0, 0, 99, 0, 0]));
  tun.inject(new Uint8Array([0x60, 1, 2]));
  const frag = udpPacket("127.0.0.1", 1, "10.96.0.53", 53, new Uint8Array(8));
  frag[6] = 0x20; // more fragments
  tun.inject(frag);
  tun.inject(udpPacket("127.0.0.1", 2, "10.96.0.53", 53, new Uint8Array([9])));
  await tun.nextWrite();
  assert.equal(engine.stats.malformed, 2);
  assert.equal(engine.stats.fragments, 1);
  assert.equal(engine.udp.stats.flowsOpened, 1);
});

/** A dialled side that stays idle until closed, or fails when told to. */
class IdleConn implements Conn {
  closed = false;
  #wake: { resolve: (v: null) => void; reject: (e: Error) => void } | null = null;
  read(): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#wake = { resolve, reject });
  }
  write(p: Uint8Array): Promise<number> {
    return this.closed ? Promise.reject(new Deno.errors.BrokenPipe()) : Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    this.#wake?.resolve(null);
    this.#wake = null;
  }
  /** The far side failed (its stream was reset). */
  fail(): void {
    this.#wake?.reject(new Error("stream reset"));
    this.#wake = null;
  }
}

class IdleDialer implements Dialer {
  readonly conns: IdleConn[] = [];
  dialTcp(): Promise<Conn> {
    const c = new IdleConn();
    this.conns.push(c);
    return Promise.resolve(c);
  }
  openUdp(): Promise<DatagramFlow> {
    return Promise.reject(new DialError("refused"));
  }
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

/**
 * Opens a relayed flow the way the kernel would: the app's SYN goes into the TUN, and the SYN the
 * engine injects is played by a loopback connection from the fake peer's NAT port.
 */
async function relayedFlow(tun: MemoryTun, engine: FlowEngine, seq: number) {
  tun.inject(tcpPacket("127.0.0.1", 40000, "10.96.0.10", 445, { flags: TCP_SYN, seq }));
  const ip = viewIp(await tun.nextWrite())!;
  const syn = TcpSegment.view(ip.bytes.subarray(ip.l4))!;
  const active = engine.stats.activeTcp;
  const program = net.connect({
    host: V4.tun,
    port: syn.dstPort,
    localAddress: V4.peer,
    localPort: syn.srcPort,
  });
  const closed = new Promise<void>((r) => program.on("close", () => r()));
  program.on("error", () => {});
  await until(() => engine.stats.activeTcp > active);
  return { program, closed };
}

Deno.test("FlowEngine keeps no abort controller for a relayed flow, and closes both sides when the program reuses its tuple", async () => {
  const tun = new MemoryTun();
  const dialer = new IdleDialer();
  await using engine = await FlowEngine.start({ tun, dialer, v4: V4, sources: anySource });
  const first = await relayedFlow(tun, engine, 7);
  const [flow] = engine.tcp.flows.values();
  assert.equal(flow.state, "open");
  assert.equal(flow.abort, null, "the dial is over: no controller kept");

  // A new connection on the same tuple: the old flow is over, both its sides are closed.
  tun.inject(tcpPacket("127.0.0.1", 40000, "10.96.0.10", 445, { flags: TCP_SYN, seq: 9999 }));
  await first.closed;
  await until(() => engine.stats.activeTcp === 0);
  assert.ok(dialer.conns[0].closed, "the dialled side is closed");
  assert.equal(engine.tcp.flows.size, 1, "the new connection's flow");
  await tun.nextWrite(); // the new flow's SYN
  first.program.destroy();
});

Deno.test("FlowEngine resets the program's connection when the dialled side of its flow fails", async () => {
  const tun = new MemoryTun();
  const dialer = new IdleDialer();
  await using engine = await FlowEngine.start({ tun, dialer, v4: V4, sources: anySource });
  const { program, closed } = await relayedFlow(tun, engine, 7);
  dialer.conns[0].fail();
  const rst = viewIp(await tun.nextWrite())!;
  const seg = TcpSegment.view(rst.bytes.subarray(rst.l4))!;
  assert.deepEqual(
    [formatAddress(rst.src), seg.srcPort, formatAddress(rst.dst), seg.dstPort, seg.flags],
    ["10.96.0.10", 445, "127.0.0.1", 40000, TCP_RST],
  );
  await closed;
  await until(() => engine.stats.activeTcp === 0);
  assert.ok(dialer.conns[0].closed);
  assert.equal(engine.tcp.flows.size, 0);
  program.destroy();
});
