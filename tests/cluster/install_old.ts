/**
 * Installs an "older" traffic manager, for upgrade tests: this client's bundle with its
 * version string replaced (so the manager reports that version in its cluster info) and the
 * objects labelled with it, as an older `kconnect install` would have left them.
 *
 * ```sh
 * deno run -A tests/cluster/install_old.ts --kubeconfig <file> --version 0.0.9
 * ```
 *
 * Run it where the API server is reachable (the laptop namespace).
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a standalone program: its output is its interface
import { consoleProgress } from "../../src/cli/progress.ts";
import { managerBundle } from "../../src/install/bundle.ts";
import { installTrafficManager } from "../../src/install/install.ts";
import { sha256Hex } from "../../src/io/bytes.ts";
import { loadKubeconfig } from "../../src/k8s/access.ts";
import { KubeClient } from "../../src/k8s/client.ts";
import { VERSION } from "../../src/version.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const version = arg("--version") ?? "0.0.9";
const access = await loadKubeconfig({ kubeconfig: arg("--kubeconfig") });
const fresh = await managerBundle();
const marker = `version:"${VERSION}"`;
if (!fresh.code.includes(marker)) {
  console.error(`the bundle does not hold ${marker}: cannot make an older version of it`);
  Deno.exit(1);
}
const code = fresh.code.replace(marker, `version:"${version}"`);
const r = await installTrafficManager({
  client: new KubeClient(access),
  namespace: arg("--manager-namespace") ?? "kconnect",
  progress: consoleProgress,
  version,
  bundle: { code, sha256: await sha256Hex(code), source: `patched to ${version}` },
});
console.log(`installed: traffic manager ${version} (pod ${r.pod.name})`);
