/** `status` shows what was refused from the traffic manager, and why (review H1). */
import assert from "node:assert/strict";
import { formatStatus, type StatusReport } from "./status.ts";
import type { UpConnectionStatus } from "../connect/up_connection.ts";

const session: UpConnectionStatus = {
  state: "connected",
  context: "prod",
  server: "https://192.0.2.10:6443",
  serverVersion: "v1.33.1",
  user: "me",
  clientVersion: "0.1.0",
  manager: { namespace: "kconnect", pod: "tm-1", version: "0.1.0" },
  clusterDomain: "cluster.local",
  namespace: "default",
  serviceCidrs: [{ cidr: "10.96.0.0/12", source: "ServiceCIDR kubernetes" }],
  podCidrs: [],
  routes: ["10.96.0.0/12"],
  tun: { name: "kconnect0", mtu: 1500 },
  dns: { mode: null, server: "", routingDomains: [], searchDomains: [] },
  transports: [],
  flows: { tcp: 0, udp: 0 },
  bytes: { in: 0, out: 0 },
  startedAt: "2026-12-01T00:00:00.000Z",
  uptimeSeconds: 5,
  lastError: null,
  warnings: [],
  refused: [{
    item: "pod CIDR 0.0.0.0/1",
    from: "the traffic manager",
    reason: "outside private ranges (10.0.0.0/8, …); add it with --also-proxy 0.0.0.0/1 to allow",
  }],
};

Deno.test("formatStatus() shows each refused item, where it came from and why", () => {
  const r: StatusReport = {
    schema: 1,
    state: "connected",
    daemon: null,
    ownerUid: 0,
    session,
    lastError: null,
    message: null,
  };
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
  const r: StatusReport = {
    schema: 1,
    state: "connected",
    daemon: null,
    ownerUid: 0,
    session: { ...session, flows: { tcp: 2, udp: 1, notLocal: 7 } },
    lastError: null,
    message: null,
  };
  assert.match(formatStatus(r), /flows 2 TCP, 1 UDP; 7 packets from other hosts dropped$/m);
  const none = { ...r, session: { ...session, flows: { tcp: 2, udp: 1, notLocal: 0 } } };
  assert.doesNotMatch(formatStatus(none), /other hosts/);
});
