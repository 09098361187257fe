import assert from "node:assert/strict";
import { MemoryTun } from "../tun/memory.ts";
import { TUN_HEADROOM, type TunDevice, type TunStats } from "../tun/device.ts";
import { openDarwinTun, UTUN_HEADROOM } from "../tun/darwin.ts";
import { FakeDarwin, FakeRunner } from "../tun/darwin_fake_test.ts";
import { formatAddress } from "../wire/address.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, TcpSegment } from "../wire/tcp.ts";
import { UdpDatagram } from "../wire/udp.ts";
import { Icmpv4Message } from "../wire/icmpv4.ts";
import type { Conn } from "../io/conn.ts";
import { type DatagramFlow, type Dialer, DialError, type Endpoint } from "../io/dialer.ts";
import { FlowEngine } from "./engine.ts";
import { viewIp } from "./ip_info.ts";
import { tcpPacket, udpPacket } from "./_test_packets.ts";

// The listener binds the "TUN address"; loopback stands in for it, so no root is needed.
const V4 = { tun: "127.0.0.1", peer: "127.0.0.2" };
const APP = "127.0.0.1";

/**
 * A MemoryTun that records the offsets it is given and, like a driver putting a header in front
 * of each packet, overwrites every byte before `offset` on each read and write.
 */
class ScribblingTun implements TunDevice {
  readonly inner = new MemoryTun();
  readonly readOffsets: number[] = [];
  readonly writeOffsets: number[] = [];
  /** The buffers reads filled, and the buffers writes were given (not copies). */
  readonly readBuffers = new Set<ArrayBufferLike>();
  readonly writeBuffers: ArrayBufferLike[] = [];
  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get stats(): TunStats {
    return this.inner.stats;
  }
  async read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number> {
    this.readOffsets.push(offset);
    const n = await this.inner.read(bufs, sizes, offset);
    for (let i = 0; i < n; i++) {
      bufs[i].fill(0xee, 0, offset);
      this.readBuffers.add(bufs[i].buffer);
    }
    return n;
  }
  write(bufs: Uint8Array[], offset: number): number {
    this.writeOffsets.push(offset);
    for (const b of bufs) {
      b.fill(0xee, 0, offset);
      this.writeBuffers.push(b.buffer);
    }
    return this.inner.write(bufs, offset);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const fakeConn: Conn = {
  read: () => new Promise(() => {}),
  write: (p) => Promise.resolve(p.length),
  closeWrite: () => Promise.resolve(),
  close: () => {},
};

/** TCP port 445 and UDP port 53 connect, TCP 444 is unreachable, anything else is refused. */
class ScriptedDialer implements Dialer {
  dialTcp(dst: Endpoint): Promise<Conn> {
    if (dst.port === 445) return Promise.resolve(fakeConn);
    return Promise.reject(new DialError(dst.port === 444 ? "unreachable" : "refused"));
  }
  openUdp(dst: Endpoint, o: { onDatagram: (p: Uint8Array) => void }): Promise<DatagramFlow> {
    if (dst.port !== 53) return Promise.reject(new DialError("refused"));
    return Promise.resolve({
      send: (p) => queueMicrotask(() => o.onDatagram(new Uint8Array([...p].reverse()))),
      close: () => {},
    });
  }
}

/** A written TCP packet, its checksums checked. */
function tcp(packet: Uint8Array) {
  const ip = viewIp(packet)!;
  assert.ok(ip !== null && ip.bytes.length === packet.length, "a whole IP packet");
  const seg = TcpSegment.view(ip.bytes.subarray(ip.l4))!;
  assert.ok(seg.verifyChecksum(ip.src, ip.dst), "TCP checksum is valid");
  assert.ok(ip.v4!.verifyChecksum(), "IPv4 header checksum is valid");
  return {
    from: `${formatAddress(ip.src)}:${seg.srcPort}`,
    to: `${formatAddress(ip.dst)}:${seg.dstPort}`,
    flags: seg.flags,
  };
}

Deno.test("FlowEngine reads and writes every packet with TUN_HEADROOM bytes in front, no copy", async () => {
  const tun = new ScribblingTun();
  await using engine = await FlowEngine.start({ tun, dialer: new ScriptedDialer(), v4: V4 });

  // A dial that succeeds: the held SYN (kept in a copy with headroom) is written rewritten.
  tun.inner.inject(tcpPacket(APP, 40000, "10.96.0.10", 445, { flags: TCP_SYN, seq: 7 }));
  const syn = tcp(await tun.inner.nextWrite());
  assert.equal(syn.from.split(":")[0], V4.peer);
  assert.equal(syn.to.split(":")[0], V4.tun);
  assert.equal(syn.flags, TCP_SYN);

  // The listener's answer is rewritten in place and written back from the buffer it was read
  // into, the scribbled headroom in front of it.
  const [peer, natPort] = syn.from.split(":");
  const [tunAddr, listenPort] = syn.to.split(":");
  const writesBefore = tun.writeBuffers.length;
  tun.inner.inject(
    tcpPacket(tunAddr, Number(listenPort), peer, Number(natPort), {
      flags: TCP_SYN | TCP_ACK,
      seq: 100,
      ack: 8,
    }),
  );
  const synAck = tcp(await tun.inner.nextWrite());
  assert.deepEqual(synAck, {
    from: "10.96.0.10:445",
    to: `${APP}:40000`,
    flags: TCP_SYN | TCP_ACK,
  });
  assert.ok(tun.readBuffers.has(tun.writeBuffers[writesBefore]), "written from the read buffer");

  // A refused dial (RST), an unreachable one (ICMP), a stray segment (RST in the same batch).
  tun.inner.inject(tcpPacket(APP, 40001, "10.96.0.10", 443, { flags: TCP_SYN, seq: 1 }));
  assert.equal(tcp(await tun.inner.nextWrite()).flags, TCP_RST | TCP_ACK);
  tun.inner.inject(tcpPacket(APP, 40002, "10.96.0.10", 444, { flags: TCP_SYN, seq: 1 }));
  const unreachable = viewIp(await tun.inner.nextWrite())!;
  const icmp = Icmpv4Message.view(unreachable.bytes.subarray(unreachable.l4))!;
  assert.deepEqual([icmp.type, icmp.code], [3, 1]);
  assert.ok(icmp.verifyChecksum() && unreachable.v4!.verifyChecksum());
  tun.inner.inject(tcpPacket(APP, 40003, "10.96.0.10", 446, { flags: TCP_ACK, ack: 9 }));
  assert.equal(tcp(await tun.inner.nextWrite()).flags, TCP_RST);

  // UDP: a reply, and ICMP port unreachable for a refused open.
  tun.inner.inject(udpPacket(APP, 5353, "10.96.0.53", 53, new Uint8Array([1, 2, 3])));
  const reply = viewIp(await tun.inner.nextWrite())!;
  const d = UdpDatagram.view(reply.bytes.subarray(reply.l4))!;
  assert.ok(d.verifyChecksum(reply.src, reply.dst));
  assert.deepEqual([...d.payload], [3, 2, 1]);
  tun.inner.inject(udpPacket(APP, 5354, "10.96.0.53", 54, new Uint8Array([4])));
  const refused = viewIp(await tun.inner.nextWrite())!;
  const portUnreachable = Icmpv4Message.view(refused.bytes.subarray(refused.l4))!;
  assert.deepEqual([portUnreachable.type, portUnreachable.code], [3, 3]);
  assert.ok(portUnreachable.verifyChecksum());

  assert.ok(tun.readOffsets.length > 0 && tun.writeOffsets.length >= 7);
  assert.ok(tun.readOffsets.every((o) => o === TUN_HEADROOM), `reads at ${tun.readOffsets}`);
  assert.ok(tun.writeOffsets.every((o) => o === TUN_HEADROOM), `writes at ${tun.writeOffsets}`);
  assert.equal(engine.stats.headroomCopies, 0, "no packet needed a copy to get headroom");
});

Deno.test("FlowEngine on the macOS utun driver (fake kernel) copies no packet through scratch", async () => {
  assert.ok(TUN_HEADROOM >= UTUN_HEADROOM, "room for the utun header");
  const fake = new FakeDarwin();
  const tun = await openDarwinTun({
    mtu: 1500,
    addresses: [{ address: "198.18.0.1", prefixLength: 29 }],
  }, { libc: fake.symbols, run: new FakeRunner().run });
  await using engine = await FlowEngine.start({ tun, dialer: new ScriptedDialer(), v4: V4 });
  const utun = (packet: Uint8Array) => {
    const f = new Uint8Array(4 + packet.length);
    f[3] = 2; // AF_INET
    f.set(packet, 4);
    return f;
  };
  // Two datagrams and a stray segment, read in one burst: replies and a RST go back.
  fake.inject(utun(udpPacket(APP, 5353, "10.96.0.53", 53, new Uint8Array([1, 2]))));
  fake.inject(utun(udpPacket(APP, 5354, "10.96.0.53", 53, new Uint8Array([3, 4]))));
  fake.inject(utun(tcpPacket(APP, 40003, "10.96.0.10", 446, { flags: TCP_ACK, ack: 9 })));
  for (let i = 0; i < 100 && fake.sent.length < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(fake.sent.length, 3);
  for (const frame of fake.sent) {
    assert.deepEqual([...frame.subarray(0, 4)], [0, 0, 0, 2], "the utun header");
    assert.ok(viewIp(frame.subarray(4)) !== null);
  }
  // The driver's scratch buffer is one buffer for every packet; the engine's are one each.
  const received = new Set(fake.recvBuffers.map((b) => b.buffer));
  assert.ok(received.size >= 3, "the kernel wrote into the engine's buffers");
  assert.equal(new Set(fake.sentBuffers.map((b) => b.buffer)).size, 3, "sent from each packet");
  assert.ok(fake.sentBuffers.every((b) => b.byteOffset === 0), "header in the packet's headroom");
  assert.equal(engine.stats.headroomCopies, 0);
  assert.equal(tun.readDrops, 0);
});
