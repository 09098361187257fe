/** `status` shows what was refused from the traffic manager, and why (review H1). */
import assert from "node:assert/strict";
import { formatStatus, type StatusReport } from "./status.ts";
import type { UpConnectionStatus } from "../connect/up_connection.ts";
import { reportOf, sampleSession } from "./_test_status.ts";

const session = sampleSession({
  refused: [{
    item: "pod CIDR 0.0.0.0/1",
    from: "the traffic manager",
    reason: "outside private ranges (10.0.0.0/8, …); add it with --also-proxy 0.0.0.0/1 to allow",
  }],
});

Deno.test("formatStatus() shows each refused item, where it came from and why", () => {
  const r: StatusReport = reportOf(session);
  assert.match(
    formatStatus(r),
    /^refused: +pod CIDR 0\.0\.0\.0\/1 from the traffic manager: outside private ranges .*--also-proxy 0\.0\.0\.0\/1 to allow$/m,
  );
  // A report from an older daemon has no list.
  const old = { ...session } as Partial<UpConnectionStatus>;
  delete old.refused;
  assert.doesNotMatch(formatStatus({ ...r, session: old as UpConnectionStatus }), /refused/);
});

Deno.test("formatStatus() shows packets from other hosts that were dropped (review M7), only when there were some", () => {
  const r = reportOf({ ...session, flows: { tcp: 2, udp: 1, notLocal: 7 } });
  assert.match(formatStatus(r), /flows 2 TCP, 1 UDP; 7 packets from other hosts dropped$/m);
  const none = { ...r, session: { ...session, flows: { tcp: 2, udp: 1, notLocal: 0 } } };
  assert.doesNotMatch(formatStatus(none), /other hosts/);
});
