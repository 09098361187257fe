import assert from "node:assert/strict";
import { mapAddress, parseMapRule } from "./address_map.ts";

Deno.test("mapAddress() keeps the offset inside the prefix and maps prefixes to one address", () => {
  const rules = ["10.96.0.0/12=127.0.0.0/8", "fd00:96::/64=::1", "10.0.0.7=192.0.2.1"].map(
    parseMapRule,
  );
  const table: [string, string][] = [
    ["10.96.0.1", "127.0.0.1"],
    ["10.111.255.254", "127.15.255.254"],
    ["fd00:96::1234", "::1"],
    ["10.0.0.7", "192.0.2.1"],
    ["10.0.0.8", "10.0.0.8"],
    ["fd00:97::1", "fd00:97::1"],
  ];
  for (const [from, to] of table) assert.equal(mapAddress(rules, from), to, from);
});

Deno.test("parseMapRule() rejects rules that are malformed, mix families or lose host bits", () => {
  for (const bad of ["10.96.0.0/12", "x=y", "10.0.0.0/8=::1", "10.0.0.0/8=127.0.0.0/16", "a=b=c"]) {
    assert.throws(() => parseMapRule(bad), TypeError, bad);
  }
});
