// Security review L2: cloud metadata and host services outside 169.254.0.0/16.
import assert from "node:assert/strict";
import { DEFAULT_DENIED, deniedReason } from "./policy.ts";

Deno.test("deniedReason() refuses AWS IMDS over IPv6, Alibaba's metadata and Azure's WireServer", () => {
  for (
    const h of [
      "fd00:ec2::254", // AWS IMDS (Nitro, IPv6)
      "fd00:ec2:0:0:0:0:0:254",
      "100.100.100.200", // Alibaba Cloud metadata
      "168.63.129.16", // Azure WireServer
      "::ffff:100.100.100.200",
      "::ffff:168.63.129.16",
      "::ffff:6464:64c8", // 100.100.100.200 in hex
      "169.254.170.2", // ECS task metadata: already in 169.254.0.0/16
    ]
  ) {
    assert.notEqual(deniedReason(h), null, h);
  }
  // Their neighbours are ordinary addresses.
  for (const h of ["fd00:ec2::253", "100.100.100.201", "168.63.129.17", "fd00:10:96::a"]) {
    assert.equal(deniedReason(h), null, h);
  }
  assert.match(deniedReason("168.63.129.16")!, /168\.63\.129\.16\/32/);
  for (const c of ["100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128"]) {
    assert.ok(DEFAULT_DENIED.includes(c), c);
  }
});
