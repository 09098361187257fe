/**
 * `up`'s DNS: kconnect's DNS server (answering at the DNS address inside the TUN's prefix) and
 * the machine's resolver pointed at it, checked, kept in step with the cluster's namespaces,
 * and put back on the way out.
 *
 * @module
 */
import { forwardDns } from "../dns/forward.ts";
import { DnsServer } from "../dns/server.ts";
import type { LocalService } from "../dial/local.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import { type DnsPlan, dnsPlan, type ResolverConfigurator } from "../resolver/plan.ts";
import { verifySystemResolver } from "../resolver/verify.ts";
import { Cidr } from "../wire/address.ts";
import { logger, type Progress } from "../log.ts";

const log = logger("dns");

/** The DNS part of a connection. */
export class DnsSetup {
  readonly server: DnsServer;
  readonly #namespace: string;
  readonly #addresses: string[];
  #info: () => ClusterInfo;
  #routed: () => ReadonlySet<string> | undefined;
  #resolver: ResolverConfigurator | null = null;
  #link = "";
  #plan: DnsPlan | null = null;

  constructor(o: {
    /** The cluster info in force (already checked, see `src/trust/`). */
    info: () => ClusterInfo;
    /**
     * The namespaces that may be routing domains (and `<svc>.<ns>` names); the others resolve
     * only under `.svc`. Undefined: all of `info().namespaces`.
     */
    routedNamespaces?: () => ReadonlySet<string>;
    namespace: string;
    /** The DNS addresses inside the TUN's prefixes (IPv4 first). */
    addresses: string[];
    /** Sends a raw query through the tunnel. */
    cluster: (query: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;
  }) {
    this.#info = o.info;
    this.#routed = o.routedNamespaces ?? (() => undefined);
    this.#namespace = o.namespace;
    this.#addresses = o.addresses;
    this.server = new DnsServer({
      scope: () => {
        const i = this.#info();
        return {
          clusterDomain: i.clusterDomain,
          namespaces: new Set(i.namespaces),
          routedNamespaces: this.#routed(),
          namespace: this.#namespace,
          cidrs: cidrsOf(i),
        };
      },
      cluster: o.cluster,
      upstream: (q) => {
        const servers = this.#resolver?.upstreamServers() ?? [];
        return servers.length > 0
          ? forwardDns(q, servers)
          : Promise.reject(new Error("no upstream"));
      },
    });
  }

  /** The services the flow engine answers in-process: DNS over UDP and TCP on port 53. */
  services(): LocalService[] {
    return this.#addresses.map((address) => ({
      address,
      port: 53,
      datagram: (q) => this.server.handle(q, "udp"),
      stream: (c) => this.server.serveTcp(c),
    }));
  }

  #makePlan(link: string): DnsPlan {
    const i = this.#info();
    return dnsPlan({
      server: this.#addresses[0],
      link,
      clusterDomain: i.clusterDomain,
      namespace: this.#namespace,
      namespaces: i.namespaces,
      routedNamespaces: this.#routed(),
      cidrs: cidrsOf(i),
    });
  }

  /**
   * Points the machine's resolver at the server and checks that lookups arrive; undoes it and
   * warns when they do not. Returns whether DNS works.
   */
  async configure(
    resolver: ResolverConfigurator,
    link: string,
    progress: Progress,
  ): Promise<boolean> {
    this.#link = link;
    const plan = this.#makePlan(link);
    await resolver.apply(plan);
    this.#plan = plan;
    this.#resolver = resolver;
    const check = await verifySystemResolver(
      this.server,
      this.#info().clusterDomain,
      this.#addresses[0],
    );
    if (!check.ok) {
      progress.warn(
        `DNS: ${check.detail}; undoing the ${resolver.mode} change (addresses still work)`,
      );
      await this.restore();
      return false;
    }
    if (plan.skippedNamespaces.length > 0) {
      progress.warn(
        `DNS: namespaces ${
          plan.skippedNamespaces.join(", ")
        } are also top-level domains (of the Internet or of local networks), so ` +
          `<name>.<namespace> is left to them; use <name>.<namespace>.svc`,
      );
    }
    progress.done(
      "DNS",
      `${resolver.mode}: ${
        plan.searchDomains[0]
      } and ${plan.routingDomains.length} domains via ${plan.server}; ${check.detail}`,
    );
    return true;
  }

  /** Follows a new cluster info (namespaces came or went). */
  async update(): Promise<void> {
    this.server.cache.clear();
    if (this.#resolver === null) return;
    const plan = this.#makePlan(this.#link);
    try {
      await this.#resolver.update(plan);
      this.#plan = plan;
    } catch (e) {
      log.warn(`updating DNS: ${(e as Error).message}`);
    }
  }

  /** Puts the resolver back. */
  async restore(): Promise<void> {
    const r = this.#resolver;
    this.#resolver = null;
    this.#plan = null;
    await r?.restore();
  }

  /** The resolver configuration in force, or null. */
  get plan(): DnsPlan | null {
    return this.#plan;
  }

  /** The resolver mode in use, or null. */
  get mode(): string | null {
    return this.#resolver?.mode ?? null;
  }
}

function cidrsOf(i: ClusterInfo): Cidr[] {
  return [...i.serviceCidrs, ...i.podCidrs].map((c) => Cidr.parse(c.cidr)).filter((c) =>
    c !== null
  );
}
