/**
 * A connected session's status and the report around it, for the tests of `status`'s text.
 *
 * @module
 */
import type { StatusReport } from "./status.ts";
import type { UpConnectionStatus } from "../connect/up_connection.ts";

/** A plausible connected session's status, with `over` laid on top. */
export function sampleSession(over: Partial<UpConnectionStatus> = {}): UpConnectionStatus {
  return {
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
    refused: [],
    ...over,
  };
}

/** The daemon's report of `session`. */
export function reportOf(session: UpConnectionStatus): StatusReport {
  return {
    schema: 1,
    state: session.state,
    daemon: null,
    ownerUid: 0,
    session,
    lastError: null,
    message: null,
  };
}
