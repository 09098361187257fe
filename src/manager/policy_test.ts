import assert from "node:assert/strict";
import { deniedReason } from "./policy.ts";

Deno.test("deniedReason() refuses loopback, link-local, metadata and non-addresses", () => {
  for (
    const h of [
      "127.0.0.1",
      "169.254.169.254",
      "::1",
      "fe80::1",
      "0.0.0.0",
      "web.default",
      "224.0.0.1",
      "::ffff:169.254.169.254",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::127.0.0.1",
      "64:ff9b::a9fe:a9fe",
    ]
  ) {
    assert.notEqual(deniedReason(h), null, h);
  }
  for (
    const h of ["10.96.0.10", "10.244.3.7", "fd00:10:96::a", "192.168.1.1", "::ffff:10.96.0.10"]
  ) {
    assert.equal(deniedReason(h), null, h);
  }
});
