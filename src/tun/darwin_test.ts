import assert from "node:assert/strict";
import { type DarwinTunDevice, openDarwinTun, UTUN_HEADROOM } from "./darwin.ts";
import { DarwinErrno as E } from "./darwin_libc.ts";
import { FakeDarwin, FakeRunner } from "./darwin_fake_test.ts";
import type { TunDevice, TunOptions } from "./device.ts";
import type { openLinuxTun } from "./linux.ts";

// The OS switch (`open.ts`) calls either opener the same way: checked by deno check.
const _sameShape: (options?: TunOptions) => Promise<TunDevice> = openDarwinTun;
const _sameAsLinux: (options: Parameters<typeof openLinuxTun>[0]) => Promise<TunDevice> =
  openDarwinTun;

const V4 = [{ address: "198.18.0.1", prefixLength: 29 }];
const V4V6 = [...V4, { address: "fd00:6b63::1", prefixLength: 125 }];

/** An IPv4 packet of `length` bytes whose bytes after the version say `tag`. */
function ip4(length: number, tag: number): Uint8Array {
  const p = new Uint8Array(length).fill(tag);
  p[0] = 0x45;
  return p;
}

function ip6(length: number, tag: number): Uint8Array {
  const p = new Uint8Array(length).fill(tag);
  p[0] = 0x60;
  return p;
}

function frame(family: number, packet: Uint8Array): Uint8Array {
  const f = new Uint8Array(4 + packet.length);
  f[3] = family;
  f.set(packet, 4);
  return f;
}

async function open(
  fake = new FakeDarwin(),
  runner = new FakeRunner(),
  addresses = V4,
): Promise<{ fake: FakeDarwin; runner: FakeRunner; tun: DarwinTunDevice }> {
  const tun = await openDarwinTun({ mtu: 1500, addresses }, {
    libc: fake.symbols,
    run: runner.run,
  });
  return { fake, runner, tun };
}

Deno.test("openDarwinTun: the call sequence, a kernel-chosen unit, CLOEXEC on every fd", async () => {
  const fake = new FakeDarwin();
  for (const unit of [1, 2, 3, 4]) fake.takenUnits.add(unit); // utun0..utun3 exist
  const runner = new FakeRunner();
  const { tun } = await open(fake, runner, V4V6);
  assert.equal(tun.name, "utun4");
  assert.equal(tun.mtu, 1500);
  assert.deepEqual(fake.calls.map((c) => `${c.name} ${c.args}`), [
    "socket 32 2 2",
    "fcntl 3 2 1 1",
    "ioctl 3 0xc0644e03",
    "connect 3 id=42 unit=0",
    "getsockopt 3 2 2",
    "pipe ",
    "fcntl 4 2 1 1",
    "fcntl 5 2 1 1",
  ]);
  assert.deepEqual(fake.openFds, [3, 4, 5]);
  assert.ok([...fake.fds.values()].every((s) => s.cloexec), "every descriptor is close-on-exec");
  assert.deepEqual(runner.runs, [
    "/sbin/ifconfig utun4 inet 198.18.0.1/29 198.18.0.1 alias",
    "/sbin/ifconfig utun4 inet6 fd00:6b63::1/125 alias",
    "/sbin/ifconfig utun4 mtu 1500 up",
    "/sbin/route -n add -inet 198.18.0.0/29 -iface utun4",
    "/sbin/route -n add -inet6 fd00:6b63::/125 -iface utun4",
  ]);
  await tun.close();
});

Deno.test("openDarwinTun: a utunN name asks for unit N+1; EBUSY names the name; others refused", async () => {
  const fake = new FakeDarwin();
  const tun = await openDarwinTun({ name: "utun9" }, {
    libc: fake.symbols,
    run: new FakeRunner().run,
  });
  assert.equal(tun.name, "utun9");
  assert.equal(fake.calls.find((c) => c.name === "connect")!.args, "3 id=42 unit=10");
  await assert.rejects(
    openDarwinTun({ name: "utun9" }, { libc: fake.symbols, run: new FakeRunner().run }),
    (e: Error) => e instanceof Deno.errors.Busy && /utun9 is in use/.test(e.message),
  );
  await tun.close();

  const untouched = new FakeDarwin();
  for (const name of ["kc0", "utun", "utun01", "en0"]) {
    await assert.rejects(
      openDarwinTun({ name }, { libc: untouched.symbols, run: new FakeRunner().run }),
      TypeError,
    );
  }
  await assert.rejects(
    openDarwinTun({ mtu: 1279, addresses: V4V6 }, { libc: untouched.symbols }),
    RangeError,
  );
  assert.deepEqual(untouched.calls, [], "nothing is opened for a bad name or configuration");
});

Deno.test("openDarwinTun: a failed step closes what it opened, with the errno and a hint", async () => {
  // Not root: connect fails with EPERM.
  const notRoot = new FakeDarwin();
  notRoot.root = false;
  await assert.rejects(
    openDarwinTun({}, { libc: notRoot.symbols, run: new FakeRunner().run }),
    (e: Error & { code?: string }) =>
      e instanceof Deno.errors.PermissionDenied && e.code === "EPERM" &&
      /connect to the utun control: Operation not permitted \(EPERM\) — run as root/.test(
        e.message,
      ),
  );
  assert.deepEqual(notRoot.openFds, []);
  assert.deepEqual(notRoot.closed, [3]);

  // Each native step failing, in turn.
  for (
    const [step, errno, code] of [
      ["socket", E.EMFILE, "EMFILE"],
      ["fcntl", E.EBADF, "EBADF"],
      ["ioctl", E.ENOENT, "ENOENT"],
      ["getsockopt", E.EINVAL, "EINVAL"],
      ["pipe", E.ENFILE, "ENFILE"],
    ] as const
  ) {
    const fake = new FakeDarwin();
    fake.fail(step, errno);
    await assert.rejects(
      openDarwinTun({}, { libc: fake.symbols, run: new FakeRunner().run }),
      (e: Error & { code?: string; errno?: number }) => e.code === code && e.errno === errno,
      step,
    );
    assert.deepEqual(fake.openFds, [], `${step}: nothing left open`);
    assert.equal(fake.takenUnits.size, 0, `${step}: no utun left`);
  }

  // A transient failure is retried once (errno read right after the second call).
  const once = new FakeDarwin();
  once.fail("ioctl", E.EINTR, 1);
  const ok = await openDarwinTun({}, { libc: once.symbols, run: new FakeRunner().run });
  assert.equal(once.calls.filter((c) => c.name === "ioctl").length, 2);
  await ok.close();

  // A configuration command failing closes the utun and the pipe.
  const fake = new FakeDarwin();
  const runner = new FakeRunner();
  runner.results.push({
    match: "mtu",
    result: { code: 1, stdout: "", stderr: "ifconfig: ioctl (SIOCSIFMTU): Invalid argument\n" },
  });
  await assert.rejects(
    open(fake, runner),
    /\/sbin\/ifconfig utun0 mtu 1500 up failed: ifconfig: ioctl \(SIOCSIFMTU\): Invalid argument/,
  );
  assert.deepEqual(fake.openFds, []);
  assert.deepEqual(fake.closed.sort(), [3, 4, 5]);
});

Deno.test("openDarwinTun: route(8) output decides, not its exit status", async () => {
  // IPv4: a prefix route that exists already (elsewhere) is a failure, even with exit 0.
  const fake = new FakeDarwin();
  const runner = new FakeRunner();
  runner.results.push({
    match: "-inet 198.18.0.0/29",
    result: {
      code: 0,
      stdout: "add net 198.18.0.0: gateway utun0: File exists\n",
      stderr: "route: writing to routing socket: File exists\n",
    },
  });
  await assert.rejects(
    open(fake, runner),
    /-inet 198\.18\.0\.0\/29 -iface utun0 failed: File exists/,
  );
  assert.deepEqual(fake.openFds, []);

  // IPv6: the kernel may have routed the prefix itself when the address was added.
  const fake6 = new FakeDarwin();
  const runner6 = new FakeRunner();
  runner6.results.push({
    match: "-inet6",
    result: { code: 0, stdout: "", stderr: "route: writing to routing socket: File exists\n" },
  });
  const { tun } = await open(fake6, runner6, V4V6);
  assert.equal(runner6.runs.length, 5);
  await tun.close();
});

Deno.test("read: a burst until EAGAIN, the header in the headroom, no copy", async () => {
  const { fake, tun } = await open();
  const a = ip4(40, 1);
  const b = ip6(60, 2);
  const c = ip4(20, 3);
  fake.inject(frame(2, a));
  fake.inject(frame(30, b));
  fake.inject(frame(2, c));
  const bufs = [new Uint8Array(8 + 1500), new Uint8Array(8 + 1500)];
  const sizes = [0, 0];
  assert.equal(await tun.read(bufs, sizes, 8), 2);
  assert.deepEqual(sizes, [40, 60]);
  assert.deepEqual(bufs[0].subarray(8, 48), a);
  assert.deepEqual(bufs[1].subarray(8, 68), b);
  assert.deepEqual([...bufs[0].subarray(4, 8)], [0, 0, 0, 2], "header just before offset");
  assert.deepEqual([...bufs[1].subarray(4, 8)], [0, 0, 0, 30]);
  // The kernel wrote straight into the caller's buffers, 4 bytes before offset.
  assert.equal(fake.recvBuffers[0].buffer, bufs[0].buffer);
  assert.equal(fake.recvBuffers[0].byteOffset, 4);
  assert.equal(fake.recvBuffers[1].buffer, bufs[1].buffer);
  assert.equal(fake.pollsStarted, 0, "packets were ready: no poll");

  // One left: returned without waiting; the burst stops at EAGAIN.
  assert.equal(await tun.read(bufs, sizes, 8), 1);
  assert.equal(sizes[0], 20);
  assert.deepEqual(bufs[0].subarray(8, 28), c);
  assert.equal(fake.pollsStarted, 0);
  assert.deepEqual(tun.stats, {
    readPackets: 3,
    readBytes: 120,
    writtenPackets: 0,
    writtenBytes: 0,
    writeErrors: 0,
  });

  // Empty: the read waits in poll until a packet comes.
  const pending = tun.read(bufs, sizes, 4);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fake.pollsStarted, 1);
  const d = ip6(48, 4);
  fake.inject(frame(30, d));
  assert.equal(await pending, 1);
  assert.equal(sizes[0], 48);
  assert.deepEqual(bufs[0].subarray(4, 52), d);
  await tun.close();
});

Deno.test("read: offset below 4 copies through a scratch buffer; runts are dropped", async () => {
  const { fake, tun } = await open();
  const a = ip4(28, 7);
  fake.inject(new Uint8Array([0, 0, 0, 2])); // a header with no packet
  fake.inject(frame(2, a));
  const bufs = [new Uint8Array(1500)];
  const sizes = [0];
  assert.equal(await tun.read(bufs, sizes, 0), 1);
  assert.equal(sizes[0], 28);
  assert.deepEqual(bufs[0].subarray(0, 28), a);
  assert.notEqual(fake.recvBuffers[0].buffer, bufs[0].buffer, "offset 0: a scratch buffer");
  assert.equal(tun.readDrops, 1);
  assert.equal(tun.stats.readPackets, 1);
  await assert.rejects(tun.read(bufs, sizes, -1), RangeError);
  await tun.close();
});

Deno.test("read: EINTR is retried, another error is thrown (after handing over what was read)", async () => {
  const { fake, tun } = await open();
  const bufs = [new Uint8Array(4 + 1500), new Uint8Array(4 + 1500)];
  const sizes = [0, 0];
  fake.inject(frame(2, ip4(20, 1)));
  fake.fail("recv", E.EINTR, 1);
  assert.equal(await tun.read(bufs, sizes, 4), 1);
  assert.equal(sizes[0], 20);

  // The first recv gets a packet, the next fails (twice: the confirming call fails too).
  fake.inject(frame(2, ip4(24, 3)));
  fake.fail("recv", E.EIO, 2, 1);
  assert.equal(await tun.read(bufs, sizes, 4), 1, "the packet before the error is handed over");
  assert.equal(sizes[0], 24);
  fake.fail("recv", E.EIO, 2);
  await assert.rejects(
    tun.read(bufs, sizes, 4),
    (e: Error & { code?: string }) =>
      e.code === "EIO" && /recv from utun utun0: Input\/output error \(EIO\)/.test(e.message),
  );
  // One failed call confirmed by a second is an error; a single one is taken as transient.
  fake.inject(frame(2, ip4(20, 9)));
  fake.fail("recv", E.EIO, 1);
  assert.equal(await tun.read(bufs, sizes, 4), 1);
  await tun.close();
});

Deno.test("write: the header goes into the headroom, no copy; EINTR retried; ENOBUFS/EAGAIN dropped and counted", async () => {
  const { fake, tun } = await open();
  const p4 = ip4(40, 1);
  const p6 = ip6(60, 2);
  const b4 = new Uint8Array(4 + 40).fill(0xee);
  b4.set(p4, 4);
  const b6 = new Uint8Array(4 + 60).fill(0xee);
  b6.set(p6, 4);
  assert.equal(tun.write([b4, b6], UTUN_HEADROOM), 2);
  assert.deepEqual(fake.sent, [frame(2, p4), frame(30, p6)]);
  assert.equal(fake.sentBuffers[0].buffer, b4.buffer, "sent from the caller's buffer");
  assert.equal(fake.sentBuffers[0].byteOffset, 0);
  assert.deepEqual([...b6.subarray(0, 4)], [0, 0, 0, 30], "the header was written in place");

  // Offset 0: through a copy, same bytes on the wire.
  assert.equal(tun.write([p4], 0), 1);
  assert.deepEqual(fake.sent[2], frame(2, p4));
  assert.notEqual(fake.sentBuffers[2].buffer, p4.buffer);

  // A larger offset: only bytes from offset - 4 on are touched and sent.
  const wide = new Uint8Array(10 + 20).fill(0xaa);
  wide.set(ip4(20, 5), 10);
  assert.equal(tun.write([wide], 10), 1);
  assert.deepEqual(fake.sent[3], frame(2, ip4(20, 5)));
  assert.deepEqual([...wide.subarray(0, 6)], [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);

  fake.fail("send", E.EINTR, 1);
  assert.equal(tun.write([p4], 0), 1, "EINTR: sent on the second try");
  fake.fail("send", E.ENOBUFS, 1);
  fake.fail("send", E.EAGAIN, 1);
  const before = fake.sent.length;
  assert.equal(tun.write([p4, p6, p4], 0), 1, "two dropped, the third accepted");
  assert.equal(fake.sent.length, before + 1);
  // Not IP, empty, or longer than the MTU: dropped without a call.
  assert.equal(tun.write([new Uint8Array([0x10, 1, 2]), new Uint8Array(0), ip4(1501, 1)], 0), 0);
  assert.equal(fake.sent.length, before + 1);
  assert.deepEqual(tun.stats, {
    readPackets: 0,
    readBytes: 0,
    writtenPackets: 6,
    writtenBytes: 40 + 60 + 40 + 20 + 40 + 40,
    writeErrors: 5,
  });
  await tun.close();
});

Deno.test("close: wakes a pending read with 0, closes every fd only after the poll ended", async () => {
  const { fake, tun } = await open();
  const bufs = [new Uint8Array(4 + 1500)];
  const sizes = [0];
  const pending = tun.read(bufs, sizes, 4);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(fake.pollsRunning, 1);
  await tun.close();
  assert.equal(await pending, 0);
  assert.deepEqual(fake.pollEnds, ["ready"], "woken by the pipe, not by the poll timeout");
  assert.deepEqual(fake.calls.filter((c) => c.name === "write").map((c) => c.args), ["5 1"]);
  assert.deepEqual(fake.closedUnderPoll, []);
  assert.deepEqual(fake.openFds, []);
  assert.deepEqual(fake.closed, [3, 4, 5]);
  assert.equal(fake.takenUnits.size, 0, "the utun is gone with its descriptor");
  assert.equal(tun.fd, -1);

  await tun.close(); // harmless
  await tun[Symbol.asyncDispose]();
  assert.deepEqual(fake.closed, [3, 4, 5]);
  assert.equal(await tun.read(bufs, sizes, 4), 0);
  assert.equal(tun.write([ip4(20, 1)], 0), 0);
  assert.equal(tun.stats.writeErrors, 1);
});
