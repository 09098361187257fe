/**
 * Kubeconfig files (YAML) for the laptop: one cluster, and users and contexts for each way of
 * logging in that the tests need.
 *
 * | context     | user                                                  |
 * | ----------- | ----------------------------------------------------- |
 * | `test`      | bearer token (namespace `default`)                    |
 * | `bad-token` | a token the API server does not know (401)            |
 * | `cert`      | client certificate signed by the test CA              |
 * | `exec`      | exec credential plugin (`exec_credential.ts`)         |
 * | `viewer`    | bearer token of a user who may only get, list, watch  |
 *
 * @example
 * ```ts
 * import { kubeconfigYaml } from "./kubeconfig.ts";
 * const yaml = kubeconfigYaml({
 *   server: "https://100.64.0.1:6443", caPem: "CA", token: "t", clientCertPem: "C",
 *   clientKeyPem: "K", execCommand: ["deno", "run", "x.ts"], execToken: "e",
 * });
 * if (!yaml.includes("current-context: test")) throw new Error();
 * ```
 *
 * @module
 */

/** Contexts in the kubeconfig. */
export type KubeContext = "test" | "bad-token" | "cert" | "exec" | "viewer";

/** What goes into the kubeconfig. */
export interface KubeconfigOptions {
  server: string;
  caPem: string;
  /** Token of the `test` user. */
  token: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** Command and arguments of the exec plugin. */
  execCommand: string[];
  /** Token the exec plugin returns. */
  execToken: string;
  /** Token of the read-only `viewer` user. Default: a token the server does not know. */
  viewerToken?: string;
  /** Current context. Default `test`. */
  currentContext?: KubeContext;
  /** Namespace of every context. Default `default`. */
  namespace?: string;
}

const b64 = (s: string) => btoa(s);
const q = (s: string) => JSON.stringify(s);

/** Renders the kubeconfig as YAML. */
export function kubeconfigYaml(o: KubeconfigOptions): string {
  const ns = o.namespace ?? "default";
  const [cmd, ...args] = o.execCommand;
  const context = (name: KubeContext, user: string) =>
    [
      `- name: ${name}`,
      `  context:`,
      `    cluster: kconnect-test`,
      `    user: ${user}`,
      `    namespace: ${ns}`,
    ].join("\n");
  return [
    "apiVersion: v1",
    "kind: Config",
    "preferences: {}",
    "clusters:",
    "- name: kconnect-test",
    "  cluster:",
    `    server: ${o.server}`,
    `    certificate-authority-data: ${b64(o.caPem)}`,
    "users:",
    "- name: test-admin",
    "  user:",
    `    token: ${q(o.token)}`,
    "- name: bad-token",
    "  user:",
    `    token: ${q("not-a-valid-token-" + o.token.slice(0, 4))}`,
    "- name: cert-user",
    "  user:",
    `    client-certificate-data: ${b64(o.clientCertPem)}`,
    `    client-key-data: ${b64(o.clientKeyPem)}`,
    "- name: exec-user",
    "  user:",
    "    exec:",
    "      apiVersion: client.authentication.k8s.io/v1",
    `      command: ${q(cmd)}`,
    "      args:",
    ...args.map((a) => `      - ${q(a)}`),
    "      env:",
    "      - name: KCONNECT_TEST_EXEC_TOKEN",
    `        value: ${q(o.execToken)}`,
    "      interactiveMode: Never",
    "      provideClusterInfo: false",
    "- name: viewer",
    "  user:",
    `    token: ${q(o.viewerToken ?? "no-viewer-token")}`,
    "contexts:",
    context("test", "test-admin"),
    context("bad-token", "bad-token"),
    context("cert", "cert-user"),
    context("exec", "exec-user"),
    context("viewer", "viewer"),
    `current-context: ${o.currentContext ?? "test"}`,
    "",
  ].join("\n");
}
