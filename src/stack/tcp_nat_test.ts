import assert from "node:assert/strict";
import { formatAddress } from "../wire/address.ts";
import { Icmpv4Message } from "../wire/icmpv4.ts";
import { Icmpv6Message } from "../wire/icmpv6.ts";
import { TCP_ACK, TCP_RST, TCP_SYN, TcpSegment } from "../wire/tcp.ts";
import type { Conn } from "../io/conn.ts";
import { viewIp } from "./ip_info.ts";
import { addr, tcpPacket } from "./_test_packets.ts";
import { type TcpFlow, TcpNat, type TcpNatOptions } from "./tcp_nat.ts";
import natVectors from "./testdata/nat_vectors.json" with { type: "json" };

const V4 = { tunAddr: addr("198.18.0.1"), peerAddr: addr("198.18.0.2"), listenPort: 40000 };
const V6 = { tunAddr: addr("fd00:6b63::1"), peerAddr: addr("fd00:6b63::2"), listenPort: 40001 };
const APP4 = "198.18.0.1", APP6 = "fd00:6b63::1";

function setup(options: TcpNatOptions = {}) {
  const dials: TcpFlow[] = [];
  const released: TcpFlow[] = [];
  const out: Uint8Array[] = [];
  const nat = new TcpNat({ v4: V4, v6: V6 }, {
    dial: (f) => dials.push(f),
    released: (f) => released.push(f),
  }, options);
  const feed = (pkt: Uint8Array, now = 0) => {
    const ip = viewIp(pkt);
    assert.ok(ip !== null);
    return nat.handle(ip, now, (p) => out.push(p));
  };
  return { nat, dials, released, out, feed, emit: (p: Uint8Array) => out.push(p) };
}

function decode(pkt: Uint8Array) {
  const ip = viewIp(pkt)!;
  assert.ok(ip !== null, "packet parses");
  const seg = TcpSegment.view(ip.bytes.subarray(ip.l4))!;
  assert.ok(seg !== null, "segment parses");
  assert.ok(seg.verifyChecksum(ip.src, ip.dst), "TCP checksum is valid");
  if (ip.v4) assert.ok(ip.v4.verifyChecksum(), "IPv4 header checksum is valid");
  return {
    src: formatAddress(ip.src),
    dst: formatAddress(ip.dst),
    sport: seg.srcPort,
    dport: seg.dstPort,
    seq: seg.seq,
    ack: seg.ack,
    flags: seg.flags,
  };
}

const fakeConn: Conn = {
  read: () => Promise.resolve(null),
  write: (p) => Promise.resolve(p.length),
  closeWrite: () => Promise.resolve(),
  close: () => {},
};

for (
  const [fam, app, dst, a] of [[4, APP4, "10.96.0.10", V4], [6, APP6, "fd00:96::10", V6]] as const
) {
  Deno.test(`TcpNat holds an IPv${fam} SYN until the dial succeeds, then injects it rewritten`, () => {
    const t = setup();
    const syn = tcpPacket(app, 51000, dst, 80, { flags: TCP_SYN, seq: 1000 });
    assert.equal(t.feed(syn), false, "SYN is held, not forwarded");
    assert.equal(t.dials.length, 1);
    const flow = t.dials[0];
    assert.equal(formatAddress(flow.dstAddr), dst);
    assert.equal(flow.dstPort, 80);
    // A retransmission while dialing neither dials again nor goes out.
    assert.equal(t.feed(tcpPacket(app, 51000, dst, 80, { flags: TCP_SYN, seq: 1000 })), false);
    assert.equal(t.dials.length, 1);
    assert.equal(t.out.length, 0);

    assert.ok(t.nat.dialSucceeded(flow, fakeConn, 5, t.emit));
    assert.equal(flow.abort, null, "an open flow keeps no abort controller");
    assert.equal(t.out.length, 1);
    const inj = decode(t.out[0]);
    assert.deepEqual(
      [inj.src, inj.sport, inj.dst, inj.dport, inj.seq, inj.flags],
      [
        formatAddress(a.peerAddr),
        flow.natPort,
        formatAddress(a.tunAddr),
        a.listenPort,
        1000,
        TCP_SYN,
      ],
    );

    // The listener's SYN-ACK goes back to the program as if from the destination.
    const synAck = tcpPacket(
      formatAddress(a.tunAddr),
      a.listenPort,
      formatAddress(a.peerAddr),
      flow.natPort,
      { flags: TCP_SYN | TCP_ACK, seq: 777, ack: 1001 },
    );
    assert.equal(t.feed(synAck), true);
    const back = decode(synAck);
    assert.deepEqual([back.src, back.sport, back.dst, back.dport], [dst, 80, app, 51000]);

    // The program's ACK goes to the listener.
    const ack = tcpPacket(app, 51000, dst, 80, { flags: TCP_ACK, seq: 1001, ack: 778 });
    assert.equal(t.feed(ack), true);
    const fwd = decode(ack);
    assert.deepEqual([fwd.dst, fwd.dport, fwd.sport], [
      formatAddress(a.tunAddr),
      a.listenPort,
      flow.natPort,
    ]);

    assert.equal(t.nat.accepted(fam, flow.natPort), flow);
    assert.equal(t.nat.accepted(fam, flow.natPort), undefined, "accepted only once");
  });
}

Deno.test("TcpNat answers a refused dial with RST|ACK acknowledging the SYN", () => {
  const t = setup();
  t.feed(tcpPacket(APP4, 51001, "10.96.0.10", 81, { flags: TCP_SYN, seq: 0xfffffffe }));
  t.nat.dialFailed(t.dials[0], "refused", t.emit);
  assert.equal(t.out.length, 1);
  const rst = decode(t.out[0]);
  assert.deepEqual(
    [rst.src, rst.sport, rst.dst, rst.dport, rst.flags, rst.seq, rst.ack],
    ["10.96.0.10", 81, APP4, 51001, TCP_RST | TCP_ACK, 0, 0xffffffff],
  );
  assert.equal(t.nat.flows.size, 0);
  assert.equal(t.released.length, 1);
  assert.equal(t.nat.stats.refused, 1);
});

Deno.test("TcpNat answers an unreachable dial with ICMP host unreachable quoting the SYN", () => {
  const t = setup();
  const syn = tcpPacket(APP4, 51002, "10.96.0.11", 80, { flags: TCP_SYN, seq: 5 });
  t.feed(syn);
  t.nat.dialFailed(t.dials[0], "unreachable", t.emit);
  const ip = viewIp(t.out[0])!;
  assert.equal(formatAddress(ip.src), "10.96.0.11");
  assert.equal(formatAddress(ip.dst), APP4);
  const icmp = Icmpv4Message.view(ip.bytes.subarray(ip.l4))!;
  assert.deepEqual([icmp.type, icmp.code], [3, 1]);
  assert.ok(icmp.verifyChecksum());
  assert.deepEqual(icmp.body.subarray(0, 28), syn.subarray(0, 28));

  t.feed(tcpPacket(APP6, 51002, "fd00:96::11", 80, { flags: TCP_SYN, seq: 5 }));
  t.nat.dialFailed(t.dials[1], "forbidden", t.emit);
  const ip6 = viewIp(t.out[1])!;
  const icmp6 = Icmpv6Message.view(ip6.bytes.subarray(ip6.l4))!;
  assert.deepEqual([icmp6.type, icmp6.code], [1, 1]);
  assert.ok(icmp6.verifyChecksum(ip6.src, ip6.dst));
});

Deno.test("TcpNat stays silent on a dial timeout and dials again on the next SYN", () => {
  const t = setup();
  const syn = tcpPacket(APP4, 51003, "10.96.0.12", 80, { flags: TCP_SYN, seq: 9 });
  t.feed(syn);
  t.nat.dialFailed(t.dials[0], "timeout", t.emit);
  assert.equal(t.out.length, 0);
  t.feed(syn);
  assert.equal(t.dials.length, 2);
});

Deno.test("TcpNat.sweep() gives up a SYN held past synHoldMs and aborts its dial", () => {
  const t = setup({ synHoldMs: 1000 });
  t.feed(tcpPacket(APP4, 51004, "10.96.0.13", 80, { flags: TCP_SYN }), 0);
  const flow = t.dials[0];
  t.nat.sweep(999);
  assert.equal(flow.abort!.signal.aborted, false);
  t.nat.sweep(1001);
  assert.equal(flow.abort!.signal.aborted, true);
  assert.equal(t.nat.flows.size, 0);
  assert.equal(t.nat.dialSucceeded(flow, fakeConn, 1002, t.emit), false, "a late dial is refused");
});

Deno.test("TcpNat keeps a finished flow's port for lingerMs, then releases it", () => {
  const t = setup({ lingerMs: 5000 });
  t.feed(tcpPacket(APP4, 51005, "10.96.0.14", 80, { flags: TCP_SYN }), 0);
  const flow = t.dials[0];
  t.nat.dialSucceeded(flow, fakeConn, 0, t.emit);
  t.nat.accepted(4, flow.natPort);
  t.nat.finished(flow, 100);
  // A late FIN-ACK is still translated.
  assert.equal(t.feed(tcpPacket(APP4, 51005, "10.96.0.14", 80, { flags: TCP_ACK, seq: 1 })), true);
  t.nat.sweep(5000);
  assert.equal(t.nat.flows.size, 1);
  t.nat.sweep(5101);
  assert.equal(t.nat.flows.size, 0);
});

Deno.test("TcpNat releases an injected SYN that the listener never accepted", () => {
  const t = setup({ acceptTimeoutMs: 2000 });
  t.feed(tcpPacket(APP4, 51006, "10.96.0.15", 80, { flags: TCP_SYN }), 0);
  t.nat.dialSucceeded(t.dials[0], fakeConn, 0, t.emit);
  t.nat.sweep(2001);
  assert.equal(t.released.length, 1);
});

Deno.test("TcpNat resets segments of unknown connections, never an RST", () => {
  const t = setup();
  t.feed(tcpPacket(APP4, 51007, "10.96.0.16", 80, { flags: TCP_ACK, seq: 10, ack: 1234 }));
  const rst = decode(t.out[0]);
  assert.deepEqual([rst.flags, rst.seq], [TCP_RST, 1234]);
  t.feed(tcpPacket(APP4, 51007, "10.96.0.16", 80, { flags: TCP_RST, seq: 10 }));
  assert.equal(t.out.length, 1);
  assert.equal(t.nat.stats.strays, 2);
});

Deno.test("TcpNat refuses new SYNs with RST past maxFlows", () => {
  const t = setup({ maxFlows: 2 });
  for (let i = 0; i < 3; i++) {
    t.feed(tcpPacket(APP4, 52000 + i, "10.96.0.17", 80, { flags: TCP_SYN }));
  }
  assert.equal(t.dials.length, 2);
  assert.equal(t.out.length, 1);
  assert.equal(decode(t.out[0]).flags, TCP_RST | TCP_ACK);
  assert.equal(t.nat.stats.overLimit, 1);
});

Deno.test("TcpNat treats a SYN with a new sequence on a finished tuple as a new connection", () => {
  const t = setup();
  t.feed(tcpPacket(APP4, 51008, "10.96.0.18", 80, { flags: TCP_SYN, seq: 1 }));
  const first = t.dials[0];
  t.nat.dialSucceeded(first, fakeConn, 0, t.emit);
  t.nat.accepted(4, first.natPort);
  t.nat.finished(first, 1);
  t.feed(tcpPacket(APP4, 51008, "10.96.0.18", 80, { flags: TCP_SYN, seq: 99999 }));
  assert.equal(t.dials.length, 2);
  assert.notEqual(t.dials[1].natPort, first.natPort, "NAT ports are not reused at once");
});

/** Hex text to bytes. */
function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
}

/** Bytes to hex text (for readable failures). */
function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Inputs and expected outputs built by scapy, checksums computed from scratch
// (testdata/make_nat_vectors.py); the NAT updates checksums incrementally.
for (const v of natVectors.flows) {
  Deno.test(`TcpNat rewrites IPv${v.family} packets into exactly the bytes scapy builds`, () => {
    const family = v.family as 4 | 6;
    const addrs = { tunAddr: addr(v.tun), peerAddr: addr(v.peer), listenPort: v.listenPort };
    const out: Uint8Array[] = [];
    const dials: TcpFlow[] = [];
    const nat = new TcpNat(family === 4 ? { v4: addrs } : { v6: addrs }, {
      dial: (f) => dials.push(f),
      released: () => {},
    });
    const feed = (pkt: Uint8Array) => nat.handle(viewIp(pkt)!, 0, (p) => out.push(p));
    const { syn, synack, data } = v.packets;

    // The program's SYN is held, then injected rewritten once the dial succeeded.
    assert.equal(feed(fromHex(syn.in)), false);
    assert.equal(dials.length, 1);
    assert.equal(dials[0].natPort, v.natPort, "the vector assumes the first free NAT port");
    assert.ok(nat.dialSucceeded(dials[0], fakeConn, 0, (p) => out.push(p)));
    assert.equal(out.length, 1);
    assert.equal(toHex(out[0]), syn.out, "injected SYN");

    // The listener's SYN-ACK and the program's data are rewritten in place.
    for (const [name, pkt] of [["SYN-ACK", synack], ["data", data]] as const) {
      const buf = fromHex(pkt.in);
      assert.equal(feed(buf), true, name);
      assert.equal(toHex(buf), pkt.out, name);
    }
    assert.equal(out.length, 1, "nothing else was sent");
  });
}

Deno.test("TcpNat.abort() resets the program's connection from the far end, at the sequence it last acknowledged; its challenge ACK gets the exact RST", () => {
  const t = setup();
  t.feed(tcpPacket(APP4, 51010, "10.96.0.21", 6379, { flags: TCP_SYN, seq: 5000 }));
  const flow = t.dials[0];
  t.nat.dialSucceeded(flow, fakeConn, 0, t.emit);
  t.nat.accepted(4, flow.natPort);
  // The program acknowledged the listener's bytes up to 9000.
  t.feed(tcpPacket(APP4, 51010, "10.96.0.21", 6379, { flags: TCP_ACK, seq: 5001, ack: 9000 }));
  t.out.length = 0;
  t.nat.abort(flow, t.emit);
  assert.equal(t.out.length, 1);
  const rst = decode(t.out[0]);
  assert.deepEqual(
    [rst.src, rst.sport, rst.dst, rst.dport, rst.flags, rst.seq],
    ["10.96.0.21", 6379, APP4, 51010, TCP_RST, 9000],
  );
  assert.equal(t.nat.flows.size, 0, "the flow is forgotten at once");
  assert.deepEqual(t.released, [flow]);
  // Bytes the program had received but not yet acknowledged: it challenges with its ACK.
  t.feed(tcpPacket(APP4, 51010, "10.96.0.21", 6379, { flags: TCP_ACK, seq: 5001, ack: 9100 }));
  assert.deepEqual([decode(t.out[1]).flags, decode(t.out[1]).seq], [TCP_RST, 9100]);
  t.nat.abort(flow, t.emit);
  assert.equal(t.out.length, 2, "a second abort does nothing");
});
