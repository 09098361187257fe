/**
 * `kconnect up`: connect this machine to a cluster in the foreground. Reports each step, routes
 * the cluster's CIDRs into a TUN device whose flows go through the tunnel, and undoes it all on
 * Ctrl-C or SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import { loadKubeconfig } from "../k8s/access.ts";
import { Journal, stateDir } from "../journal/journal.ts";
import { removeUpRecord, runningUp, writeUpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../journal/undo.ts";
import { DNS_MODES, type DnsMode } from "../resolver/select.ts";
import { ClusterSession } from "../connect/session.ts";
import { logger } from "../log.ts";
import { DEFAULT_TUN_NET4, DEFAULT_TUN_NET6 } from "../stack/tun_addresses.ts";
import { Cidr } from "../wire/address.ts";
import { MANAGER_NAMESPACE } from "../connect/find_manager.ts";
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
  const signalled = new AbortController();
  const stop = untilSignal(signalled.signal);
  try {
    await using session = await ClusterSession.start({
      access,
      journal,
      managerNamespace: opts.managerNamespace,
      alsoProxy,
      neverProxy,
      allowRouteConflicts: opts.allowRouteConflicts ?? false,
      tunName: opts.tunName,
      mtu,
      transports,
      tunNet4: opts.tunNet4,
      tunNet6: opts.tunNet6,
      namespace: opts.namespace ?? access.namespace,
      dns: opts.dns as DnsMode,
    }, progress);
    printLine(`ready: connected to context "${access.context}"; press Ctrl-C to disconnect`);
    const statsTimer = setInterval(() => {
      const m = Deno.memoryUsage();
      const st = session.status();
      log.debug("stats", {
        rssMiB: (m.rss / 1048576).toFixed(1),
        heapMiB: (m.heapUsed / 1048576).toFixed(1),
        tcpFlows: st.flows.tcp,
        udpFlows: st.flows.udp,
        streams: st.transports.reduce((n, t) => n + t.streams, 0),
        dnsQueries: session.dnsStats.queries,
        dnsDropped: session.dnsStats.dropped,
      });
    }, 5000);
    const why = await Promise.race([stop, session.done]);
    clearInterval(statsTimer);
    log.info(`disconnecting: ${why}`);
  } finally {
    signalled.abort();
    await removeUpRecord(dir);
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
