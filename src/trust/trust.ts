/**
 * What kconnect accepts from sources it does not control: the one set of validators for names,
 * labels and prefixes that arrive from the traffic manager (which anyone who can change pods in
 * its namespace controls), from daemon requests (another user's process) and from the config
 * file and kubeconfig. Each boundary checks its input here once, against an allow-list; what is
 * refused is recorded with the reason ({@linkcode Refusal}) so that `status` and `up` can say so.
 *
 * - **Labels** (namespaces): RFC 1123, as Kubernetes requires: 1–63 of `a-z`, `0-9`, `-`, not
 *   starting or ending with `-`. No upper case, no dots, nothing else.
 * - **Names** (the cluster domain): labels joined by dots, at most 253 characters, no empty
 *   label; upper case is folded and one trailing dot (the root) is dropped, nothing more.
 * - **The cluster domain** must not end in a public top-level domain (`com`, `dev`, …) nor be
 *   one of the local-use ones (`local`, `internal`, …), unless the user named it in the config
 *   file (`clusterDomain`): otherwise a manager could take `example.com` or `.com` from every
 *   program on the machine.
 * - **Cluster prefixes** must lie inside what a cluster can honestly own: RFC 1918, CGNAT
 *   100.64.0.0/10 and ULA fc00::/7, no wider than /8 (IPv4, which those ranges imply) or /48
 *   (IPv6), or inside a prefix the user routes anyway (`--also-proxy`). The machine's resolvers,
 *   its default gateways and the API server are cut out of every route by the route plan.
 * - **Later updates** only narrow: a prefix outside those accepted at `up`, another domain or a
 *   new namespace's routing domain waits for a new `up` ({@linkcode InfoGate}).
 *
 * Why /48 for IPv6: RFC 4193 gives one site a /48 of ULA space, and Kubernetes' node IPAM
 * allows at most 16 bits between the cluster prefix and the node prefix, which is /64 by
 * default, so an honest IPv6 cluster prefix in ULA space is /48 or narrower. A manager that
 * announces more is claiming other sites' ULA space (VPNs, home routers' /48s).
 *
 * @module
 */
import { Cidr, parseAddress } from "../wire/address.ts";
import { isPublicTld, LOCAL_USE_TOP_LEVEL, sharesTopLevel } from "../dns/tld.ts";
import type { CidrInfo, ClusterInfo, Refusal } from "../protocol/cluster_info.ts";

export type { Refusal };

/** One line for a refusal: `refused pod CIDR 0.0.0.0/1 from the traffic manager: …`. */
export function describeRefusal(r: Refusal): string {
  return `refused ${r.item} from ${r.from}: ${r.reason}`;
}

/** Where cluster info comes from, in refusals. */
export const FROM_MANAGER = "the traffic manager";

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Quotes untrusted text for messages: JSON-style, so control characters, newlines and escape
 * sequences show as escapes and never reach a terminal or log raw; long text is cut.
 */
export function quote(v: unknown, max = 80): string {
  if (typeof v !== "string") return v === undefined ? "nothing" : String(JSON.stringify(v));
  const s = v.length > max ? `${v.slice(0, max)}…` : v;
  return JSON.stringify(s);
}

/** Whether `v` is an RFC 1123 label (a Kubernetes namespace name). */
export function isDnsLabel(v: unknown): v is string {
  return typeof v === "string" && LABEL.test(v);
}

/** Why `v` is not an RFC 1123 label, or null when it is. */
export function dnsLabelProblem(v: unknown): string | null {
  if (typeof v !== "string") return `expected a name, got ${quote(v)}`;
  if (LABEL.test(v)) return null;
  if (v === "") return "empty";
  if (v.length > 63) return "longer than 63 characters";
  return 'not a DNS label (lower-case letters, digits and "-", at most 63, not starting or ending with "-")';
}

/**
 * The normal form of a DNS name (`Cluster.Local.` → `cluster.local`), or a string saying why it
 * is not one: no empty label, each label RFC 1123, at most 253 characters.
 */
export function normalizeDnsName(v: unknown): { name: string } | { problem: string } {
  if (typeof v !== "string") return { problem: `expected a name, got ${quote(v)}` };
  const n = v.toLowerCase().replace(/\.$/, "");
  if (n === "") return { problem: "empty (the root)" };
  if (n.length > 253) return { problem: "longer than 253 characters" };
  const labels = n.split(".");
  if (labels.some((l) => l === "")) return { problem: "has an empty label" };
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) return { problem: `${quote(bad)} is not a DNS label` };
  return { name: n };
}

/** Whether `v` is a DNS name in normal form (what {@linkcode normalizeDnsName} returns). */
export function isDnsName(v: unknown): v is string {
  const r = normalizeDnsName(v);
  return "name" in r && r.name === v;
}

/**
 * Why the cluster domain `name` (normal form) is not acceptable, or null. `configured` are the
 * domains the user named (config file `clusterDomain`), which are accepted as they are.
 */
export function clusterDomainProblem(name: string, configured: readonly string[]): string | null {
  const r = normalizeDnsName(name);
  if ("problem" in r) return r.problem;
  if (
    configured.some((c) => {
      const n = normalizeDnsName(c);
      return "name" in n && n.name === r.name;
    })
  ) return null;
  const labels = r.name.split(".");
  const top = labels[labels.length - 1];
  if (isPublicTld(top)) {
    return `.${top} is a public top-level domain, so this would send Internet names to the cluster; ` +
      `if the cluster really uses it, set "clusterDomain": "${r.name}" in kconnect's config file`;
  }
  if (top === "localhost" || (labels.length === 1 && LOCAL_USE_TOP_LEVEL.has(top))) {
    return `.${top} is used on this machine's own networks; if the cluster really uses it, set ` +
      `"clusterDomain": "${r.name}" in kconnect's config file`;
  }
  return null;
}

/** A prefix a cluster can honestly own. */
const PRIVATE_RANGES: readonly { cidr: Cidr; label: string }[] = [
  ["10.0.0.0/8", "RFC 1918"],
  ["172.16.0.0/12", "RFC 1918"],
  ["192.168.0.0/16", "RFC 1918"],
  ["100.64.0.0/10", "CGNAT"],
  ["fc00::/7", "ULA"],
].map(([c, label]) => ({ cidr: Cidr.parse(c)!, label }));

/** The widest prefix accepted from the traffic manager, per family (see the module doc). */
export const MIN_CLUSTER_PREFIX: Readonly<Record<4 | 6, number>> = { 4: 8, 6: 48 };

/** Whether `inner` lies wholly inside `outer`. */
export function within(inner: Cidr, outer: Cidr): boolean {
  return outer.family === inner.family && outer.prefixLength <= inner.prefixLength &&
    outer.contains(inner.address);
}

/**
 * Why a prefix the traffic manager announced may not be routed, or null. Inside one of
 * `alsoProxy` (what the user routes anyway) everything is accepted; otherwise it must lie in a
 * private range and be no wider than {@linkcode MIN_CLUSTER_PREFIX}.
 */
export function clusterCidrProblem(cidr: Cidr, alsoProxy: readonly Cidr[]): string | null {
  if (alsoProxy.some((a) => within(cidr, a))) return null;
  const allow = `; add it with --also-proxy ${cidr} to allow`;
  if (!PRIVATE_RANGES.some((r) => within(cidr, r.cidr))) {
    return `outside private ranges (${
      PRIVATE_RANGES.filter((r) => r.cidr.family === cidr.family).map((r) => r.cidr).join(", ")
    })${allow}`;
  }
  const min = MIN_CLUSTER_PREFIX[cidr.family];
  if (cidr.prefixLength < min) return `wider than /${min}${allow}`;
  return null;
}

/** What the user allows beyond the built-in policy. */
export interface TrustPolicy {
  /** Cluster domains the user named (config file `clusterDomain`). */
  clusterDomains: readonly string[];
  /** Prefixes the user routes anyway (`--also-proxy`): manager prefixes inside are accepted. */
  alsoProxy: readonly Cidr[];
}

/**
 * A name kconnect may give its TUN: a lower-case letter, then up to 14 lower-case letters,
 * digits or `_` (Linux allows 15 bytes). Never starts with `-`, so `ip` and `resolvectl` can
 * never read it as an option.
 */
export const TUN_NAME = /^[a-z][a-z0-9_]{0,14}$/;

/** The domain used when the manager's is refused: kconnect's usual one, so nothing widens. */
export const FALLBACK_DOMAIN = "cluster.local";

const MAX_TEXT = 200;
const MAX_LIST = 1024;

/** Text from the manager made safe to show: no control characters, bounded. */
export function cleanText(v: unknown, max = MAX_TEXT): string {
  // deno-lint-ignore no-control-regex
  const s = (typeof v === "string" ? v : "").replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Checks a cluster info as it arrived (already shaped like one) and returns what may be used,
 * with a {@linkcode Refusal} for each entry left out. Without `policy` only the syntax is
 * checked (names, labels, prefixes); with it, also the cluster-domain and prefix policy.
 */
export function checkInfo(
  raw: ClusterInfo,
  policy?: TrustPolicy,
): { info: ClusterInfo; refused: Refusal[] } {
  const refused: Refusal[] = [];
  const refuse = (item: string, reason: string) =>
    refused.push({ item, from: FROM_MANAGER, reason });

  let clusterDomain = FALLBACK_DOMAIN;
  const d = normalizeDnsName(raw.clusterDomain);
  const domainProblem = "problem" in d
    ? d.problem
    : policy
    ? clusterDomainProblem(d.name, policy.clusterDomains)
    : null;
  if (domainProblem !== null) {
    refuse(
      `cluster domain ${quote(raw.clusterDomain)}`,
      `${domainProblem}; not used (no names under it go to the cluster)`,
    );
  } else if ("name" in d) clusterDomain = d.name;

  const cidrs = (kind: string, list: unknown): CidrInfo[] => {
    const out: CidrInfo[] = [];
    for (const e of (Array.isArray(list) ? list : []).slice(0, MAX_LIST)) {
      const text = (e as CidrInfo | null)?.cidr;
      const c = typeof text === "string" ? Cidr.parse(text) : null;
      if (c === null) {
        refuse(`${kind} CIDR ${quote(text)}`, "not a CIDR");
        continue;
      }
      const problem = policy ? clusterCidrProblem(c, policy.alsoProxy) : null;
      if (problem !== null) {
        refuse(`${kind} CIDR ${c}`, problem);
        continue;
      }
      out.push({ cidr: c.toString(), source: cleanText((e as CidrInfo).source) });
    }
    return out;
  };

  const namespaces: string[] = [];
  for (const n of (Array.isArray(raw.namespaces) ? raw.namespaces : []).slice(0, 100_000)) {
    const problem = dnsLabelProblem(n);
    if (problem !== null) refuse(`namespace ${quote(n)}`, problem);
    else if (!namespaces.includes(n)) namespaces.push(n);
  }

  const dnsServer = typeof raw.dnsServer === "string" && parseAddress(raw.dnsServer) !== null
    ? raw.dnsServer
    : null;

  const info: ClusterInfo = {
    type: "info",
    managerVersion: /^[0-9A-Za-z.+-]{1,64}$/.test(String(raw.managerVersion))
      ? raw.managerVersion
      : "?",
    clusterDomain,
    dnsServer,
    serviceCidrs: cidrs("service", raw.serviceCidrs),
    podCidrs: cidrs("pod", raw.podCidrs),
    namespaces,
    warnings: (Array.isArray(raw.warnings) ? raw.warnings : []).slice(0, 32).map((w) =>
      cleanText(w, 500)
    ),
  };
  return { info, refused };
}

/** The namespaces that become routing domains: valid labels that share no top-level name. */
export function routableNamespace(n: string): boolean {
  return isDnsLabel(n) && !sharesTopLevel(n);
}

/**
 * The cluster info a connection acts on. The first info (checked against the policy) sets what
 * the session may use; later ones may only narrow it: a prefix that no accepted prefix covers,
 * another cluster domain, or a namespace that would become a new routing domain is refused until
 * a new `up`. Namespaces that appear later still resolve under the routed domains
 * (`<svc>.<ns>.svc`), which widens nothing.
 */
export class InfoGate {
  readonly #policy: TrustPolicy;
  #baseline: ClusterInfo | null = null;
  #routed = new Set<string>();
  #current: ClusterInfo | null = null;

  /** A gate with the user's allowances. */
  constructor(policy: TrustPolicy) {
    this.#policy = policy;
  }

  /** Takes the first info: what the session starts with and may never grow past. */
  first(raw: ClusterInfo): { info: ClusterInfo; refused: Refusal[] } {
    const r = checkInfo(raw, this.#policy);
    this.#baseline = r.info;
    this.#current = r.info;
    this.#routed = new Set(r.info.namespaces);
    return r;
  }

  /** Takes a later info: what of it narrows what the session has, and what is refused. */
  update(raw: ClusterInfo): { info: ClusterInfo; refused: Refusal[] } {
    const base = this.#baseline;
    if (base === null) return this.first(raw);
    const { info, refused } = checkInfo(raw, this.#policy);
    const again = "; a new kconnect up accepts it";
    if (info.clusterDomain !== base.clusterDomain) {
      // A refused domain is already reported; a valid new one is a change.
      if (!refused.some((r) => r.item.startsWith("cluster domain"))) {
        refused.push({
          item: `cluster domain ${quote(info.clusterDomain)}`,
          from: FROM_MANAGER,
          reason:
            `changed after connecting (was ${base.clusterDomain}); keeping ${base.clusterDomain}${again}`,
        });
      }
      info.clusterDomain = base.clusterDomain;
    }
    const accepted = [...base.serviceCidrs, ...base.podCidrs].map((c) => Cidr.parse(c.cidr)!);
    const narrow = (kind: string, list: CidrInfo[]) =>
      list.filter((c) => {
        const cidr = Cidr.parse(c.cidr)!;
        if (accepted.some((a) => within(cidr, a))) return true;
        if (this.#policy.alsoProxy.some((a) => within(cidr, a))) return true;
        refused.push({
          item: `${kind} CIDR ${cidr}`,
          from: FROM_MANAGER,
          reason: `announced after connecting, outside the networks accepted then${again}`,
        });
        return false;
      });
    info.serviceCidrs = narrow("service", info.serviceCidrs);
    info.podCidrs = narrow("pod", info.podCidrs);
    for (const n of info.namespaces) {
      if (this.#routed.has(n) || !routableNamespace(n)) continue;
      if (this.#current?.namespaces.includes(n)) continue; // reported already
      refused.push({
        item: `routing domain for namespace ${quote(n)}`,
        from: FROM_MANAGER,
        reason:
          `the namespace appeared after connecting: <name>.${n}.svc works, <name>.${n} needs a new kconnect up`,
      });
    }
    this.#current = info;
    return { info, refused };
  }

  /** Namespaces that may be routing domains: those of the first info still present. */
  routedNamespaces(): ReadonlySet<string> {
    const now = new Set(this.#current?.namespaces ?? []);
    return new Set([...this.#routed].filter((n) => now.has(n)));
  }
}
