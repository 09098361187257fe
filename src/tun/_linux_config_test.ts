import assert from "node:assert/strict";
import { parseConfig, validateName } from "./_linux_config.ts";

Deno.test("validateName() accepts kernel-valid names and rejects the rest", () => {
  for (const ok of ["tun0", "kc%d", "a", "x".repeat(15), "kconnect-0"]) validateName(ok);
  const bad: [string, RegExp][] = [
    ["", /1 to 15 bytes/],
    ["x".repeat(16), /1 to 15 bytes, got 16/],
    ["tün".repeat(5), /got 20/],
    [".", /must not be/],
    ["..", /must not be/],
    ["a/b", /must not be/],
    ["a:1", /must not be/],
    ["a b", /must not be/],
  ];
  for (const [name, message] of bad) assert.throws(() => validateName(name), message);
});

Deno.test("parseConfig() parses addresses and checks MTU and prefix lengths", () => {
  const parsed = parseConfig(1500, [
    { address: "198.18.0.1", prefixLength: 30 },
    { address: "fd00:6b63::1", prefixLength: 126 },
  ]);
  assert.deepStrictEqual(parsed[0].bytes, new Uint8Array([198, 18, 0, 1]));
  assert.equal(parsed[1].bytes.length, 16);
  assert.equal(parsed[1].prefixLength, 126);
  const cases: [number, string, number, ErrorConstructor, RegExp][] = [
    [67, "198.18.0.1", 30, RangeError, /MTU 67/],
    [65536, "198.18.0.1", 30, RangeError, /MTU 65536/],
    [1500.5, "198.18.0.1", 30, RangeError, /MTU/],
    [1500, "198.18.0.256", 30, TypeError, /Invalid TUN address "198.18.0.256"/],
    [1500, "tun0", 30, TypeError, /not an IPv4 or IPv6/],
    [1500, "198.18.0.1", 33, RangeError, /prefix length 33/],
    [1500, "fd00::1", 129, RangeError, /prefix length 129/],
    [1200, "fd00::1", 64, RangeError, /IPv6 needs at least 1280/],
  ];
  for (const [mtu, address, prefixLength, type, message] of cases) {
    assert.throws(() => parseConfig(mtu, [{ address, prefixLength }]), (e: unknown) => {
      assert.ok(e instanceof type, `${address} ${mtu}: ${e}`);
      assert.match((e as Error).message, message);
      return true;
    });
  }
});
