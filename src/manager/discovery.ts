/**
 * How the traffic manager learns the cluster's networks through the Kubernetes API, falling back
 * step by step as clusters differ:
 *
 * - service CIDRs: the `networking.k8s.io/v1` ServiceCIDR list (Kubernetes ≥ 1.33); else the
 *   error a dry-run create of a Service with an out-of-range ClusterIP returns, which names the
 *   valid range; else a cover of the existing services' ClusterIPs;
 * - pod CIDRs: the nodes' `spec.podCIDRs`; else a cover of the pods' IPs.
 *
 * The cluster-wide lists (pods and services, for the covers) are read in pages of
 * {@linkcode LIST_PAGE} objects, keeping only the addresses of each page, so a large cluster's
 * pod specs are never all in memory at once. The dry-run probe needs `create` on services,
 * which `kconnect install` grants only when asked to (`serviceProbe`); without it the probe is
 * refused and the cover is used, with no warning, as that is how the manager was installed.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { Cidr } from "../wire/address.ts";
import { coverAddresses, mergeCidrs } from "./cover.ts";
import type { CidrInfo } from "../protocol/cluster_info.ts";

interface List<T> {
  metadata?: { continue?: string };
  items?: T[];
}

/** Objects per page of a cluster-wide list. */
export const LIST_PAGE = 500;

/**
 * Lists `path` page by page (`limit`/`continue`), handing each page's items to `each`, and
 * starts over (at most twice) when the API says the continue token expired (410).
 */
export async function listPaged<T>(
  client: KubeClient,
  path: string,
  each: (items: T[]) => void,
  reset: () => void = () => {},
): Promise<void> {
  for (let attempt = 0;; attempt++) {
    let token: string | undefined;
    try {
      do {
        const q = new URLSearchParams({ limit: String(LIST_PAGE) });
        if (token) q.set("continue", token);
        const page = await client.get<List<T>>(`${path}?${q}`);
        each(page.items ?? []);
        token = page.metadata?.continue || undefined;
      } while (token !== undefined);
      return;
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 410 || attempt >= 2) throw err;
      reset();
    }
  }
}
interface ServiceCIDR {
  metadata?: { name?: string };
  spec?: { cidrs?: string[] };
}
interface Node {
  metadata?: { name?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}
interface Service {
  spec?: { clusterIP?: string; clusterIPs?: string[] };
}
interface Pod {
  spec?: { hostNetwork?: boolean };
  status?: { podIP?: string; podIPs?: { ip: string }[] };
}

/** The result of a discovery run. */
export interface Networks {
  serviceCidrs: CidrInfo[];
  podCidrs: CidrInfo[];
  namespaces: string[];
  warnings: string[];
}

const PROBE_IPS = ["1.1.1.1", "fd00:6b63:ffff::1"];

/** The ranges named in an "invalid ClusterIP" message, across the wordings of 1.18–1.33. */
export function rangesFromInvalidClusterIP(message: string): string[] {
  const out: string[] = [];
  // "…The range of valid IPs is 10.96.0.0/12" (also "…are 10.96.0.0/12,fd00::/108" in some
  // dual-stack versions); tolerate quoting and trailing punctuation.
  const re = /range of valid IPs (?:is|are)\s+([0-9a-fA-F:.\/,\s]+)/g;
  for (const m of message.matchAll(re)) {
    for (const part of m[1].split(/[,\s]+/)) {
      const c = Cidr.parse(part.replace(/\.$/, ""));
      if (c !== null && part.includes("/")) out.push(c.toString());
    }
  }
  return out;
}

function describe(err: unknown): string {
  if (err instanceof KubeApiError) return `${err.code} ${err.reason || "error"}`;
  return (err as Error).message;
}

async function serviceCidrs(
  client: KubeClient,
  probeNs: string,
  warnings: string[],
): Promise<CidrInfo[]> {
  try {
    const list = await client.get<List<ServiceCIDR>>("/apis/networking.k8s.io/v1/servicecidrs");
    const out = (list.items ?? []).flatMap((s) =>
      (s.spec?.cidrs ?? []).map((cidr) => ({
        cidr,
        source: `ServiceCIDR ${s.metadata?.name ?? "?"}`,
      }))
    );
    if (out.length > 0) return out;
  } catch (err) {
    if (!(err instanceof KubeApiError) || (err.code !== 404 && err.code !== 403)) throw err;
    if (err.code === 403) warnings.push(`ServiceCIDR list forbidden (${err.message})`);
  }
  const found: CidrInfo[] = [];
  for (const ip of PROBE_IPS) {
    const svc = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kconnect-cidr-probe" },
      spec: { clusterIP: ip, clusterIPs: [ip], ports: [{ port: 443 }] },
    };
    try {
      await client.post(`/api/v1/namespaces/${probeNs}/services?dryRun=All`, svc);
      // Accepted: the probe address is inside the range, which says nothing useful.
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      for (const cidr of rangesFromInvalidClusterIP(err.status?.message ?? err.message)) {
        if (!found.some((f) => f.cidr === cidr)) {
          found.push({ cidr, source: "invalid ClusterIP error" });
        }
      }
      // Not granted (the default install): fall back to the cover, quietly.
      if (err.code === 403) break;
    }
  }
  if (found.length > 0) return found;
  let ips: string[] = [];
  await listPaged<Service>(client, "/api/v1/services", (items) => {
    for (const s of items) {
      for (const ip of s.spec?.clusterIPs ?? [s.spec?.clusterIP ?? ""]) {
        if (ip && ip !== "None") ips.push(ip);
      }
    }
  }, () => ips = []);
  return coverAddresses(ips).map((c) => ({
    cidr: c.toString(),
    source: `cover of ${ips.length} service IPs`,
  }));
}

async function podCidrs(client: KubeClient, warnings: string[]): Promise<CidrInfo[]> {
  try {
    const nodes = await client.get<List<Node>>("/api/v1/nodes");
    const cidrs = (nodes.items ?? []).flatMap((n) =>
      n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : [])
    );
    const parsed = cidrs.map((c) => Cidr.parse(c)).filter((c) => c !== null);
    if (parsed.length > 0) {
      const n = nodes.items?.length ?? 0;
      return mergeCidrs(parsed).map((c) => ({
        cidr: c.toString(),
        source: `podCIDRs of ${n} node${n === 1 ? "" : "s"}`,
      }));
    }
  } catch (err) {
    if (!(err instanceof KubeApiError) || (err.code !== 403 && err.code !== 404)) throw err;
    warnings.push(`listing nodes failed (${describe(err)}); using pod IPs`);
  }
  let ips: string[] = [];
  await listPaged<Pod>(client, "/api/v1/pods", (items) => {
    for (const p of items) {
      if (p.spec?.hostNetwork) continue;
      ips.push(
        ...(p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : [])),
      );
    }
  }, () => ips = []);
  return coverAddresses(ips).map((c) => ({
    cidr: c.toString(),
    source: `cover of ${ips.length} pod IPs`,
  }));
}

async function namespaces(client: KubeClient, warnings: string[]): Promise<string[]> {
  try {
    const list = await client.get<List<{ metadata?: { name?: string } }>>("/api/v1/namespaces");
    return (list.items ?? []).map((n) => n.metadata?.name ?? "").filter((n) => n !== "").sort();
  } catch (err) {
    if (!(err instanceof KubeApiError)) throw err;
    warnings.push(`listing namespaces failed (${describe(err)})`);
    return [];
  }
}

/** Runs every discovery step; `probeNamespace` is where the dry-run probe Service is "created". */
export async function discoverNetworks(
  client: KubeClient,
  probeNamespace: string,
): Promise<Networks> {
  const warnings: string[] = [];
  const [svc, pod, ns] = await Promise.all([
    serviceCidrs(client, probeNamespace, warnings),
    podCidrs(client, warnings),
    namespaces(client, warnings),
  ]);
  return { serviceCidrs: svc, podCidrs: pod, namespaces: ns, warnings };
}
