/**
 * The Windows driver, driven through a fake Wintun that models the ring, its wait event and its
 * error codes (`wintun_fake.ts`). Real Wintun behaviour is only checked on Windows.
 */
import assert from "node:assert/strict";
import { FakeWintun, type FakeWintunOptions } from "./wintun_fake.ts";
import {
  KCONNECT_ADAPTER_GUID,
  openWindowsTun,
  type WindowsTunDevice,
  WINTUN_RING_CAPACITY,
} from "./windows.ts";
import { WinError } from "./wintun_symbols.ts";
import type { TunOptions } from "./device.ts";
import { fillUnicastAddressRow, MIB_UNICASTIPADDRESS_ROW_SIZE } from "./windows_rows.ts";

const ADDRS = [{ address: "198.18.0.1", prefixLength: 30 }];

async function open(
  options: FakeWintunOptions = {},
): Promise<{ fake: FakeWintun; tun: WindowsTunDevice }> {
  const fake = new FakeWintun(options);
  const tun = await openWindowsTun({ mtu: 1400, addresses: ADDRS }, fake.native);
  return { fake, tun };
}

function packet(n: number, length = 20 + n): Uint8Array {
  return new Uint8Array(length).map((_, i) => (n * 31 + i) & 0xff);
}

/** Resolves with `p`'s value, or rejects when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

Deno.test("openWindowsTun() creates kconnect's adapter with its GUID, configures it, then starts an 8 MiB session", async () => {
  const { fake, tun } = await open();
  assert.deepEqual(fake.created?.name, "kconnect");
  assert.deepEqual(fake.created?.tunnelType, "kconnect");
  assert.equal(KCONNECT_ADAPTER_GUID, "f7f0d3eb-89ce-4d12-802a-913e65f0b26e");
  assert.deepEqual(
    [...fake.created!.guid].map((b) => b.toString(16).padStart(2, "0")).join(""),
    "ebd3f0f7ce89124d802a913e65f0b26e", // Data1..3 little-endian, Data4 as is
  );
  assert.equal(fake.capacity, 0x800000);
  assert.equal(WINTUN_RING_CAPACITY, 8 * 1024 * 1024);
  assert.equal(tun.name, "kconnect");
  assert.equal(tun.mtu, 1400);
  assert.equal(tun.luid, fake.luid);
  assert.deepEqual(fake.calls, [
    "WintunCreateAdapter kconnect",
    "WintunGetAdapterLUID",
    "ConvertInterfaceLuidToAlias",
    "GetUnicastIpAddressTable 2",
    "GetUnicastIpAddressTable 23",
    "InitializeIpInterfaceEntry",
    "GetIpInterfaceEntry 2",
    "SetIpInterfaceEntry",
    "InitializeUnicastIpAddressEntry",
    "CreateUnicastIpAddressEntry",
    `WintunStartSession ${0x800000}`,
  ]);
  assert.equal(fake.createdAddresses.length, 1);
  assert.equal(fake.setInterfaces.length, 1);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice.read() takes a burst from the ring, copies at the offset and releases each packet", async () => {
  const { fake, tun } = await open();
  const sent = [packet(1), packet(2), packet(3)];
  fake.deliver(...sent);
  const bufs = [new Uint8Array(4 + 1400), new Uint8Array(4 + 1400)];
  const sizes = [0, 0];
  assert.equal(await tun.read(bufs, sizes, 4), 2);
  assert.deepEqual(sizes, [21, 22]);
  assert.deepEqual(bufs[0].subarray(4, 4 + 21), sent[0]);
  assert.deepEqual(bufs[1].subarray(4, 4 + 22), sent[1]);
  assert.deepEqual([...bufs[0].subarray(0, 4)], [0, 0, 0, 0], "headroom untouched");
  assert.equal(fake.outstanding, 0, "every packet released");
  assert.equal(await tun.read(bufs, sizes, 4), 1);
  assert.deepEqual(bufs[0].subarray(4, 4 + 23), sent[2]);
  assert.equal(tun.stats.readPackets, 3);
  assert.equal(tun.stats.readBytes, 21 + 22 + 23);
  const ring = fake.calls.filter((c) => c.startsWith("WintunRe"));
  assert.deepEqual(ring.slice(0, 4), [
    "WintunReceivePacket",
    "WintunReleaseReceivePacket",
    "WintunReceivePacket",
    "WintunReleaseReceivePacket",
  ]);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice.read() waits on the read event when the ring is empty (ERROR_NO_MORE_ITEMS) and wakes when packets come", async () => {
  const { fake, tun } = await open();
  const bufs = [new Uint8Array(1400)];
  const sizes = [0];
  const reading = tun.read(bufs, sizes, 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fake.waiting, 1, "one wait on the event, no spinning");
  const receives = fake.calls.filter((c) => c === "WintunReceivePacket").length;
  assert.equal(receives, 1);
  fake.deliver(packet(7));
  assert.equal(await within(reading, 1000, "read after deliver"), 1);
  assert.equal(sizes[0], 27);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice.close() wakes a waiting read with SetEvent before the session ends; the read resolves 0", async () => {
  const { fake, tun } = await open(); // the fake's waits never time out: only SetEvent wakes
  const reading = tun.read([new Uint8Array(1400)], [0], 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fake.waiting, 1);
  await within(tun.close(), 1000, "close");
  assert.equal(await within(reading, 1000, "read after close"), 0);
  const tail = fake.calls.slice(fake.calls.indexOf("SetEvent"));
  assert.deepEqual(tail, ["SetEvent", "WintunEndSession", "WintunCloseAdapter", "release"]);
  assert.equal(await tun.read([new Uint8Array(1400)], [0], 0), 0, "reads after close");
  await tun.close(); // twice is harmless
  assert.equal(fake.calls.filter((c) => c === "WintunCloseAdapter").length, 1);
  assert.equal(tun.write([packet(1)], 0), 0);
  assert.equal(tun.stats.writeErrors, 1);
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice: ERROR_HANDLE_EOF (the adapter went away) ends reads with 0 and drops writes", async () => {
  const { fake, tun } = await open();
  const reading = tun.read([new Uint8Array(1400)], [0], 0);
  await new Promise((r) => setTimeout(r, 10));
  fake.goAway();
  assert.equal(await within(reading, 1000, "read after EOF"), 0);
  assert.equal(await tun.read([new Uint8Array(1400)], [0], 0), 0);
  assert.equal(tun.write([packet(1), packet(2)], 0), 0);
  assert.equal(tun.stats.writeErrors, 2);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice.write() copies each packet into the send ring; ERROR_BUFFER_OVERFLOW drops and counts", async () => {
  const { fake, tun } = await open({ sendRingBytes: 100 });
  const a = packet(1, 40);
  const b = packet(2, 40);
  const c = packet(3, 40);
  const withHeadroom = (p: Uint8Array) => {
    const buf = new Uint8Array(8 + p.length).fill(0xaa);
    buf.set(p, 8);
    return buf;
  };
  assert.equal(tun.write([a, b, c].map(withHeadroom), 8), 2, "the third does not fit");
  assert.deepEqual(fake.sent, [a, b]);
  assert.equal(tun.stats.writtenPackets, 2);
  assert.equal(tun.stats.writtenBytes, 80);
  assert.equal(tun.stats.writeErrors, 1);
  assert.equal(tun.stats.sendRingFull, 1);
  fake.drain();
  assert.equal(tun.write([c], 0), 1);
  assert.deepEqual(fake.sent[2], c);
  assert.equal(tun.write([new Uint8Array(0), new Uint8Array(0x10000)], 0), 0, "empty, too big");
  assert.equal(tun.stats.writeErrors, 3);
  assert.equal(tun.stats.sendRingFull, 1);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("WindowsTunDevice.read(): a corrupt ring (ERROR_INVALID_DATA) throws; a stray last error is retried after a wait, the same non-zero one three times in a row throws", async () => {
  {
    const { fake, tun } = await open();
    fake.corrupt = true;
    fake.deliver(packet(1));
    await assert.rejects(() => tun.read([new Uint8Array(1400)], [0], 0), /ERROR_INVALID_DATA/);
    await tun.close();
  }
  {
    const { fake, tun } = await open();
    // Something overwrote ERROR_NO_MORE_ITEMS: with 0 (a successful call in between), as
    // often as it likes; with other codes, never the same three times in a row.
    fake.clobberLastError = [0, 0, 0, 0, 0, 5, 5, 87, 5];
    const reading = tun.read([new Uint8Array(1400)], [0], 0);
    for (let i = 0; i < 9; i++) {
      await new Promise((r) => setTimeout(r, 2));
      assert.equal(fake.waiting, 1, "waits instead of failing");
      fake.wake(); // a spurious wake-up
    }
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(fake.clobberLastError.length, 0);
    fake.deliver(packet(4));
    assert.equal(await within(reading, 1000, "read"), 1);
    // A packet between them breaks a run of the same error.
    fake.clobberLastError = [5, 5];
    const second = tun.read([new Uint8Array(1400)], [0], 0);
    await new Promise((r) => setTimeout(r, 2));
    fake.wake();
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(fake.clobberLastError.length, 0, "ERROR_ACCESS_DENIED twice");
    fake.clobberLastError = [5, 5]; // the first is read after the packet, in the same burst
    fake.deliver(packet(5));
    assert.equal(await within(second, 1000, "read"), 1);
    const third = tun.read([new Uint8Array(1400)], [0], 0);
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(fake.waiting, 1, "still waiting: the run was broken by the packet");
    await tun.close();
    assert.equal(await third, 0);
    assert.deepEqual(fake.violations, []);
  }
  {
    const { fake, tun } = await open();
    fake.clobberLastError = [0];
    const reading = tun.read([new Uint8Array(1400)], [0], 0);
    await new Promise((r) => setTimeout(r, 2));
    fake.deliver(packet(4));
    assert.equal(await within(reading, 1000, "read"), 1);
    await tun.close();
    assert.deepEqual(fake.violations, []);
  }
  {
    const { fake, tun } = await open();
    // Three empty-ring answers whose last error reads as ERROR_ACCESS_DENIED, each after a
    // wake-up.
    fake.clobberLastError = [5, 5, 5];
    const reading = tun.read([new Uint8Array(1400)], [0], 0).catch((e: Error) => e);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 5));
      fake.wake(); // a spurious wake-up
    }
    const outcome = await within(reading, 1000, "read");
    assert.ok(outcome instanceof Error);
    assert.match(outcome.message, /WintunReceivePacket on kconnect: ERROR_ACCESS_DENIED/);
    await tun.close();
  }
});

Deno.test("WindowsTunDevice.read() drops a packet too big for the buffer, counts it, and still releases it", async () => {
  const { fake, tun } = await open();
  fake.deliver(packet(1, 200), packet(2, 50));
  const sizes = [0];
  const bufs = [new Uint8Array(100)];
  assert.equal(await tun.read(bufs, sizes, 0), 1);
  assert.equal(sizes[0], 50);
  assert.equal(tun.stats.readOversize, 1);
  assert.equal(fake.outstanding, 0);
  await tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("openWindowsTun(): without administrator rights it says so and loads nothing more; an existing adapter is opened", async () => {
  const denied = new FakeWintun({ createError: WinError.ERROR_ACCESS_DENIED });
  await assert.rejects(
    () => openWindowsTun({}, denied.native),
    (e: Error) => e instanceof Deno.errors.PermissionDenied && /administrator/.test(e.message),
  );
  assert.deepEqual(denied.calls, ["WintunCreateAdapter kconnect", "release"]);

  const exists = new FakeWintun({ createError: WinError.ERROR_ALREADY_EXISTS });
  const tun = await openWindowsTun({ name: "kconnect" }, exists.native);
  assert.deepEqual(exists.calls.slice(0, 2), [
    "WintunCreateAdapter kconnect",
    "WintunOpenAdapter kconnect",
  ]);
  await tun.close();

  const neither = new FakeWintun({
    createError: WinError.ERROR_ALREADY_EXISTS,
    openError: WinError.ERROR_NOT_FOUND,
  });
  await assert.rejects(
    () => openWindowsTun({}, neither.native),
    /ERROR_ALREADY_EXISTS.*ERROR_NOT_FOUND/,
  );
});

Deno.test("openWindowsTun(): a failure while configuring closes the adapter again", async () => {
  const fake = new FakeWintun({ setInterfaceStatus: WinError.ERROR_INVALID_PARAMETER });
  await assert.rejects(
    () => openWindowsTun({ mtu: 1400, addresses: ADDRS }, fake.native),
    /SetIpInterfaceEntry MTU 1400 \(IPv4\): ERROR_INVALID_PARAMETER/,
  );
  assert.deepEqual(fake.calls.slice(-2), ["WintunCloseAdapter", "release"]);
  assert.ok(!fake.calls.some((c) => c.startsWith("WintunStartSession")));
  assert.deepEqual(fake.violations, []);
});

Deno.test("openWindowsTun() refuses a bad name, MTU or address before touching the system", async () => {
  const fake = new FakeWintun();
  for (
    const [options, pattern] of [
      [{ name: "" }, /adapter name/],
      [{ name: "a\\b" }, /adapter name/],
      [{ name: "x".repeat(128) }, /adapter name/],
      [{ mtu: 575 }, /at least 576/],
      [{ mtu: 70000 }, /MTU/],
      [{ addresses: [{ address: "10.0.0.300", prefixLength: 8 }] }, /Invalid TUN address/],
    ] as [TunOptions, RegExp][]
  ) {
    await assert.rejects(() => openWindowsTun(options, fake.native), pattern);
  }
  assert.deepEqual(fake.calls, []);
});

Deno.test("openWindowsTun() removes addresses an earlier run left on the adapter, and only those", async () => {
  const mine = new Uint8Array(MIB_UNICASTIPADDRESS_ROW_SIZE);
  fillUnicastAddressRow(mine, {
    luid: 0x0035000001000000n,
    address: new Uint8Array([198, 18, 0, 5]),
    prefixLength: 30,
  });
  const other = new Uint8Array(MIB_UNICASTIPADDRESS_ROW_SIZE);
  fillUnicastAddressRow(other, {
    luid: 0x0006000002000000n,
    address: new Uint8Array([192, 168, 1, 10]),
    prefixLength: 24,
  });
  const { fake, tun } = await open({ addressTable: [other, mine] });
  assert.deepEqual(fake.deletedAddresses, [mine]);
  assert.equal(fake.tablesHeld, 0, "the table is freed");
  await tun.close();
});

Deno.test("openWindowsTun() names the device by the alias Windows gave the adapter", async () => {
  const { fake, tun } = await open({ alias: "kconnect 2" });
  assert.equal(fake.created?.name, "kconnect");
  assert.equal(tun.name, "kconnect 2");
  await tun.close();
});
