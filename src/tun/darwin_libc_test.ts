/**
 * Golden bytes for the structs and numbers the utun driver hands to the kernel. The expected
 * values come from the layout table in `../shared/platform-notes.md` §B (XNU headers, checked
 * there against gcc and golang/sys `ztypes_darwin_{amd64,arm64}.go`), written out byte by byte
 * here rather than recomputed with the code under test.
 */
import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  CTL_INFO_SIZE,
  ctlInfo,
  ctlInfoId,
  CTLIOCGINFO,
  DARWIN_SYMBOLS,
  DarwinErrno,
  darwinErrnoError,
  darwinLibc,
  errnoReader,
  fcntlInt,
  ioc,
  IOC_IN,
  IOC_INOUT,
  IOC_VOID,
  ioctlPtr,
  readUtunHeader,
  SOCKADDR_CTL_SIZE,
  sockaddrCtl,
  utunFamily,
  writeUtunHeader,
} from "./darwin_libc.ts";
import type { DarwinLibc } from "./darwin_libc.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("ctl_info: ctl_id u32 at 0, ctl_name[96] at 4, 100 bytes", () => {
  const b = ctlInfo("com.apple.net.utun_control");
  assert.equal(b.length, 100);
  assert.equal(
    hex(b),
    "00000000" + "636f6d2e6170706c652e6e65742e7574756e5f636f6e74726f6c" + "00".repeat(70),
  );
  // The kernel's answer is read back from offset 0, little-endian.
  b.set([0x04, 0x03, 0x02, 0x01], 0);
  assert.equal(ctlInfoId(b), 0x01020304);
  assert.throws(() => ctlInfo("x".repeat(96)), RangeError);
  assert.equal(ctlInfo("x".repeat(95))[98], 0x78);
});

Deno.test("sockaddr_ctl: len 32, AF_SYSTEM, AF_SYS_CONTROL, sc_id, sc_unit, 5 reserved u32", () => {
  assert.equal(
    hex(sockaddrCtl(0x2a, 0)),
    "20" + "20" + "0200" + "2a000000" + "00000000" + "00".repeat(20),
  );
  assert.equal(
    hex(sockaddrCtl(0x01020304, 10)),
    "20" + "20" + "0200" + "04030201" + "0a000000" + "00".repeat(20),
  );
  assert.equal(SOCKADDR_CTL_SIZE, 32);
});

Deno.test("utun header: 4-byte big-endian family, 2 for IPv4 and 30 for IPv6", () => {
  assert.equal(AF_INET, 2);
  assert.equal(AF_INET6, 30);
  const b = new Uint8Array(8).fill(0xff);
  writeUtunHeader(b, 2, AF_INET);
  assert.equal(hex(b), "ffff00000002ffff");
  writeUtunHeader(b, 0, AF_INET6);
  assert.equal(hex(b.subarray(0, 4)), "0000001e");
  assert.equal(readUtunHeader(b, 0), 30);
  assert.equal(readUtunHeader(new Uint8Array([0, 0, 0, 2])), 2);
  assert.equal(utunFamily(new Uint8Array([0x45])), AF_INET);
  assert.equal(utunFamily(new Uint8Array([0, 0x60]), 1), AF_INET6);
  assert.equal(utunFamily(new Uint8Array([0x10])), 0);
  assert.equal(utunFamily(new Uint8Array(0)), 0);
});

Deno.test("ioctl numbers computed from the struct sizes match the notes' constants", () => {
  assert.equal(ioc(IOC_INOUT, "N", 3, CTL_INFO_SIZE), 0xc0644e03);
  assert.equal(CTLIOCGINFO, 0xc0644e03);
  // The notes' other numbers, from their sizes (ifaliasreq 64, in6_aliasreq 128, ifreq 32).
  assert.equal(ioc(IOC_IN, "i", 26, 64), 0x8040691a); // SIOCAIFADDR
  assert.equal(ioc(IOC_IN, "i", 26, 128), 0x8080691a); // SIOCAIFADDR_IN6
  assert.equal(ioc(IOC_IN, "i", 52, 32), 0x80206934); // SIOCSIFMTU
  assert.equal(ioc(IOC_VOID, "f", 1, 0), 0x20006601); // FIOCLEX
});

Deno.test("variadic ioctl/fcntl: 9 fixed parameters, the argument 3rd and 9th, 8-byte fillers", () => {
  const io = DARWIN_SYMBOLS.ioctl.parameters;
  assert.deepEqual([...io], ["i32", "u64", "buffer", "u64", "u64", "u64", "u64", "u64", "buffer"]);
  const fc = DARWIN_SYMBOLS.fcntl.parameters;
  assert.deepEqual([...fc], ["i32", "i32", "u64", "u64", "u64", "u64", "u64", "u64", "u64"]);
  // The wrappers pass the same argument in both places.
  const seen: unknown[][] = [];
  const fake = {
    ioctl: (...a: unknown[]) => (seen.push(a), 0),
    fcntl: (...a: unknown[]) => (seen.push(a), 0),
  } as unknown as DarwinLibc;
  const arg = new Uint8Array(100);
  ioctlPtr(fake, 5, CTLIOCGINFO, arg);
  fcntlInt(fake, 5, 2, 1);
  assert.equal(seen[0][2], arg);
  assert.equal(seen[0][8], arg);
  assert.deepEqual(seen[0].slice(3, 8), [0n, 0n, 0n, 0n, 0n]);
  assert.equal(seen[0][1], 0xc0644e03n);
  assert.deepEqual(seen[1], [5, 2, 1n, 0n, 0n, 0n, 0n, 0n, 1n]);
  // Non-variadic calls stay plain; poll runs on a worker thread, with Darwin's u32 nfds_t.
  assert.deepEqual([...DARWIN_SYMBOLS.poll.parameters], ["buffer", "u32", "i32"]);
  assert.equal(DARWIN_SYMBOLS.poll.nonblocking, true);
});

Deno.test({
  name: "variadic ioctl/fcntl: the 9-parameter declarations work through Deno FFI (Linux libc)",
  ignore: Deno.build.os !== "linux",
  fn() {
    // The same declarations, bound to glibc: FIONREAD on a pipe, and F_SETFD/F_GETFD. On
    // x86_64 and aarch64 Linux the callee reads the 3rd argument; this shows the extra stack
    // arguments do no harm and the values arrive (the Apple-arm64 stack slot needs a Mac).
    const lib = Deno.dlopen("libc.so.6", {
      ioctl: DARWIN_SYMBOLS.ioctl,
      fcntl: DARWIN_SYMBOLS.fcntl,
      pipe: DARWIN_SYMBOLS.pipe,
      write: DARWIN_SYMBOLS.write,
      close: DARWIN_SYMBOLS.close,
    });
    try {
      const c = lib.symbols as unknown as DarwinLibc;
      const fds = new Int32Array(2);
      assert.equal(c.pipe(new Uint8Array(fds.buffer)), 0);
      try {
        assert.equal(Number(c.write(fds[1], new Uint8Array(5), 5n)), 5);
        const available = new Uint8Array(4);
        for (let i = 0; i < 1000; i++) {
          assert.equal(ioctlPtr(c, fds[0], 0x541b, available), 0); // FIONREAD
          assert.equal(new DataView(available.buffer).getInt32(0, true), 5);
        }
        assert.equal(fcntlInt(c, fds[0], 2, 1), 0); // F_SETFD FD_CLOEXEC
        assert.equal(fcntlInt(c, fds[0], 1, 0), 1); // F_GETFD
        assert.equal(fcntlInt(c, fds[0], 2, 0), 0);
        assert.equal(fcntlInt(c, fds[0], 1, 0), 0);
      } finally {
        c.close(fds[0]);
        c.close(fds[1]);
      }
    } finally {
      lib.close();
    }
  },
});

Deno.test("errno is read through __error()'s pointer; errors carry Darwin's numbers", () => {
  const cell = new Int32Array(1);
  const reader = errnoReader(
    { __error: () => Deno.UnsafePointer.of(cell) } as unknown as DarwinLibc,
  );
  cell[0] = 35;
  assert.equal(reader(), 35);
  cell[0] = 55;
  assert.equal(reader(), 55);
  assert.throws(() => errnoReader({ __error: () => null } as unknown as DarwinLibc), /NULL/);

  assert.equal(DarwinErrno.EAGAIN, 35);
  assert.equal(DarwinErrno.ENOBUFS, 55);
  assert.equal(DarwinErrno.EADDRINUSE, 48);
  const e = darwinErrnoError("recv from utun utun3", 35);
  assert.equal(e.message, "recv from utun utun3: Resource temporarily unavailable (EAGAIN)");
  assert.equal(e.code, "EAGAIN");
  assert.ok(darwinErrnoError("x", 48) instanceof Deno.errors.AddrInUse);
  assert.ok(darwinErrnoError("x", 1, "sudo") instanceof Deno.errors.PermissionDenied);
  assert.ok(darwinErrnoError("x", 16) instanceof Deno.errors.Busy);
  assert.ok(darwinErrnoError("x", 22) instanceof TypeError);
  // Linux's EAGAIN (11) is not Darwin's.
  assert.equal(darwinErrnoError("x", 11).code, "E11");
});

Deno.test({
  name: "darwinLibc() refuses to load anywhere but macOS",
  ignore: Deno.build.os === "darwin",
  fn() {
    assert.throws(() => darwinLibc(), /only macOS is supported/);
  },
});
