import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import { coverAddresses, mergeCidrs } from "./cover.ts";

const s = (cs: Cidr[]) => cs.map(String);
const c = (t: string) => Cidr.parse(t)!;

Deno.test("coverAddresses() finds the smallest prefix per family", () => {
  assert.deepEqual(s(coverAddresses(["10.96.0.1", "10.96.0.10", "10.96.3.4"])), ["10.96.0.0/22"]);
  assert.deepEqual(s(coverAddresses(["10.244.1.5"])), ["10.244.1.5/32"]);
  assert.deepEqual(
    s(coverAddresses(["fd00:10:96::1", "fd00:10:96::ff", "10.0.0.1", "None", ""])),
    ["10.0.0.1/32", "fd00:10:96::/120"],
  );
});

Deno.test("coverAddresses() groups by /16 instead of covering half the Internet", () => {
  assert.deepEqual(
    s(coverAddresses(["10.1.0.1", "10.1.0.2", "172.20.0.1", "172.20.0.9"])),
    ["10.1.0.0/30", "172.20.0.0/28"],
  );
});

Deno.test("mergeCidrs() joins siblings and drops prefixes inside others", () => {
  assert.deepEqual(
    s(mergeCidrs([
      c("10.244.1.0/24"),
      c("10.244.0.0/24"),
      c("10.244.2.0/24"),
      c("10.244.2.128/25"),
    ])),
    ["10.244.0.0/23", "10.244.2.0/24"],
  );
  assert.deepEqual(
    s(mergeCidrs([c("10.244.0.0/24"), c("10.244.1.0/24"), c("10.244.2.0/24"), c("10.244.3.0/24")])),
    ["10.244.0.0/22"],
  );
  assert.deepEqual(s(mergeCidrs([c("fd00::/64"), c("10.0.0.0/8")])), ["10.0.0.0/8", "fd00::/64"]);
});
