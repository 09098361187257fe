import assert from "node:assert/strict";
import { MemoryTun } from "../tun/memory.ts";
import { type DatagramFlow, type Dialer, DialError, type Endpoint } from "../io/dialer.ts";
import { FlowEngine } from "./engine.ts";
import { LocalAddresses, systemAddresses } from "./local_addresses.ts";
import { addr, tcpPacket, udpPacket } from "./_test_packets.ts";
import { TCP_SYN } from "../wire/tcp.ts";

function fakeClock(): { now: () => number; t: number } {
  const c = { t: 0, now: () => c.t };
  return c;
}

Deno.test("LocalAddresses allows this host's addresses, loopback and pinned ones only", () => {
  const local = new LocalAddresses({
    list: () => ["192.168.1.20", "fd00::5", "fe80::1%eth0", "not an address"],
    refreshMs: 0,
  });
  local.pin("100.64.0.1");
  for (const a of ["192.168.1.20", "fd00::5", "fe80::1", "127.0.0.1", "127.3.4.5", "::1"]) {
    assert.ok(local.allows(addr(a)), a);
  }
  assert.ok(local.allows(addr("100.64.0.1")), "pinned");
  for (const a of ["192.168.1.21", "10.0.0.1", "fd00::6", "::ffff:192.168.1.20", "::"]) {
    assert.ok(!local.allows(addr(a)), a);
  }
  assert.ok(!local.allows(new Uint8Array(5)), "neither 4 nor 16 bytes");
  assert.ok(local.addresses().includes("fd00::5"));
});

Deno.test("LocalAddresses re-reads at most once per missRefreshMs on unknown sources", () => {
  const clock = fakeClock();
  let list = ["192.0.2.1"];
  const local = new LocalAddresses({ list: () => list, refreshMs: 0, missRefreshMs: 250, clock });
  assert.equal(local.refreshes, 1);
  list = ["192.0.2.1", "192.0.2.9"];
  // A just-added address: the first miss after the rate limit re-reads and lets it through.
  clock.t = 300;
  assert.ok(local.allows(addr("192.0.2.9")));
  assert.equal(local.refreshes, 2);
  // A flood of foreign sources costs no re-reads within the window.
  for (let i = 0; i < 1000; i++) assert.ok(!local.allows(addr(`198.51.100.${i % 250}`)));
  assert.equal(local.refreshes, 2);
  clock.t = 600;
  assert.ok(!local.allows(addr("198.51.100.1")));
  assert.equal(local.refreshes, 3);
  // Known sources never re-read.
  clock.t = 10_000;
  assert.ok(local.allows(addr("192.0.2.1")));
  assert.equal(local.refreshes, 3);
});

Deno.test("LocalAddresses forgets removed addresses, keeps pinned ones, survives a failing list", () => {
  const errors: unknown[] = [];
  let list: () => string[] = () => ["192.0.2.1", "192.0.2.2"];
  const local = new LocalAddresses({
    list: () => list(),
    refreshMs: 0,
    missRefreshMs: Infinity,
    onError: (e) => errors.push(e),
  });
  local.pin("10.255.0.1");
  list = () => ["192.0.2.1"];
  local.refresh();
  assert.ok(!local.allows(addr("192.0.2.2")), "removed");
  assert.ok(local.allows(addr("10.255.0.1")), "pinned");
  list = () => {
    throw new Error("no permission");
  };
  local.refresh();
  assert.equal(errors.length, 1);
  assert.ok(local.allows(addr("192.0.2.1")), "the previous set stays");
});

Deno.test("LocalAddresses reads the system's interfaces and refreshes on a timer", async () => {
  assert.ok(systemAddresses().includes("127.0.0.1"));
  const local = new LocalAddresses({ refreshMs: 20 });
  try {
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(local.refreshes >= 3, `refreshes: ${local.refreshes}`);
  } finally {
    local.close();
  }
});

class CountingDialer implements Dialer {
  tcp: Endpoint[] = [];
  udp: Endpoint[] = [];
  dialTcp(dst: Endpoint): Promise<never> {
    this.tcp.push(dst);
    return Promise.reject(new DialError("refused"));
  }
  openUdp(dst: Endpoint): Promise<DatagramFlow> {
    this.udp.push(dst);
    return Promise.resolve({ send: () => {}, close: () => {} });
  }
}

Deno.test("FlowEngine drops TCP and UDP from sources that are not local, and counts them", async () => {
  const tun = new MemoryTun();
  const dialer = new CountingDialer();
  const sources = new LocalAddresses({
    list: () => ["192.168.1.20"],
    refreshMs: 0,
    missRefreshMs: Infinity,
  });
  await using engine = await FlowEngine.start({
    tun,
    dialer,
    v4: { tun: "127.0.0.1", peer: "127.0.0.2" },
    sources,
  });
  // Forwarded from a LAN host: no dial, no answer.
  tun.inject(tcpPacket("192.168.1.77", 40000, "10.96.0.10", 443, { flags: TCP_SYN, seq: 1 }));
  tun.inject(udpPacket("192.168.1.77", 5353, "10.96.0.53", 53, new Uint8Array([1])));
  tun.inject(udpPacket("fd00::77", 5353, "fd00:96::53", 53, new Uint8Array([1])));
  // From this host: dialled, and the refused dial answered with a RST.
  tun.inject(tcpPacket("192.168.1.20", 40001, "10.96.0.10", 443, { flags: TCP_SYN, seq: 1 }));
  await tun.nextWrite();
  assert.equal(engine.stats.notLocal, 3);
  assert.deepEqual(dialer.tcp, [{ address: "10.96.0.10", port: 443 }]);
  assert.deepEqual(dialer.udp, []);
  assert.equal(tun.written.length, 0, "nothing else was answered");
});

Deno.test("FlowEngine by default allows the TUN's own and this host's addresses", async () => {
  const tun = new MemoryTun();
  const dialer = new CountingDialer();
  await using engine = await FlowEngine.start({
    tun,
    dialer,
    v4: { tun: "127.0.0.1", peer: "127.0.0.2" },
  });
  const own = systemAddresses().find((a) => !a.includes(":") && !a.startsWith("127."));
  tun.inject(udpPacket("127.0.0.1", 1, "10.96.0.53", 53, new Uint8Array([1])));
  if (own !== undefined) tun.inject(udpPacket(own, 2, "10.96.0.53", 53, new Uint8Array([1])));
  tun.inject(udpPacket("203.0.113.200", 3, "10.96.0.53", 53, new Uint8Array([1])));
  tun.inject(tcpPacket("127.0.0.1", 40000, "10.96.0.10", 443, { flags: TCP_SYN, seq: 1 }));
  await tun.nextWrite();
  assert.equal(engine.stats.notLocal, 1);
  assert.equal(dialer.udp.length, own === undefined ? 1 : 2);
});
