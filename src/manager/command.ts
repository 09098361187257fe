/**
 * `kconnect traffic-manager`: the in-cluster side, run in a pod. It reads the Kubernetes API
 * with the pod's service account and serves kconnect sessions on a port that only port-forward
 * reaches (localhost by default). Registered both on the `kconnect` binary's program (`main.ts`)
 * and on the manager bundle's own (`main.ts` here).
 *
 * @module
 */
import type { Command } from "commander";
import { loadInCluster, SERVICE_ACCOUNT_DIR } from "../k8s/access.ts";
import { KubeClient } from "../k8s/client.ts";
import { logger } from "../log.ts";
import { withManagerFlags } from "./flags.ts";
import { TrafficManager } from "./server.ts";
import { UsageError } from "../cmdline/program.ts";
import { untilSignal } from "../cmdline/signals.ts";

const log = logger("manager");

interface Options {
  listen: string;
  serviceAccountDir: string;
  resolvConf: string;
  refresh: string;
  noApi?: boolean;
  api: boolean;
}

/** Splits `host:port` / `[v6]:port`. */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    throw new UsageError(`Invalid --listen "${text}": expected HOST:PORT, e.g. 127.0.0.1:8081`);
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Registers `kconnect traffic-manager`. */
export function registerTrafficManager(program: Command): void {
  program
    .command("traffic-manager")
    .description(
      "run the in-cluster side (inside a pod): serve kconnect sessions over port-forward",
    )
    .option(
      "--listen <host:port>",
      "where to listen; port-forward reaches localhost",
      "127.0.0.1:8081",
    )
    .option(
      "--service-account-dir <dir>",
      "service account token, CA and namespace",
      SERVICE_ACCOUNT_DIR,
    )
    .option("--resolv-conf <file>", "the pod's resolver configuration", "/etc/resolv.conf")
    .option("--refresh <seconds>", "seconds between network discovery runs", "30")
    .option("--no-api", "do not use the Kubernetes API (no CIDR discovery)")
    .action(async (opts: Options) => {
      const { hostname, port } = parseListen(opts.listen);
      const client = opts.api ? new KubeClient(await loadInCluster(opts.serviceAccountDir)) : null;
      const namespace = client?.access.namespace ?? "default";
      const resolvConf = await Deno.readTextFile(opts.resolvConf).catch(() => "");
      await using tm = await TrafficManager.start({
        hostname,
        port,
        client,
        namespace,
        resolvConf,
        refreshSeconds: Number(opts.refresh),
      });
      log.warn(`traffic manager listening on ${tm.addr.hostname}:${tm.addr.port}`, {
        serviceCidrs: tm.info.serviceCidrs.map((c) => c.cidr).join(",") || "none",
        podCidrs: tm.info.podCidrs.map((c) => c.cidr).join(",") || "none",
        domain: tm.info.clusterDomain,
      });
      const sig = await untilSignal();
      log.warn(`stopping on ${sig}`);
    });
  // Budgets (--max-…) and --deny, in the binary as in the deployed bundle.
  withManagerFlags(program);
}
