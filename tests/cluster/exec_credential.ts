/**
 * A client-go exec credential plugin for the test kubeconfig's `exec` user: prints an
 * `ExecCredential` with the token from `$KCONNECT_TEST_EXEC_TOKEN`, in the API version the
 * caller asked for in `$KUBERNETES_EXEC_INFO` (default `client.authentication.k8s.io/v1`).
 * Exits 1 with a message on stderr when the token is not set.
 *
 * ```sh
 * KCONNECT_TEST_EXEC_TOKEN=abc deno run --allow-env tests/cluster/exec_credential.ts
 * ```
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a credential plugin speaks on stdout/stderr

/** Builds the ExecCredential JSON for `token`. */
export function execCredential(token: string, execInfo?: string): Record<string, unknown> {
  let apiVersion = "client.authentication.k8s.io/v1";
  try {
    const info = JSON.parse(execInfo ?? "{}");
    if (typeof info.apiVersion === "string") apiVersion = info.apiVersion;
  } catch {
    // not JSON: keep the default
  }
  const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
  return {
    kind: "ExecCredential",
    apiVersion,
    spec: { interactive: false },
    status: { expirationTimestamp: expires, token },
  };
}

if (import.meta.main) {
  const token = Deno.env.get("KCONNECT_TEST_EXEC_TOKEN");
  if (!token) {
    console.error("exec_credential: KCONNECT_TEST_EXEC_TOKEN is not set");
    Deno.exit(1);
  }
  console.log(JSON.stringify(execCredential(token, Deno.env.get("KUBERNETES_EXEC_INFO"))));
}
