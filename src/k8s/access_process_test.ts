import assert from "node:assert/strict";
import { loadKubeconfig } from "./access.ts";

/**
 * A kubeconfig whose exec plugin writes the command line of the process that ran it to
 * `parentFile` and hands out token `t0k3n`.
 */
function kubeconfig(dir: string, parentFile: string): string {
  const script = `cat /proc/$PPID/cmdline > ${parentFile}; ` +
    `echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",` +
    `"status":{"token":"t0k3n"}}'`;
  const path = `${dir}/kubeconfig`;
  Deno.writeTextFileSync(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: c",
      "  cluster:",
      "    server: https://127.0.0.1:6443",
      "contexts:",
      "- name: x",
      "  context: {cluster: c, user: u, namespace: default}",
      "current-context: x",
      "users:",
      "- name: u",
      "  user:",
      "    exec:",
      "      apiVersion: client.authentication.k8s.io/v1",
      "      command: sh",
      `      args: ["-c", ${JSON.stringify(script)}]`,
      "      interactiveMode: Never",
    ].join("\n") + "\n",
  );
  return path;
}

Deno.test({
  name:
    "loadKubeconfig({ outOfProcess }) as root reads the kubeconfig in a `kconnect credentials` child, not in this process",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = Deno.makeTempDirSync();
    try {
      const parentFile = `${dir}/parent`;
      const path = kubeconfig(dir, parentFile);
      const env = Deno.env.toObject();
      delete env.SUDO_UID;
      const access = await loadKubeconfig({ kubeconfig: path, env, outOfProcess: true });
      assert.equal((await access.headers()).Authorization, "Bearer t0k3n");
      assert.equal(access.credentialsUid, undefined, "not someone else's credentials");
      const parent = Deno.readTextFileSync(parentFile).replaceAll("\0", " ");
      assert.match(parent, / credentials --json /, `the exec plugin's parent was: ${parent}`);
      access.httpClient.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
