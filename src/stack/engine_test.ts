import assert from "node:assert/strict";
import { MemoryTun } from "../tun/memory.ts";
import { formatAddress } from "../wire/address.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, TcpSegment } from "../wire/tcp.ts";
import { UdpDatagram } from "../wire/udp.ts";
import { type DatagramFlow, type Dialer, DialError, type Endpoint } from "../io/dialer.ts";
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
