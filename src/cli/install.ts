/**
 * `kconnect install` and `kconnect uninstall`: put the traffic manager in the cluster of the
 * current kube context (or take it out), step by step. See `src/install/`.
 *
 * @module
 */
import type { Command } from "commander";
import { MANAGER_NAMESPACE } from "../manager_identity/identity.ts";
import { loadKubeconfig } from "../k8s/access.ts";
import { KubeClient } from "../k8s/client.ts";
import { installTrafficManager, uninstallTrafficManager } from "../install/install.ts";
import { VERSION } from "../version.ts";
import { printLine } from "../cmdline/output.ts";
import { UsageError } from "../cmdline/program.ts";
import type { Progress } from "../log.ts";
import { consoleProgress } from "./progress.ts";

/** Options of `kconnect install`. */
export interface InstallCliOptions {
  kubeconfig?: string;
  context?: string;
  managerNamespace: string;
  image?: string;
  timeout: string;
}

/** Options of `kconnect uninstall`. */
export interface UninstallCliOptions {
  kubeconfig?: string;
  context?: string;
  managerNamespace: string;
}

async function clientFor(
  opts: { kubeconfig?: string; context?: string },
  progress: Progress,
): Promise<KubeClient> {
  const access = await loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context });
  progress.done(
    "kubeconfig",
    `context "${access.context}", user "${access.userName}" (${access.source})`,
  );
  const client = new KubeClient(access);
  const v = await client.get<{ gitVersion?: string }>("/version");
  progress.done("cluster reached", `${access.server} (Kubernetes ${v.gitVersion ?? "unknown"})`);
  return client;
}

/** Runs `kconnect install`. */
export async function runInstall(
  opts: InstallCliOptions,
  progress: Progress = consoleProgress,
): Promise<void> {
  const timeout = Number(opts.timeout);
  if (!(timeout > 0)) {
    throw new UsageError(`Invalid --timeout "${opts.timeout}": expected a number of seconds`);
  }
  const client = await clientFor(opts, progress);
  const r = await installTrafficManager({
    client,
    namespace: opts.managerNamespace,
    progress,
    image: opts.image,
    timeoutMs: timeout * 1000,
  });
  printLine(
    `${r.changed ? "installed" : "up to date"}: traffic manager ${VERSION} in namespace ` +
      `"${opts.managerNamespace}" (pod ${r.pod.name})`,
  );
}

/** Runs `kconnect uninstall`. */
export async function runUninstall(
  opts: UninstallCliOptions,
  progress: Progress = consoleProgress,
): Promise<void> {
  const client = await clientFor(opts, progress);
  const r = await uninstallTrafficManager({ client, namespace: opts.managerNamespace, progress });
  if (r.deleted.length === 0) {
    printLine(
      `nothing to uninstall: no traffic manager installed by kconnect in namespace "${opts.managerNamespace}"`,
    );
    return;
  }
  printLine(
    `uninstalled: deleted ${r.deleted.length} object${r.deleted.length === 1 ? "" : "s"}` +
      (r.keptNamespace ? `; namespace "${r.keptNamespace}" kept (it existed before)` : ""),
  );
}

/** Registers `kconnect install`. */
export function registerInstall(program: Command): void {
  program
    .command("install")
    .description(
      "install (or upgrade) the traffic manager in the cluster of the current kube context",
    )
    .option("--kubeconfig <path>", "kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kube context to use (default: the current context)")
    .option("--manager-namespace <ns>", "namespace to install into", MANAGER_NAMESPACE)
    .option("--image <image>", `container image (default: denoland/deno:${Deno.version.deno})`)
    .option("--timeout <seconds>", "how long to wait for the manager's pod", "180")
    .action((opts: InstallCliOptions) => runInstall(opts));
}

/** Registers `kconnect uninstall`. */
export function registerUninstall(program: Command): void {
  program
    .command("uninstall")
    .description("remove the traffic manager and everything kconnect install created")
    .option("--kubeconfig <path>", "kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kube context to use (default: the current context)")
    .option("--manager-namespace <ns>", "namespace it was installed into", MANAGER_NAMESPACE)
    .action((opts: UninstallCliOptions) => runUninstall(opts));
}
