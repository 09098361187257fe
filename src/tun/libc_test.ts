import assert from "node:assert/strict";
import { Errno, errnoError, Ifreq, in6Ifreq } from "./libc.ts";

Deno.test("Ifreq lays out name, flags, MTU and sockaddr_in like struct ifreq", () => {
  const req = new Ifreq("kc0");
  assert.equal(req.bytes.length, 40);
  assert.deepStrictEqual([...req.bytes.subarray(0, 4)], [0x6b, 0x63, 0x30, 0]);
  req.flags = 0x1001;
  assert.deepStrictEqual([...req.bytes.subarray(16, 18)], [0x01, 0x10]);
  req.mtu = 65535;
  assert.equal(req.mtu, 65535);
  req.setInet4(new Uint8Array([198, 18, 0, 1]));
  assert.deepStrictEqual([...req.bytes.subarray(16, 24)], [2, 0, 0, 0, 198, 18, 0, 1]);
  req.name = "longer-name-15b";
  assert.equal(req.name, "longer-name-15b");
  assert.throws(() => (req.name = "sixteen-bytes-xx"), RangeError);
});

Deno.test("in6Ifreq() lays out in6_addr, prefixlen and ifindex", () => {
  const addr = new Uint8Array(16).map((_, i) => i + 1);
  const bytes = in6Ifreq(addr, 126, 0x01020304);
  assert.deepStrictEqual(bytes.subarray(0, 16), addr);
  assert.deepStrictEqual([...bytes.subarray(16)], [126, 0, 0, 0, 4, 3, 2, 1]);
  assert.throws(() => in6Ifreq(new Uint8Array(4), 1, 1), RangeError);
});

Deno.test({
  name: "errnoError() names the action, the errno and the hint, with a Deno.errors class",
  ignore: Deno.build.os !== "linux",
  fn() {
    const e = errnoError("TUNSETIFF on /dev/net/tun", Errno.EPERM, "run as root");
    assert.ok(e instanceof Deno.errors.PermissionDenied);
    assert.equal(
      e.message,
      "TUNSETIFF on /dev/net/tun: Operation not permitted (EPERM) — run as root",
    );
    assert.equal(e.code, "EPERM");
    assert.equal(e.errno, 1);
    assert.ok(errnoError("x", Errno.EBUSY) instanceof Deno.errors.Busy);
    assert.ok(errnoError("x", Errno.ENOENT) instanceof Deno.errors.NotFound);
    assert.equal(errnoError("x", 4242).code, "E4242");
  },
});
