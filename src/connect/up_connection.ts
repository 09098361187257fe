/**
 * A connected machine: the tunnel to the cluster, the TUN device and flow engine, the routes and
 * the DNS settings, set up step by step (each host change journaled first) and taken down again.
 * `kconnect up` in the foreground and the daemon both run one of these.
 *
 * @module
 */
import type { ClusterAccess } from "../k8s/access.ts";
import type { Journal } from "../journal/journal.ts";
import { checkSettings, defaultNamespace, type UpSettings } from "../config/config.ts";
import { LocalServicesDialer } from "../dial/local.ts";
import { logger, type Progress } from "../log.ts";
import type { ClusterInfo, Refusal } from "../protocol/cluster_info.ts";
import { type DnsMode, selectResolver } from "../resolver/select.ts";
import { addRoute, deleteRoute, listRoutes, ROUTE_KIND } from "../routes/routes.ts";
import { FlowEngine } from "../stack/engine.ts";
import { tunAddresses } from "../stack/tun_addresses.ts";
import { openTun } from "../tun/open.ts";
import type { TunDevice } from "../tun/device.ts";
import { Cidr, parseAddress } from "../wire/address.ts";
import { type ClusterConnection, connectCluster, type ResumeState } from "./connection.ts";
import { DnsSetup } from "./dns_setup.ts";
import { describeConflicts, type PlannedRoute, planRoutes, type RoutePlan } from "./route_plan.ts";
import { describeRefusal, FROM_MANAGER, InfoGate } from "../trust/trust.ts";
import { systemDnsServers } from "../resolver/system_servers.ts";
import { VERSION } from "../version.ts";
import { TUN_KIND } from "../tun/undo.ts";
import { keepAllocatorPages } from "../host/allocator.ts";
import { IdleRelease, releaseMemory } from "../host/idle_release.ts";

const log = logger("session");

/** What an {@linkcode UpConnection} is set up with. */
export interface UpConnectionOptions {
  access: ClusterAccess;
  journal: Journal;
  managerNamespace: string;
  alsoProxy: Cidr[];
  neverProxy: Cidr[];
  allowRouteConflicts: boolean;
  tunName: string;
  mtu: number;
  transports: number;
  /** Seconds open flows are held while the tunnel is down; 0: resumption off. */
  resumeGrace: number;
  tunNet4: string;
  tunNet6: string;
  /** The namespace short names resolve in. */
  namespace: string;
  /** Cluster domains the user named (config file `clusterDomain`), accepted from the manager. */
  clusterDomains: string[];
  dns: DnsMode;
  /** Install the traffic manager when none is found. */
  installManager: boolean;
  /** Upgrade a manager of another version. */
  upgradeManager: boolean;
  /** Image for an install or upgrade; null for the default. */
  managerImage: string | null;
}

/**
 * Connection options from merged settings (flags, config file, defaults), checked here once more
 * (the foreground `up` and the daemon both come through), with the kubeconfig context's
 * namespace checked when no namespace was given.
 *
 * @throws {SettingsError} naming what is wrong.
 */
export function upConnectionOptions(
  settings: UpSettings,
  access: ClusterAccess,
  journal: Journal,
): UpConnectionOptions {
  checkSettings(settings);
  const cidrs = (list: string[]) => list.map((t) => Cidr.parse(t)!);
  return {
    access,
    journal,
    managerNamespace: settings.managerNamespace,
    alsoProxy: cidrs(settings.alsoProxy),
    neverProxy: cidrs(settings.neverProxy),
    allowRouteConflicts: settings.allowRouteConflicts,
    tunName: settings.tunName,
    mtu: settings.mtu,
    transports: settings.transports,
    resumeGrace: settings.resumeGrace,
    tunNet4: settings.tunNet4,
    tunNet6: settings.tunNet6,
    namespace: defaultNamespace(settings.namespace, access.context, access.namespace),
    clusterDomains: settings.clusterDomain ? [settings.clusterDomain] : [],
    dns: settings.dns,
    installManager: settings.installManager,
    upgradeManager: settings.upgradeManager,
    managerImage: settings.managerImage,
  };
}

/** What `status` reports. */
export interface UpConnectionStatus {
  state: "connected" | "reconnecting" | "disconnected";
  context: string;
  server: string;
  serverVersion: string;
  user: string;
  clientVersion: string;
  manager: { namespace: string; pod: string; version: string };
  clusterDomain: string;
  namespace: string;
  serviceCidrs: { cidr: string; source: string }[];
  podCidrs: { cidr: string; source: string }[];
  routes: string[];
  tun: { name: string; mtu: number };
  dns: { mode: string | null; server: string; routingDomains: string[]; searchDomains: string[] };
  transports: {
    state: string;
    rttMs: number | null;
    streams: number;
    bytesIn: number;
    bytesOut: number;
  }[];
  /**
   * Open flows, and packets dropped because their source is not one of this machine's addresses
   * (forwarded from another host: only this machine's own traffic rides the tunnel).
   */
  flows: { tcp: number; udp: number; notLocal?: number };
  /**
   * Resumption: on, off or unsupported by the manager, the grace period granted, what is held
   * while the tunnel is down (`flows`: the open TCP and UDP flows when no transport is up,
   * else the streams of the transports that are down), and the last resume, refusal or expiry.
   * Absent from the reports of daemons before it was added.
   */
  resume?: ResumeState & {
    held: { streams: number; flows: number; bytes: number; secondsLeft: number } | null;
  };
  bytes: { in: number; out: number };
  startedAt: string;
  uptimeSeconds: number;
  lastError: string | null;
  warnings: string[];
  /**
   * What kconnect refused from the traffic manager (or kept out of its prefixes) and why, e.g.
   * `pod CIDR 0.0.0.0/1` from `the traffic manager`: `outside private ranges; …`. Oldest first.
   */
  refused: Refusal[];
}

/** How many refusals a connection keeps for `status`. */
const MAX_REFUSED = 64;

/** Whether `/sys/class/net/<name>` exists (Linux): the name is taken. */
async function linkExists(name: string): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    await Deno.lstat(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a TUN name that an existing interface has (a VPN's persistent TUN, `eth0`): kconnect
 * would re-address it and, after a crash, delete it. A TUN of kconnect's that is just going
 * away (a switch) gets two seconds.
 */
async function checkTunNameFree(name: string): Promise<void> {
  for (let i = 0; i < 20 && await linkExists(name); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (await linkExists(name)) {
    throw new Error(
      `A network interface named ${name} already exists; kconnect creates its own TUN device: choose another name with --tun-name`,
    );
  }
}

/** The API server's addresses, which must never be routed into the tunnel they carry. */
async function apiServerAddresses(server: string): Promise<Cidr[]> {
  const host = new URL(server).hostname.replace(/^\[|\]$/g, "");
  const literal = parseAddress(host);
  if (literal !== null) return [Cidr.from(literal, literal.length * 8)!];
  const out: Cidr[] = [];
  for (const type of ["A", "AAAA"] as const) {
    try {
      for (const a of await Deno.resolveDns(host, type)) {
        const b = parseAddress(a);
        if (b) out.push(Cidr.from(b, b.length * 8)!);
      }
    } catch { /* no such records */ }
  }
  return out;
}

/** Refusals for the parts of the manager's prefixes the plan kept out of the tunnel. */
function cutOutRefusals(plan: RoutePlan): Refusal[] {
  return plan.cutOut.filter((c) => c.from.fromCluster).map((c) => ({
    item: `${c.hole} inside ${c.from.why.replace(/,.*$/, "")} ${c.from.cidr}`,
    from: FROM_MANAGER,
    reason: `${c.label}; it stays outside the tunnel`,
  }));
}

function clusterRoutes(info: ClusterInfo): PlannedRoute[] {
  const list = (kind: string, items: { cidr: string; source: string }[]) =>
    items.flatMap((i) => {
      const c = Cidr.parse(i.cidr);
      return c ? [{ cidr: c, why: `${kind} CIDR, ${i.source}` }] : [];
    });
  return [...list("service", info.serviceCidrs), ...list("pod", info.podCidrs)];
}

/**
 * This machine connected to a cluster: a {@linkcode ClusterConnection} plus the TUN, the flow
 * engine, the routes and the DNS settings. `kconnect up` and the daemon each run one.
 */
export class UpConnection implements AsyncDisposable {
  readonly #o: UpConnectionOptions;
  readonly #conn: ClusterConnection;
  readonly #engine: FlowEngine;
  readonly #tun: TunDevice;
  readonly #dns: DnsSetup;
  readonly #tunJournal: string;
  readonly #routed = new Map<string, { cidr: Cidr; journalId: string }>();
  readonly #startedAt = new Date();
  readonly #warnings: string[] = [];
  readonly #refused: Refusal[] = [];
  /** The cluster info in force: the manager's, as far as it was accepted (`src/trust/`). */
  #info: ClusterInfo;
  #lastError: string | null = null;
  #closed: Promise<void> | null = null;
  #closing = false;
  #updates: Promise<void> = Promise.resolve();
  /** Gives memory back when the traffic through the TUN stops. */
  #idle: IdleRelease;
  /** Resolves with the reason when the connection ended by itself. */
  readonly done: Promise<string>;

  private constructor(
    o: UpConnectionOptions,
    conn: ClusterConnection,
    tun: TunDevice,
    engine: FlowEngine,
    dns: DnsSetup,
    tunJournal: string,
    info: ClusterInfo,
    refused: Refusal[],
  ) {
    this.#info = info;
    this.#refuse(refused);
    this.#tunJournal = tunJournal;
    this.#o = o;
    this.#conn = conn;
    this.#tun = tun;
    this.#engine = engine;
    this.#dns = dns;
    // A dropped tunnel is not the end: the pool reconnects while TUN, routes and DNS stay.
    this.done = engine.done.then(() => "the TUN device went away");
    this.#idle = new IdleRelease({
      activity: () => tun.stats.readBytes + tun.stats.writtenBytes,
      release: () => {
        const before = Deno.memoryUsage().rss;
        releaseMemory();
        const mib = (n: number) => (n / 1048576).toFixed(1);
        log.debug(
          `traffic stopped: memory released, rss ${mib(before)} -> ${
            mib(Deno.memoryUsage().rss)
          } MiB`,
        );
      },
    });
  }

  /** Connects and sets up the machine, reporting each step; undoes what it did if a step fails. */
  static async start(o: UpConnectionOptions, progress: Progress): Promise<UpConnection> {
    let onInfo: (info: ClusterInfo) => void = () => {};
    const conn = await connectCluster({
      access: o.access,
      managerNamespace: o.managerNamespace,
      transports: o.transports,
      resumeGraceSeconds: o.resumeGrace,
      tunName: o.tunName,
      installManager: o.installManager,
      upgradeManager: o.upgradeManager,
      managerImage: o.managerImage ?? undefined,
      onInfo: (info) => onInfo(info),
      progress,
    });
    let tun: TunDevice | null = null;
    let tunJournal: string | null = null;
    let engine: FlowEngine | null = null;
    let connection: UpConnection | null = null;
    try {
      // The manager's info, as far as kconnect accepts it: checked at the control stream
      // (syntax), then against the policy and the user's allowances; later infos only narrow.
      const gate = new InfoGate({ clusterDomains: o.clusterDomains, alsoProxy: o.alsoProxy });
      const checked = gate.first(conn.info);
      const info = checked.info;
      const refused = [...(conn.info.refused ?? []), ...checked.refused];
      progress.done(
        "cluster networks",
        `domain ${info.clusterDomain}, traffic manager ${info.managerVersion}`,
      );
      for (const c of info.serviceCidrs) progress.detail(`service CIDR ${c.cidr} (${c.source})`);
      for (const c of info.podCidrs) progress.detail(`pod CIDR ${c.cidr} (${c.source})`);
      for (const w of info.warnings) progress.warn(w);

      const v4 = tunAddresses(o.tunNet4);
      const v6 = tunAddresses(o.tunNet6);
      const apiServer = (await apiServerAddresses(o.access.server)).map((address) => ({
        address,
        label: "the API server, which carries the tunnel",
      }));
      const plan = async (i: ClusterInfo) => {
        // The machine's DNS servers now (DHCP may change them): never routed into the tunnel.
        const resolvers = (await systemDnsServers(undefined, [v4.dns, v6.dns])).flatMap((a) => {
          const c = Cidr.parse(a);
          return c ? [{ address: c, label: `${a}, a DNS server of this machine` }] : [];
        });
        return planRoutes({
          cluster: clusterRoutes(i),
          alsoProxy: o.alsoProxy,
          neverProxy: o.neverProxy,
          keepOut: [...apiServer, ...resolvers],
          existing: [
            ...(await listRoutes(4)).map((r) => ({ ...r, family: 4 as const })),
            ...(await listRoutes(6)).map((r) => ({ ...r, family: 6 as const })),
          ],
          ownDev: o.tunName,
        });
      };
      const first = await plan(info);
      refused.push(...cutOutRefusals(first));
      for (const r of refused) progress.warn(describeRefusal(r));
      if (first.conflicts.length > 0 && !o.allowRouteConflicts) {
        throw new Error(describeConflicts(first.conflicts));
      }
      if (first.routes.length === 0) {
        throw new Error(
          `The traffic manager reported no cluster CIDRs kconnect accepts${
            refused.length ? ` (${refused.length} refused, see above)` : ""
          } and none were given with --also-proxy: nothing to route`,
        );
      }
      let current = info;
      const dns = new DnsSetup({
        info: () => current,
        routedNamespaces: () => gate.routedNamespaces(),
        namespace: o.namespace,
        addresses: [v4.dns, v6.dns],
        cluster: (q, signal) => conn.dialer.queryDns(q, signal),
      });
      // Bulk sends through the tunnel would otherwise fault in fresh pages every time.
      if (!keepAllocatorPages()) log.debug("allocator thresholds not set (no glibc)");
      await checkTunNameFree(o.tunName);
      tunJournal = await o.journal.add(TUN_KIND, { name: o.tunName });
      tun = await openTun({
        name: o.tunName,
        mtu: o.mtu,
        addresses: [
          { address: v4.tun, prefixLength: v4.prefixLength },
          { address: v6.tun, prefixLength: v6.prefixLength },
        ],
      });
      const dialer = new LocalServicesDialer(conn.dialer, dns.services());
      engine = await FlowEngine.start({ tun, dialer, v4, v6 });
      progress.done("TUN", `${tun.name} up, mtu ${tun.mtu}`);
      connection = new UpConnection(o, conn, tun, engine, dns, tunJournal, info, refused);
      for (const n of first.notes) progress.detail(n);
      await connection.#applyRoutes(first.routes);
      progress.done("routes", `${[...connection.#routed.keys()].join(", ")} via ${tun.name}`);
      const resolver = await selectResolver(o.dns, o.journal);
      if (resolver === null) progress.warn("DNS: not configured (--dns off)");
      else await dns.configure(resolver, tun.name, progress);
      const s = connection;
      onInfo = (raw) => {
        // One update at a time, and none once closing has begun.
        s.#updates = s.#updates.then(async () => {
          if (s.#closing) return;
          // Only narrowing is automatic: what would widen the connection is refused and reported.
          const next = gate.update(raw);
          const rp = await plan(next.info);
          s.#refuse([...(raw.refused ?? []), ...next.refused, ...cutOutRefusals(rp)]);
          if (rp.conflicts.length > 0 && !o.allowRouteConflicts) {
            s.#warn(
              `new cluster networks collide with this machine's routes; keeping the old ones: ${
                describeConflicts(rp.conflicts)
              }`,
            );
            return;
          }
          current = next.info;
          s.#info = next.info;
          await s.#applyRoutes(rp.routes);
          await dns.update();
          log.info(`routes now ${[...s.#routed.keys()].join(", ")}`);
        }).catch((e) => s.#warn(`updating routes: ${e.message}`));
      };
      return connection;
    } catch (err) {
      if (connection !== null) await connection.close();
      else {
        await engine?.close();
        if (engine === null) await tun?.close();
        if (tunJournal !== null) await o.journal.remove(tunJournal);
        await conn.close();
      }
      throw err;
    }
  }

  #warn(message: string): void {
    log.warn(message);
    this.#lastError = message;
  }

  /** Records refusals for `status` (each once; the newest {@linkcode MAX_REFUSED}). */
  #refuse(list: Refusal[]): void {
    for (const r of list) {
      const known = this.#refused.findIndex((x) =>
        x.item === r.item && x.from === r.from && x.reason === r.reason
      );
      if (known >= 0) continue;
      log.warn(describeRefusal(r));
      this.#refused.push(r);
      if (this.#refused.length > MAX_REFUSED) this.#refused.shift();
    }
  }

  async #applyRoutes(routes: PlannedRoute[]): Promise<void> {
    const want = new Map(routes.map((r) => [r.cidr.toString(), r.cidr]));
    const dev = this.#tun.name;
    for (const [key, r] of this.#routed) {
      if (want.has(key)) continue;
      await deleteRoute(r.cidr, dev).catch((e) =>
        log.warn(`removing route ${r.cidr}: ${e.message}`)
      );
      await this.#o.journal.remove(r.journalId);
      this.#routed.delete(key);
    }
    for (const [key, cidr] of want) {
      if (this.#routed.has(key)) continue;
      const journalId = await this.#o.journal.add(ROUTE_KIND, { cidr: key, dev });
      await addRoute(cidr, dev);
      this.#routed.set(key, { cidr, journalId });
    }
  }

  /** What is connected now, and how it is doing. */
  status(): UpConnectionStatus {
    const c = this.#conn;
    const sessions = c.pool.sessions;
    const bytesIn = sessions.reduce((n, s) => n + s.stats.bytesIn, 0);
    const bytesOut = sessions.reduce((n, s) => n + s.stats.bytesOut, 0);
    const plan = this.#dns.plan;
    const resume = c.resume;
    const flows = {
      tcp: this.#engine.stats.activeTcp,
      udp: this.#engine.udp.flows.size,
      notLocal: this.#engine.stats.notLocal,
    };
    return {
      state: c.reconnecting ? "reconnecting" : "connected",
      context: this.#o.access.context,
      server: this.#o.access.server,
      serverVersion: c.serverVersion,
      user: this.#o.access.userName,
      clientVersion: VERSION,
      manager: {
        namespace: c.manager.namespace,
        pod: c.manager.name,
        version: this.#info.managerVersion,
      },
      clusterDomain: this.#info.clusterDomain,
      namespace: this.#o.namespace,
      serviceCidrs: this.#info.serviceCidrs,
      podCidrs: this.#info.podCidrs,
      routes: [...this.#routed.keys()],
      tun: { name: this.#tun.name, mtu: this.#tun.mtu },
      dns: {
        mode: this.#dns.mode,
        server: plan?.server ?? "",
        routingDomains: plan?.routingDomains ?? [],
        searchDomains: plan?.searchDomains ?? [],
      },
      transports: sessions.map((s) => ({
        state: s.isClosed
          ? "closed"
          : s.isDetached
          ? "reconnecting"
          : s.isGoingAway
          ? "going-away"
          : "open",
        rttMs: s.stats.lastRttMs,
        streams: s.numStreams,
        bytesIn: s.stats.bytesIn,
        bytesOut: s.stats.bytesOut,
      })),
      flows,
      resume: {
        ...resume,
        held: resume.held === null ? null : {
          ...resume.held,
          flows: c.reconnecting ? flows.tcp + flows.udp : resume.held.streams,
        },
      },
      bytes: { in: bytesIn, out: bytesOut },
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
      lastError: this.#lastError ?? c.lastError,
      warnings: [...this.#info.warnings, ...this.#warnings],
      refused: [...this.#refused],
    };
  }

  /** The DNS server's counters (for debug statistics). */
  get dnsStats(): DnsSetup["server"]["stats"] {
    return this.#dns.server.stats;
  }

  /** Undoes everything: DNS settings, routes, the TUN, the tunnel. Safe to call twice. */
  close(): Promise<void> {
    this.#closing = true;
    this.#idle[Symbol.dispose]();
    this.#closed ??= (async () => {
      await this.#updates;
      await this.#dns.restore().catch((e) => log.warn(`restoring DNS settings: ${e.message}`));
      for (const [key, r] of [...this.#routed].reverse()) {
        await deleteRoute(r.cidr, this.#tun.name).catch((e) =>
          log.warn(`removing route ${r.cidr}: ${e.message}`)
        );
        await this.#o.journal.remove(r.journalId).catch(() => {});
        this.#routed.delete(key);
      }
      await this.#engine.close();
      await this.#o.journal.remove(this.#tunJournal).catch(() => {});
      await this.#conn.close();
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
