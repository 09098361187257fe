import assert from "node:assert/strict";
import { rangesFromInvalidClusterIP } from "./discovery.ts";

Deno.test("rangesFromInvalidClusterIP() reads the range from each version's wording", () => {
  const cases: [string, string[]][] = [
    [
      'Service "kconnect-cidr-probe" is invalid: spec.clusterIPs: Invalid value: []string{"1.1.1.1"}: failed to allocate IP 1.1.1.1: the provided IP (1.1.1.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12',
      ["10.96.0.0/12"],
    ],
    [
      'Service "x" is invalid: spec.clusterIP: Invalid value: "1.1.1.1": provided IP is not in the valid range. The range of valid IPs is 172.20.0.0/16.',
      ["172.20.0.0/16"],
    ],
    [
      'Service "x" is invalid: spec.clusterIPs: Invalid value: []string{"fd00:6b63:ffff::1"}: failed to allocate IP fd00:6b63:ffff::1: the provided IP (fd00:6b63:ffff::1) is not in the valid range. The range of valid IPs is fd00:10:96::/112',
      ["fd00:10:96::/112"],
    ],
    [
      'Service "x" is invalid: spec.clusterIPs[0]: Invalid value: []string{"1.1.1.1"}: may not be set',
      [],
    ],
  ];
  for (const [msg, want] of cases) assert.deepEqual(rangesFromInvalidClusterIP(msg), want, msg);
});
