import assert from "node:assert/strict";
import { formatAddress } from "../wire/address.ts";
import { Icmpv4Message } from "../wire/icmpv4.ts";
import { UdpDatagram } from "../wire/udp.ts";
import { viewIp } from "./ip_info.ts";
import { udpPacket } from "./_test_packets.ts";
import { type UdpFlow, type UdpFlowOptions, UdpFlows } from "./udp_flows.ts";

const enc = new TextEncoder();

function setup(options: UdpFlowOptions = {}) {
  const opens: UdpFlow[] = [];
  const flows = new UdpFlows({ open: (f) => opens.push(f) }, options);
  const feed = (pkt: Uint8Array, now = 0) => flows.handle(viewIp(pkt)!, now);
  return { flows, opens, feed };
}

function fakeFlow() {
  const sent: string[] = [];
  let closed = false;
  return {
    sent,
    get closed() {
      return closed;
    },
    flow: {
      send: (p: Uint8Array) => sent.push(new TextDecoder().decode(p)),
      close: () => closed = true,
    },
  };
}

Deno.test("UdpFlows holds datagrams while opening and sends them in order once open", () => {
  const t = setup();
  t.feed(udpPacket("198.18.0.1", 5000, "10.96.0.10", 53, enc.encode("a")));
  t.feed(udpPacket("198.18.0.1", 5000, "10.96.0.10", 53, enc.encode("b")));
  assert.equal(t.opens.length, 1, "one open per 4-tuple");
  const f = fakeFlow();
  assert.ok(t.flows.opened(t.opens[0], f.flow));
  t.feed(udpPacket("198.18.0.1", 5000, "10.96.0.10", 53, enc.encode("c")));
  assert.deepEqual(f.sent, ["a", "b", "c"]);
});

Deno.test("UdpFlows.reply() builds a datagram from the destination back to the program", () => {
  const t = setup();
  t.feed(udpPacket("fd00:6b63::1", 5001, "fd00:96::10", 53, enc.encode("q")));
  t.flows.opened(t.opens[0], fakeFlow().flow);
  const pkt = t.flows.reply(t.opens[0], enc.encode("answer"), 1)!;
  const ip = viewIp(pkt)!;
  const d = UdpDatagram.view(ip.bytes.subarray(ip.l4))!;
  assert.deepEqual(
    [formatAddress(ip.src), d.srcPort, formatAddress(ip.dst), d.dstPort],
    ["fd00:96::10", 53, "fd00:6b63::1", 5001],
  );
  assert.ok(d.verifyChecksum(ip.src, ip.dst));
  assert.equal(new TextDecoder().decode(d.payload), "answer");
});

Deno.test("UdpFlows answers a refused open with ICMP port unreachable", () => {
  const t = setup();
  const out: Uint8Array[] = [];
  t.feed(udpPacket("198.18.0.1", 5002, "10.96.0.10", 9, enc.encode("x")));
  t.flows.failed(t.opens[0], "refused", (p) => out.push(p));
  const ip = viewIp(out[0])!;
  const icmp = Icmpv4Message.view(ip.bytes.subarray(ip.l4))!;
  assert.deepEqual([icmp.type, icmp.code], [3, 3]);
  assert.equal(t.flows.flows.size, 0);
});

Deno.test("UdpFlows caps bytes held while opening", () => {
  const t = setup({ maxPendingBytes: 10 });
  for (let i = 0; i < 5; i++) {
    t.feed(udpPacket("198.18.0.1", 5003, "10.96.0.10", 53, new Uint8Array(4)));
  }
  const f = fakeFlow();
  t.flows.opened(t.opens[0], f.flow);
  assert.equal(f.sent.length, 2);
  assert.equal(t.flows.stats.dropped, 3);
});

Deno.test("UdpFlows.sweep() closes idle flows and the flow cap evicts the least recently used", () => {
  const t = setup({ idleMs: 1000, maxFlows: 2 });
  const fs = [fakeFlow(), fakeFlow(), fakeFlow()];
  t.feed(udpPacket("198.18.0.1", 1, "10.96.0.10", 53, enc.encode("1")), 0);
  t.flows.opened(t.opens[0], fs[0].flow);
  t.feed(udpPacket("198.18.0.1", 2, "10.96.0.10", 53, enc.encode("2")), 10);
  t.flows.opened(t.opens[1], fs[1].flow);
  t.feed(udpPacket("198.18.0.1", 1, "10.96.0.10", 53, enc.encode("1b")), 20);
  t.feed(udpPacket("198.18.0.1", 3, "10.96.0.10", 53, enc.encode("3")), 30);
  assert.ok(fs[1].closed, "flow 2 was least recently active");
  assert.ok(!fs[0].closed);
  assert.equal(t.flows.stats.evicted, 1);
  t.flows.opened(t.opens[2], fs[2].flow);
  t.flows.sweep(1025);
  assert.ok(fs[0].closed, "idle for 1005 ms");
  assert.ok(!fs[2].closed, "idle for 995 ms");
  assert.ok(t.opens[0].abort.signal.aborted);
});
