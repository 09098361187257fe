/**
 * The traffic manager's own entry point: what runs in the cluster, bundled into one JavaScript
 * file (`deno bundle`, see `src/install/bundle.ts`) that `kconnect install` puts in a ConfigMap.
 * It builds its program on the command-line frame both programs share (`src/cmdline/`: global
 * options, errors and exit statuses) with only `traffic-manager` (`command.ts`, with the
 * manager's budget and `--deny` flags from `flags.ts`), so the bundle holds none of the client's
 * commands and not `@kubernetes/client-node` (in-cluster access reads the service account files
 * itself).
 *
 * The Deployment runs it with only the permissions it needs (see `managerCommand()` in
 * `src/install/manifests.ts`):
 *
 * ```sh
 * deno run --allow-net --allow-read=/kconnect,/etc/resolv.conf,/var/run/secrets/kubernetes.io/serviceaccount \
 *   --allow-env=KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,… --no-prompt \
 *   /kconnect/manager.js traffic-manager --listen 127.0.0.1:8081
 * ```
 *
 * @module
 */
import { createProgram, runProgram } from "../cmdline/program.ts";
import { registerTrafficManager } from "./command.ts";

/** Runs the manager's command line (`traffic-manager …`) and returns the exit status. */
export function managerMain(args: string[]): Promise<number> {
  const program = createProgram();
  registerTrafficManager(program);
  return runProgram(program, args);
}

if (import.meta.main) {
  Deno.exit(await managerMain(Deno.args));
}
