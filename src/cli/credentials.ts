/**
 * `kconnect credentials --json` (internal, hidden from help): loads the kubeconfig as the user
 * who runs it — token files, certificates, exec plugins and all — and prints the resolved
 * {@linkcode CredentialMaterial} as one JSON line. The daemon runs it as the user who asked to
 * connect (see `src/k8s/as_user.ts`), so the daemon never reads a user's kubeconfig or runs a
 * user's exec plugin as root.
 *
 * With `--env-stdin` the process first replaces its environment with the JSON object read from
 * stdin: that is how the daemon hands over the user's environment (which exec plugins need)
 * without putting it on a command line or into the environment of anything running as root.
 * With `--cwd DIR` it then changes into the user's working directory — here, as the user, so
 * only a directory the user may enter works; otherwise it stays in `/`. The daemon starts it in
 * `/` and never enters a client's directory as root.
 *
 * @module
 */
import type { Command } from "commander";
import { readKubeconfig, resolveCredentials } from "../k8s/access.ts";
import { printLine } from "../cmdline/output.ts";
import { UsageError } from "../cmdline/program.ts";

interface CredentialsOptions {
  json?: boolean;
  kubeconfig?: string;
  context?: string;
  envStdin?: boolean;
  cwd?: string;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

/** Replaces this process's environment with `env`. */
function replaceEnv(env: Record<string, string>): void {
  for (const k of Object.keys(Deno.env.toObject())) Deno.env.delete(k);
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
}

/** Runs `kconnect credentials`. */
export async function runCredentials(opts: CredentialsOptions): Promise<void> {
  if (!opts.json) throw new UsageError("kconnect credentials prints JSON only: pass --json");
  if (opts.envStdin) {
    const text = await readAll(Deno.stdin.readable);
    let env: unknown;
    try {
      env = JSON.parse(text);
    } catch {
      throw new Error("kconnect credentials --env-stdin: stdin is not a JSON object");
    }
    if (typeof env !== "object" || env === null || Array.isArray(env)) {
      throw new Error("kconnect credentials --env-stdin: stdin is not a JSON object");
    }
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) {
      if (typeof v === "string" && /^[^=\0]+$/.test(k) && !v.includes("\0")) clean[k] = v;
    }
    replaceEnv(clean);
  }
  if (opts.cwd !== undefined) {
    try {
      Deno.chdir(opts.cwd);
    } catch {
      Deno.chdir("/"); // a directory this user may not enter: exec plugins run from / instead
    }
  }
  const { kc, source } = await readKubeconfig({
    kubeconfig: opts.kubeconfig,
    context: opts.context,
  });
  printLine(JSON.stringify(await resolveCredentials(kc, source)));
}

/** Registers the hidden `kconnect credentials` command. */
export function registerCredentials(program: Command): void {
  program
    .command("credentials", { hidden: true })
    .description("print the current user's resolved cluster credentials (internal)")
    .option("--json", "print JSON (required)")
    .option("--kubeconfig <path>", "kubeconfig file(s) (default: KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kube context (default: the current context)")
    .option("--env-stdin", "replace the environment with a JSON object read from stdin")
    .option("--cwd <dir>", "change into this directory first (or / when it cannot be entered)")
    .action((opts: CredentialsOptions) => runCredentials(opts));
}
