/**
 * What kconnect asks of the machine's resolver: which server, which domains go to it (routing
 * domains), and which search domains make short names work.
 *
 * @module
 */
import type { Cidr } from "../wire/address.ts";
import { reverseZones } from "../dns/names.ts";
import { isPublicTld } from "../dns/tld.ts";

export { isPublicTld };

/** The resolver configuration kconnect wants while connected. */
export interface DnsPlan {
  /** kconnect's DNS server address (inside the TUN's prefix). */
  server: string;
  /** The TUN link the server is reached through. */
  link: string;
  /** Domains whose names go to kconnect (`cluster.local`, `svc`, namespaces, reverse zones). */
  routingDomains: string[];
  /** Search domains, most specific first (`default.svc.cluster.local`, …). */
  searchDomains: string[];
  /**
   * Namespaces left out of the routing domains because they are also public top-level domains:
   * routing `~dev` to the cluster would take every `*.dev` name away from the Internet.
   */
  skippedNamespaces: string[];
}

/** Builds the plan for a cluster domain, the connected namespace, namespaces and CIDRs. */
export function dnsPlan(o: {
  server: string;
  link: string;
  clusterDomain: string;
  namespace: string;
  namespaces: readonly string[];
  cidrs: readonly Cidr[];
}): DnsPlan {
  const d = o.clusterDomain.replace(/\.$/, "");
  const all = [...new Set([...o.namespaces, o.namespace])];
  const skipped = all.filter(isPublicTld);
  const routing = new Set<string>([d, "svc", ...all.filter((n) => !isPublicTld(n))]);
  for (const c of o.cidrs) for (const z of reverseZones(c)) routing.add(z);
  return {
    server: o.server,
    link: o.link,
    routingDomains: [...routing],
    searchDomains: [`${o.namespace}.svc.${d}`, `svc.${d}`, d],
    skippedNamespaces: skipped,
  };
}

/** A way of configuring the machine's resolver. */
export interface ResolverConfigurator {
  /** Human name of the mode, for progress and status. */
  readonly mode: string;
  /** Applies the plan (journaled before any change). */
  apply(plan: DnsPlan): Promise<void>;
  /** Applies a changed plan (namespaces came or went). */
  update(plan: DnsPlan): Promise<void>;
  /** Puts everything back as it was. */
  restore(): Promise<void>;
  /**
   * The servers to forward names that are not the cluster's to, or null when split DNS means
   * they never reach kconnect.
   */
  upstreamServers(): string[] | null;
}
