/**
 * `kconnect up`: connect this machine to a cluster in the foreground. Reports each step, routes
 * the cluster's CIDRs into a TUN device whose flows go through the tunnel, and undoes it all on
 * Ctrl-C or SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import { type ClusterAccess, loadKubeconfig } from "../k8s/access.ts";
import { DnsSetup } from "../connect/dns_setup.ts";
import { LocalServicesDialer } from "../dial/local.ts";
import { Journal, stateDir } from "../journal/journal.ts";
import { removeUpRecord, runningUp, writeUpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../journal/undo.ts";
import { DNS_MODES, type DnsMode, selectResolver } from "../resolver/select.ts";
import { logger } from "../log.ts";
import type { SessionInfo } from "../manager/session_info.ts";
import { addRoute, deleteRoute, listRoutes } from "../routes/linux.ts";
import { FlowEngine } from "../stack/engine.ts";
import { DEFAULT_TUN_NET4, DEFAULT_TUN_NET6, tunAddresses } from "../stack/tun_addresses.ts";
import { openTun } from "../tun/open.ts";
import { Cidr, parseAddress } from "../wire/address.ts";
import { connectCluster } from "../connect/connection.ts";
import { MANAGER_NAMESPACE } from "../connect/find_manager.ts";
import { describeConflicts, type PlannedRoute, planRoutes } from "../connect/route_plan.ts";
import { printLine } from "./output.ts";
import { consoleProgress, type Progress } from "./progress.ts";
import { UsageError } from "./program.ts";
import { untilSignal } from "./signals.ts";

const log = logger("up");

/** Options of `kconnect up`. */
export interface UpOptions {
  kubeconfig?: string;
  context?: string;
  managerNamespace: string;
  alsoProxy: string[];
  neverProxy: string[];
  allowRouteConflicts?: boolean;
  tunName: string;
  mtu: string;
  transports: string;
  tunNet4: string;
  tunNet6: string;
  namespace?: string;
  dns: string;
  stateDir?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").filter((v) => v !== "")];
}

function cidrs(texts: string[], flag: string): Cidr[] {
  return texts.map((t) => {
    const c = Cidr.parse(t);
    if (c === null) throw new UsageError(`Invalid ${flag} "${t}": expected a CIDR like 10.0.0.0/8`);
    return c;
  });
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

function clusterRoutes(info: SessionInfo): PlannedRoute[] {
  const list = (kind: string, items: { cidr: string; source: string }[]) =>
    items.flatMap((i) => {
      const c = Cidr.parse(i.cidr);
      return c ? [{ cidr: c, why: `${kind} CIDR, ${i.source}` }] : [];
    });
  return [...list("service", info.serviceCidrs), ...list("pod", info.podCidrs)];
}

/** Runs `kconnect up` in the foreground until a signal. */
export async function runUp(opts: UpOptions, progress: Progress = consoleProgress): Promise<void> {
  const alsoProxy = cidrs(opts.alsoProxy, "--also-proxy");
  const neverProxy = cidrs(opts.neverProxy, "--never-proxy");
  const mtu = Number(opts.mtu);
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) {
    throw new UsageError(`Invalid --mtu "${opts.mtu}": expected an integer from 1280 to 65535`);
  }
  const transports = Number(opts.transports);
  if (!Number.isInteger(transports) || transports < 1 || transports > 16) {
    throw new UsageError(`Invalid --transports "${opts.transports}": expected 1 to 16`);
  }
  if (!(DNS_MODES as readonly string[]).includes(opts.dns)) {
    throw new UsageError(`Invalid --dns "${opts.dns}": expected one of ${DNS_MODES.join(", ")}`);
  }
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      "kconnect up must run as root: it creates a TUN device and routes (try: sudo kconnect up)",
    );
  }
  const dir = stateDir(opts.stateDir);
  const running = await runningUp(dir);
  if (running !== null) {
    throw new Error(
      `kconnect is already connected (context "${running.context}", pid ${running.pid}, since ${running.startedAt}): run kconnect down first`,
    );
  }
  const journal = await Journal.open(dir);
  for (const done of await undoLeftovers(journal)) {
    progress.warn(`cleaned up after an earlier run that did not exit cleanly: ${done}`);
  }
  const access = await loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context });
  progress.done(
    "kubeconfig",
    `context "${access.context}", user "${access.userName}" (${access.source})`,
  );
  await writeUpRecord(dir, access.context);
  try {
    await connectAndServe(
      opts,
      { alsoProxy, neverProxy, mtu, transports, journal },
      access,
      progress,
    );
  } finally {
    await removeUpRecord(dir);
  }
}

async function connectAndServe(
  opts: UpOptions,
  p: { alsoProxy: Cidr[]; neverProxy: Cidr[]; mtu: number; transports: number; journal: Journal },
  access: ClusterAccess,
  progress: Progress,
): Promise<void> {
  const signalled = new AbortController();
  const stop = untilSignal(signalled.signal);
  let onInfo: (info: SessionInfo) => void = () => {};
  await using conn = await connectCluster({
    access,
    managerNamespace: opts.managerNamespace,
    transports: p.transports,
    onInfo: (info) => onInfo(info),
    progress,
  });
  const info = conn.info;
  progress.done(
    "cluster networks",
    `domain ${info.clusterDomain}, traffic manager ${info.managerVersion}`,
  );
  for (const c of info.serviceCidrs) progress.detail(`service CIDR ${c.cidr} (${c.source})`);
  for (const c of info.podCidrs) progress.detail(`pod CIDR ${c.cidr} (${c.source})`);
  for (const w of info.warnings) progress.warn(w);

  const keepOut = (await apiServerAddresses(access.server)).map((address) => ({
    address,
    label: "the API server, which carries the tunnel",
  }));
  const plan = async (i: SessionInfo) => {
    const existing = [...await listRoutes(4), ...await listRoutes(6)];
    return planRoutes({
      cluster: clusterRoutes(i),
      alsoProxy: p.alsoProxy,
      neverProxy: p.neverProxy,
      keepOut,
      existing,
      ownDev: opts.tunName,
    });
  };
  const first = await plan(info);
  if (first.conflicts.length > 0 && !opts.allowRouteConflicts) {
    throw new Error(describeConflicts(first.conflicts));
  }
  if (first.routes.length === 0) {
    throw new Error(
      "The traffic manager reported no cluster CIDRs and none were given with --also-proxy: nothing to route",
    );
  }

  const v4 = tunAddresses(opts.tunNet4);
  const v6 = tunAddresses(opts.tunNet6);
  const dns = new DnsSetup({
    info: () => conn.info,
    namespace: opts.namespace ?? access.namespace,
    addresses: [v4.dns, v6.dns],
    cluster: (q, signal) => conn.dialer.queryDns(q, signal),
  });
  const tun = await openTun({
    name: opts.tunName,
    mtu: p.mtu,
    addresses: [
      { address: v4.tun, prefixLength: v4.prefixLength },
      { address: v6.tun, prefixLength: v6.prefixLength },
    ],
  });
  const dialer = new LocalServicesDialer(conn.dialer, dns.services());
  await using engine = await FlowEngine.start({ tun, dialer, v4, v6 });
  progress.done("TUN", `${tun.name} up, mtu ${tun.mtu}`);

  const routed = new Map<string, Cidr>();
  const apply = async (routes: PlannedRoute[]) => {
    const want = new Map(routes.map((r) => [r.cidr.toString(), r.cidr]));
    for (const [key, cidr] of routed) {
      if (want.has(key)) continue;
      await deleteRoute(cidr, tun.name).catch((e) =>
        log.warn(`removing route ${cidr}: ${e.message}`)
      );
      routed.delete(key);
    }
    for (const [key, cidr] of want) {
      if (routed.has(key)) continue;
      await addRoute(cidr, tun.name);
      routed.set(key, cidr);
    }
  };
  try {
    for (const n of first.notes) progress.detail(n);
    await apply(first.routes);
    progress.done("routes", `${[...routed.keys()].join(", ")} via ${tun.name}`);
    const resolver = await selectResolver(opts.dns as DnsMode, p.journal);
    if (resolver === null) progress.warn("DNS: not configured (--dns off)");
    else await dns.configure(resolver, tun.name, progress);
    onInfo = (next) => {
      plan(next).then(async (rp) => {
        if (rp.conflicts.length > 0 && !opts.allowRouteConflicts) {
          log.warn(
            `new cluster networks collide with this machine's routes; keeping the old ones\n${
              describeConflicts(rp.conflicts)
            }`,
          );
          return;
        }
        await apply(rp.routes);
        await dns.update();
        log.info(`routes now ${[...routed.keys()].join(", ")}`);
      }).catch((e) => log.warn(`updating routes: ${e.message}`));
    };
    printLine(`ready: connected to context "${access.context}"; press Ctrl-C to disconnect`);
    const statsTimer = setInterval(() => {
      const m = Deno.memoryUsage();
      log.debug("stats", {
        rssMiB: (m.rss / 1048576).toFixed(1),
        heapMiB: (m.heapUsed / 1048576).toFixed(1),
        tcpFlows: engine.tcp.flows.size,
        udpFlows: engine.udp.flows.size,
        streams: conn.pool.sessions.reduce((n, s) => n + s.numStreams, 0),
        dnsQueries: dns.server.stats.queries,
        dnsDropped: dns.server.stats.dropped,
        dnsCache: dns.server.cache.size,
      });
    }, 5000);
    const why = await Promise.race([
      stop,
      engine.done.then(() => "the TUN device went away"),
      conn.control.done.then(() => "the traffic manager closed the session"),
    ]);
    clearInterval(statsTimer);
    log.info(`disconnecting: ${why}`);
  } finally {
    signalled.abort();
    await dns.restore().catch((e) => log.warn(`restoring DNS settings: ${e.message}`));
    for (const cidr of [...routed.values()].reverse()) {
      await deleteRoute(cidr, tun.name).catch((e) =>
        log.warn(`removing route ${cidr}: ${e.message}`)
      );
    }
  }
  printLine("disconnected");
}

/** Registers `kconnect up`. */
export function registerUp(program: Command): void {
  program
    .command("up")
    .description(
      "connect this machine to the cluster of the current kube context (in the foreground)",
    )
    .option("--kubeconfig <path>", "kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kube context to use (default: the current context)")
    .option("--manager-namespace <ns>", "namespace of the traffic manager", MANAGER_NAMESPACE)
    .option(
      "--also-proxy <cidr>",
      "route this prefix into the cluster too (repeatable)",
      collect,
      [],
    )
    .option(
      "--never-proxy <cidr>",
      "never route this prefix into the cluster (repeatable)",
      collect,
      [],
    )
    .option(
      "--allow-route-conflicts",
      "route cluster CIDRs even where they overlap this machine's routes",
    )
    .option("--tun-name <name>", "TUN interface name", "kconnect0")
    .option("--mtu <bytes>", "TUN MTU", "1500")
    .option("--transports <n>", "port-forward connections to spread flows over", "2")
    .option("--tun-net4 <cidr>", "the TUN's own IPv4 prefix", DEFAULT_TUN_NET4)
    .option("--tun-net6 <cidr>", "the TUN's own IPv6 prefix", DEFAULT_TUN_NET6)
    .option(
      "-n, --namespace <ns>",
      "namespace whose services short names resolve in (default: the context's)",
    )
    .option("--dns <mode>", `resolver configuration: ${DNS_MODES.join(", ")}`, "auto")
    .option(
      "--state-dir <dir>",
      "where the journal of host changes lives (default /var/lib/kconnect)",
    )
    .action((opts: UpOptions) => runUp(opts));
}
