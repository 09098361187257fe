/**
 * What the traffic manager tells each client on the control stream, and pushes again when it
 * changes.
 *
 * @module
 */

/** A routed prefix and how the manager learned it. */
export interface CidrInfo {
  cidr: string;
  /** E.g. `ServiceCIDR kubernetes`, `invalid ClusterIP error`, `cover of 14 service IPs`. */
  source: string;
}

/** Something the client refused from the cluster info, and why (see `src/trust/trust.ts`). */
export interface Refusal {
  /** What was refused, e.g. `pod CIDR 0.0.0.0/1`, `namespace "../x"`. */
  item: string;
  /** Where it came from, e.g. `the traffic manager`. */
  from: string;
  /** Why, and how to allow it where that is possible. */
  reason: string;
}

/** The manager's view of the cluster network. */
export interface ClusterInfo {
  type: "info";
  managerVersion: string;
  /** The cluster DNS domain, e.g. `cluster.local`. */
  clusterDomain: string;
  /** The DNS server the manager forwards to (from its resolv.conf). */
  dnsServer: string | null;
  serviceCidrs: CidrInfo[];
  podCidrs: CidrInfo[];
  /** Namespaces that exist (empty when the manager may not list them). */
  namespaces: string[];
  /** Things that went wrong during discovery, for `status` and the progress output. */
  warnings: string[];
  /**
   * Client side only: what the client's checks left out of this info and why (`parseInfo` in
   * `src/connect/control.ts` sets it; the manager never sends it, and a value it sends is
   * replaced).
   */
  refused?: Refusal[];
}

/** Whether two infos differ in anything a client acts on. */
export function infoChanged(a: ClusterInfo, b: ClusterInfo): boolean {
  return JSON.stringify(a) !== JSON.stringify(b);
}
