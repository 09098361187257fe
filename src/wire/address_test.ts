import assert from "node:assert/strict";
import { prng, randomBytes } from "./_testing.ts";
import { Cidr, formatAddress, parseAddress, sameAddress } from "./address.ts";

Deno.test("parseAddress() accepts valid IPv4 dotted quads", () => {
  const cases: [string, number[]][] = [
    ["0.0.0.0", [0, 0, 0, 0]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["10.96.0.10", [10, 96, 0, 10]],
    ["1.2.3.4", [1, 2, 3, 4]],
    ["192.0.2.100", [192, 0, 2, 100]],
  ];
  for (const [text, bytes] of cases) {
    assert.deepEqual(parseAddress(text), new Uint8Array(bytes), text);
    assert.equal(formatAddress(parseAddress(text)!), text);
  }
});

Deno.test("parseAddress() rejects invalid IPv4 text", () => {
  const cases = [
    "",
    "1",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1.2.3.256",
    "1.2.3.1000",
    "01.2.3.4",
    "1.2.3.04",
    "00.0.0.0",
    "1..2.3",
    "1.2.3.4.",
    ".1.2.3",
    "a.b.c.d",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.-4",
    "+1.2.3.4",
    "0x1.2.3.4",
    "1.2.3.4/32",
    "1.2.3.\u0663",
    "1.2.3.4\n",
    "localhost",
  ];
  for (const text of cases) assert.equal(parseAddress(text), null, JSON.stringify(text));
});

Deno.test("parseAddress() accepts RFC 4291 IPv6 forms; formatAddress() gives RFC 5952", () => {
  const cases: [string, string][] = [
    ["::", "::"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1::", "1::"],
    ["2001:db8::1", "2001:db8::1"],
    ["2001:DB8:0:0:8:800:200C:417A", "2001:db8::8:800:200c:417a"],
    ["FF01:0:0:0:0:0:0:101", "ff01::101"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // tie: first run
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // longest run
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    ["2001:db8::0:1", "2001:db8::1"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["1:0:0:4:5:0:0:0", "1:0:0:4:5::"],
    ["0:0:3:4:5:6:0:0", "::3:4:5:6:0:0"],
    ["fe80::1:2:3:4", "fe80::1:2:3:4"],
    ["fd00:6b63::1", "fd00:6b63::1"],
    ["0001:0002::", "1:2::"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["::FFFF:129.144.52.38", "::ffff:129.144.52.38"],
    ["0:0:0:0:0:ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::ffff:0:0", "::ffff:0.0.0.0"],
    ["0:0:0:0:0:0:13.1.68.3", "::d01:4403"], // deprecated IPv4-compatible: plain hex
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ];
  for (const [text, canonical] of cases) {
    const bytes = parseAddress(text);
    assert.ok(bytes !== null, `parseAddress(${text}) returned null`);
    assert.equal(bytes.length, 16);
    assert.equal(formatAddress(bytes), canonical, text);
    assert.deepEqual(parseAddress(canonical), bytes, canonical);
  }
  assert.deepEqual(
    parseAddress("2001:db8::8:800:200c:417a"),
    new Uint8Array([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a]),
  );
});

Deno.test("parseAddress() rejects invalid IPv6 text", () => {
  const cases = [
    ":",
    ":::",
    "::::",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "::1::",
    "12345::",
    "g::",
    "::g",
    "::1%eth0",
    "fe80::1%1",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4::5:6:7:8",
    ":1::",
    ":1:2:3:4:5:6:7:8",
    "1::2:",
    "1:2:3:4:5:6:7:8:",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4:8",
    "::1.2.3",
    "::1.2.3.4:5",
    "::1.2.3.4.5",
    "::256.1.1.1",
    "::01.2.3.4",
    "1.2.3.4::",
    "::ffff:1.2.3.4::",
    "[::1]",
    " ::1",
    "::1 ",
    "::-1",
    "1:2:3:4:5:6:7:8:1.2.3.4",
    "::ffff:1.2.3.4/96",
  ];
  for (const text of cases) assert.equal(parseAddress(text), null, JSON.stringify(text));
});

Deno.test("formatAddress() round-trips random addresses with zero runs", () => {
  const next = prng(5952);
  for (let i = 0; i < 3000; i++) {
    const a = randomBytes(next, 16);
    // Zero out a few random groups so "::" placement gets exercised.
    for (let g = 0; g < 8; g++) if (next() % 3 === 0) a[g * 2] = a[g * 2 + 1] = 0;
    const text = formatAddress(a);
    assert.deepEqual(parseAddress(text), a, text);
    assert.equal(text, text.toLowerCase());
    assert.ok(!/(^|:)0[0-9a-f]/.test(text), `leading zero in ${text}`);
    assert.ok((text.match(/::/g) ?? []).length <= 1);
    assert.ok(!/(^|:)0:0(:|$)/.test(text) || text.includes("::"), `uncompressed run in ${text}`);
  }
});

Deno.test("formatAddress() throws RangeError for a length that is not 4 or 16", () => {
  assert.throws(() => formatAddress(new Uint8Array(5)), RangeError);
});

Deno.test("sameAddress() compares length and bytes", () => {
  assert.ok(sameAddress(parseAddress("::1")!, parseAddress("0::1")!));
  assert.ok(!sameAddress(parseAddress("::1")!, parseAddress("::2")!));
  assert.ok(!sameAddress(parseAddress("0.0.0.1")!, parseAddress("::1")!));
  assert.ok(!sameAddress(new Uint8Array(4), new Uint8Array(16)));
});

Deno.test("Cidr.parse() accepts prefixes, zeroes host bits and formats canonically", () => {
  const cases: [string, string, 4 | 6][] = [
    ["10.96.0.0/12", "10.96.0.0/12", 4],
    ["10.96.1.2/12", "10.96.0.0/12", 4],
    ["192.168.255.255/17", "192.168.128.0/17", 4],
    ["10.0.0.1", "10.0.0.1/32", 4],
    ["10.0.0.1/32", "10.0.0.1/32", 4],
    ["1.2.3.4/0", "0.0.0.0/0", 4],
    ["10.244.0.0/16", "10.244.0.0/16", 4],
    ["fd00::/8", "fd00::/8", 6],
    ["fd12:3456::1/8", "fd00::/8", 6],
    ["::1", "::1/128", 6],
    ["2001:db8::/32", "2001:db8::/32", 6],
    ["2001:db8:ffff::/33", "2001:db8:8000::/33", 6],
    ["::/0", "::/0", 6],
    ["FD00:10:96::/112", "fd00:10:96::/112", 6],
  ];
  for (const [text, canonical, family] of cases) {
    const c = Cidr.parse(text);
    assert.ok(c !== null, `Cidr.parse(${text}) returned null`);
    assert.equal(c.toString(), canonical, text);
    assert.equal(c.family, family);
    assert.equal(c.prefixLength, Number(canonical.split("/")[1]));
    assert.equal(String(c), canonical);
  }
});

Deno.test("Cidr.parse() rejects invalid prefixes", () => {
  const cases = [
    "",
    "/8",
    "10.0.0.0/",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/08",
    "10.0.0.0/8/8",
    "10.0.0.0/ 8",
    "10.0.0.0/8 ",
    "10.0.0.0/1e1",
    "10.0.0/8",
    "fd00::/129",
    "fd00::/1000",
    "bogus/8",
    "fe80::1%eth0/64",
  ];
  for (const text of cases) assert.equal(Cidr.parse(text), null, JSON.stringify(text));
});

Deno.test("Cidr.contains() tests membership and is false across families", () => {
  const cases: [string, string, boolean][] = [
    ["10.96.0.0/12", "10.96.0.1", true],
    ["10.96.0.0/12", "10.96.0.0", true],
    ["10.96.0.0/12", "10.111.255.255", true],
    ["10.96.0.0/12", "10.112.0.0", false],
    ["10.96.0.0/12", "10.95.255.255", false],
    ["0.0.0.0/0", "1.2.3.4", true],
    ["0.0.0.0/0", "::1", false],
    ["10.0.0.1/32", "10.0.0.1", true],
    ["10.0.0.1/32", "10.0.0.2", false],
    ["10.0.0.0/31", "10.0.0.1", true],
    ["10.0.0.0/31", "10.0.0.2", false],
    ["::/0", "::ffff:1.2.3.4", true],
    ["::/0", "1.2.3.4", false],
    ["fd00::/8", "fd12::1", true],
    ["fd00::/8", "fe00::1", false],
    ["fd00::/8", "10.0.0.1", false],
    ["2001:db8::/33", "2001:db8:7fff::1", true],
    ["2001:db8::/33", "2001:db8:8000::", false],
    ["::1/128", "::1", true],
    ["::1/128", "::", false],
  ];
  for (const [cidr, addr, expected] of cases) {
    assert.equal(Cidr.parse(cidr)!.contains(parseAddress(addr)!), expected, `${cidr} ∋ ${addr}`);
  }
  assert.equal(Cidr.parse("10.0.0.0/8")!.contains(new Uint8Array(5)), false);
});

Deno.test("Cidr.overlaps() is symmetric and false across families", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/8", "10.96.0.0/12", true],
    ["10.96.0.0/12", "10.112.0.0/12", false],
    ["10.96.0.0/12", "10.96.0.0/12", true],
    ["0.0.0.0/0", "192.168.0.0/16", true],
    ["10.0.0.0/31", "10.0.0.1/32", true],
    ["10.0.0.0/32", "10.0.0.1/32", false],
    ["10.0.0.0/8", "fd00::/8", false],
    ["::/0", "0.0.0.0/0", false],
    ["fd00::/8", "fd00:1::/32", true],
    ["fd00::/8", "fc00::/8", false],
    ["fc00::/7", "fd00::/8", true],
  ];
  for (const [a, b, expected] of cases) {
    const ca = Cidr.parse(a)!;
    const cb = Cidr.parse(b)!;
    assert.equal(ca.overlaps(cb), expected, `${a} ∩ ${b}`);
    assert.equal(cb.overlaps(ca), expected, `${b} ∩ ${a}`);
  }
});

Deno.test("Cidr.from() copies the address and validates the prefix length", () => {
  const addr = parseAddress("10.1.2.3")!;
  const c = Cidr.from(addr, 16)!;
  assert.equal(c.toString(), "10.1.0.0/16");
  assert.deepEqual(addr, parseAddress("10.1.2.3"));
  assert.equal(Cidr.from(addr, 33), null);
  assert.equal(Cidr.from(addr, 1.5), null);
  assert.equal(Cidr.from(new Uint8Array(5), 8), null);
});
