/**
 * What kconnect asks of the machine's resolver: which server, which domains go to it (routing
 * domains), and which search domains make short names work.
 *
 * @module
 */
import type { Cidr } from "../wire/address.ts";
import { reverseZones } from "../dns/names.ts";
import { isPublicTld, sharesTopLevel } from "../dns/tld.ts";
import { isDnsLabel, normalizeDnsName } from "../trust/trust.ts";

export { isPublicTld, sharesTopLevel };

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
   * Namespaces left out of the routing domains because they are also top-level domains, public
   * or local-use (`dev`, `com.`, `local`, …): routing `~dev` to the cluster would take every
   * `*.dev` name away from the Internet.
   */
  skippedNamespaces: string[];
  /** Namespaces left out because they are not DNS labels (they never should reach here). */
  invalidNamespaces: string[];
}

/**
 * Builds the plan for a cluster domain, the connected namespace, namespaces and CIDRs. Names
 * are compared in normal form (lower case, no trailing dot), so `com.` is the TLD `com`.
 * `routedNamespaces`, when given, limits which namespaces become routing domains (the others
 * still resolve as `<svc>.<ns>.svc`).
 *
 * @throws {TypeError} when the cluster domain is not a DNS name or the connected namespace not a
 * DNS label: nothing from them may reach a resolver file.
 */
export function dnsPlan(o: {
  server: string;
  link: string;
  clusterDomain: string;
  namespace: string;
  namespaces: readonly string[];
  routedNamespaces?: ReadonlySet<string>;
  cidrs: readonly Cidr[];
}): DnsPlan {
  const dn = normalizeDnsName(o.clusterDomain);
  if ("problem" in dn) {
    throw new TypeError(`Cluster domain ${JSON.stringify(o.clusterDomain)}: ${dn.problem}`);
  }
  const d = dn.name;
  if (!isDnsLabel(o.namespace)) {
    throw new TypeError(`Namespace ${JSON.stringify(o.namespace)} is not a DNS label`);
  }
  const routed = o.routedNamespaces;
  const invalid: string[] = [];
  const all: string[] = [];
  for (const raw of [...o.namespaces, o.namespace]) {
    const n = typeof raw === "string" ? raw.toLowerCase().replace(/\.+$/, "") : "";
    if (!isDnsLabel(n)) invalid.push(String(raw));
    else if (!all.includes(n) && (routed === undefined || routed.has(n) || n === o.namespace)) {
      all.push(n);
    }
  }
  const skipped = all.filter(sharesTopLevel);
  const routing = new Set<string>([d, "svc", ...all.filter((n) => !sharesTopLevel(n))]);
  for (const c of o.cidrs) for (const z of reverseZones(c)) routing.add(z);
  return {
    server: o.server,
    link: o.link,
    routingDomains: [...routing],
    searchDomains: [`${o.namespace}.svc.${d}`, `svc.${d}`, d],
    skippedNamespaces: skipped,
    invalidNamespaces: invalid,
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
