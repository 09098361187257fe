/**
 * Runs `up`'s traffic-manager hook (`ensureTrafficManager`) alone, for tests of the options `up`
 * will pass (`--install`, `--no-upgrade`) before its command line has them:
 *
 * ```sh
 * deno run -A tests/cluster/ensure_manager.ts --kubeconfig <file> [--install] [--no-upgrade]
 * ```
 *
 * Prints the progress, then `manager: <namespace>/<pod> <version>`.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a standalone program: its output is its interface
import { consoleProgress } from "../../src/cli/progress.ts";
import { ensureTrafficManager } from "../../src/install/ensure.ts";
import { loadKubeconfig } from "../../src/k8s/access.ts";
import { KubeClient } from "../../src/k8s/client.ts";

const i = Deno.args.indexOf("--kubeconfig");
const access = await loadKubeconfig({ kubeconfig: i >= 0 ? Deno.args[i + 1] : undefined });
try {
  const pod = await ensureTrafficManager({
    client: new KubeClient(access),
    namespace: "kconnect",
    progress: consoleProgress,
    install: Deno.args.includes("--install"),
    upgrade: !Deno.args.includes("--no-upgrade"),
    confirm: () => Promise.resolve(false),
  });
  console.log(`manager: ${pod.namespace}/${pod.name} ${pod.version}`);
} catch (err) {
  console.error(`error: ${(err as Error).message}`);
  Deno.exit(1);
}
