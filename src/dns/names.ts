/**
 * Which names kconnect's DNS server answers from the cluster, and under what name it asks.
 * No I/O.
 *
 * Kubernetes names (the DNS specification of the cluster add-on): `<svc>.<ns>.svc.<domain>`,
 * `<hostname>.<subdomain>.<ns>.svc.<domain>`, `_<port>._<proto>.<svc>.<ns>.svc.<domain>`,
 * `<a-b-c-d>.<ns>.pod.<domain>`. On the laptop also `<svc>.<ns>.svc`, `<svc>.<ns>` for namespaces
 * that exist, and `<svc>` in the connected namespace.
 *
 * @module
 */
import { type Cidr, parseAddress } from "../wire/address.ts";
import { sharesTopLevel } from "./tld.ts";

/** What the server knows about the cluster's names. */
export interface DnsScope {
  /** E.g. `cluster.local`. */
  clusterDomain: string;
  /** Namespaces that exist; empty means unknown (then no namespace is ruled out). */
  namespaces: ReadonlySet<string>;
  /**
   * Namespaces whose `<svc>.<ns>` names kconnect answers (those that are routing domains); when
   * absent, all of `namespaces`. A namespace that appeared after `up` is not among them: names
   * under `.svc` are the cluster's already, `<svc>.<ns>` would widen what goes to it.
   */
  routedNamespaces?: ReadonlySet<string>;
  /** The connected namespace, for single-label names. */
  namespace: string;
  /** The cluster's CIDRs, for reverse lookups. */
  cidrs: readonly Cidr[];
}

/** Where a query goes. */
export type DnsRoute =
  /** Ask the cluster for `fqdn`; answer under the name that was asked. */
  | { kind: "cluster"; fqdn: string }
  /** A short name that may be the cluster's or not: the cluster first, the upstream on NXDOMAIN. */
  | { kind: "cluster-first"; fqdn: string }
  /** Under the cluster domain but impossible (a search-list expansion of an outside name). */
  | { kind: "nxdomain" }
  /** Not the cluster's business. */
  | { kind: "upstream" };

function labelsOf(name: string): string[] {
  const n = name.toLowerCase().replace(/\.$/, "");
  return n === "" ? [] : n.split(".");
}

/** Whether `rest` (the labels before `.svc`, namespace last) can be a service name. */
function serviceShaped(before: string[]): boolean {
  if (before.length === 1 || before.length === 2) return true; // svc, or hostname.subdomain
  return before.length === 3 && before[0].startsWith("_") && before[1].startsWith("_"); // SRV
}

function knownNamespace(scope: DnsScope, ns: string): boolean {
  return scope.namespaces.size === 0 || scope.namespaces.has(ns);
}

/** Routes a name below the cluster domain (given as the labels before it). */
function underDomain(rest: string[], fqdn: string, scope: DnsScope): DnsRoute {
  const kind = rest.at(-1);
  // Below the cluster domain only `svc` and `pod` have subdomains: `a.example.com.cluster.local`
  // is a search-list expansion of an outside name, not a cluster name.
  if (rest.length >= 2 && kind !== "svc" && kind !== "pod") return { kind: "nxdomain" };
  if ((kind === "svc" || kind === "pod") && rest.length >= 3) {
    const ns = rest[rest.length - 2];
    if (!knownNamespace(scope, ns)) return { kind: "nxdomain" };
    if (kind === "svc" && !serviceShaped(rest.slice(0, -2))) return { kind: "nxdomain" };
    if (kind === "pod" && rest.length !== 3) return { kind: "nxdomain" };
  }
  return { kind: "cluster", fqdn };
}

/** Parses an `in-addr.arpa` / `ip6.arpa` name into the address it is about. */
export function reverseAddress(labels: string[]): Uint8Array | null {
  const n = labels.length;
  if (n === 6 && labels[4] === "in-addr" && labels[5] === "arpa") {
    return parseAddress(labels.slice(0, 4).reverse().join("."));
  }
  if (n === 34 && labels[32] === "ip6" && labels[33] === "arpa") {
    const hex = labels.slice(0, 32).reverse();
    if (!hex.every((h) => /^[0-9a-f]$/.test(h))) return null;
    const groups = [];
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4).join(""));
    return parseAddress(groups.join(":"));
  }
  return null;
}

/** Decides where a query for `name` goes. */
export function routeName(name: string, scope: DnsScope): DnsRoute {
  const labels = labelsOf(name);
  const domain = labelsOf(scope.clusterDomain);
  if (labels.length === 0) return { kind: "upstream" };
  const d = domain.length;
  const fqdnOf = (ls: string[]) => ls.join(".") + ".";
  // <…>.<domain> (or the domain itself)
  if (labels.length >= d && labels.slice(labels.length - d).join(".") === domain.join(".")) {
    return underDomain(labels.slice(0, labels.length - d), fqdnOf(labels), scope);
  }
  // <…>.<ns>.svc
  if (labels.at(-1) === "svc" && labels.length >= 3) {
    return underDomain(labels, fqdnOf([...labels, ...domain]), scope);
  }
  // <svc>.<ns> for a namespace that exists, unless the namespace is also a top-level domain,
  // public or local-use: `go.dev` stays the Internet's (the namespace's services are
  // `<svc>.dev.svc`), `printer.local` mDNS's.
  if (
    labels.length === 2 && scope.namespaces.has(labels[1]) &&
    (scope.routedNamespaces?.has(labels[1]) ?? true) && !sharesTopLevel(labels[1])
  ) {
    return { kind: "cluster-first", fqdn: fqdnOf([labels[0], labels[1], "svc", ...domain]) };
  }
  // <svc> in the connected namespace
  if (labels.length === 1) {
    return { kind: "cluster-first", fqdn: fqdnOf([labels[0], scope.namespace, "svc", ...domain]) };
  }
  const addr = reverseAddress(labels);
  if (addr !== null && scope.cidrs.some((c) => c.contains(addr))) {
    return { kind: "cluster", fqdn: fqdnOf(labels) };
  }
  return { kind: "upstream" };
}

/**
 * The reverse zones (`96.10.in-addr.arpa`, …) covering `cidr`, octet- or nibble-aligned; at
 * most 256 (a shorter prefix is covered more coarsely).
 */
export function reverseZones(cidr: Cidr): string[] {
  const v4 = cidr.family === 4;
  const unit = v4 ? 8 : 4;
  const bits = Math.max(unit, Math.ceil(cidr.prefixLength / unit) * unit);
  const extra = bits - cidr.prefixLength;
  const zones: string[] = [];
  const count = extra > 8 ? 1 : 1 << extra;
  const zoneBits = extra > 8 ? Math.floor(cidr.prefixLength / unit) * unit : bits;
  for (let i = 0; i < count; i++) {
    const a = cidr.address.slice();
    if (extra <= 8) {
      // Set the extra bits to i.
      for (let b = 0; b < extra; b++) {
        const bit = cidr.prefixLength + b;
        const on = (i >> (extra - 1 - b)) & 1;
        if (on) a[bit >> 3] |= 0x80 >> (bit & 7);
      }
    }
    const parts: string[] = [];
    if (v4) { for (let o = 0; o < zoneBits / 8; o++) parts.push(String(a[o])); }
    else {
      for (let nib = 0; nib < zoneBits / 4; nib++) {
        parts.push(((a[nib >> 1] >> (nib & 1 ? 0 : 4)) & 0xf).toString(16));
      }
    }
    zones.push(`${parts.reverse().join(".")}.${v4 ? "in-addr" : "ip6"}.arpa`);
  }
  return zones;
}
