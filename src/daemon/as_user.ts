/**
 * Running `kconnect credentials` as the user who asked to connect.
 *
 * The daemon (root) starts `setpriv --reuid=<uid> --regid=<gid> --init-groups|--clear-groups
 * --inh-caps=-all --no-new-privs -- <kconnect> credentials --json --env-stdin …` with an
 * environment of its own making (PATH, HOME, and for a source checkout DENO_DIR): nothing the
 * user sent reaches a process while it is still root, so variables like LD_PRELOAD cannot run
 * code as root. The user's environment travels on stdin as JSON and is applied by the
 * credentials command after the switch, so exec plugins see the user's KUBECONFIG, PATH, cloud
 * profile variables and so on.
 *
 * Supplementary groups: `--init-groups` from the user database when the uid has a passwd
 * entry, none otherwise. The client's claimed groups are never used (they cannot be proven).
 *
 * @module
 */
import { type CredentialMaterial, parseMaterial } from "../k8s/material.ts";
import { selfCommand } from "./self.ts";

/** Who to run as. */
export interface RunAs {
  uid: number;
  gid: number;
  /** The user's environment (applied after the switch). */
  env: Record<string, string>;
  /** Working directory; `/` when it does not exist. */
  cwd: string;
}

/** Whether `uid` has an entry in /etc/passwd (then `--init-groups` works). */
async function hasPasswdEntry(uid: number): Promise<boolean> {
  const out = await new Deno.Command("getent", {
    args: ["passwd", String(uid)],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => null);
  return out?.success ?? false;
}

/** Options of {@linkcode fetchMaterialAs}. */
export interface FetchOptions {
  kubeconfig: string | null;
  context: string | null;
  /** Milliseconds before the command is killed. Default 60 s (exec plugins can be slow). */
  timeoutMs?: number;
}

/**
 * Runs `kconnect credentials --json` as `who` and returns what it printed.
 *
 * @throws {Error} with the command's stderr when it fails.
 */
export async function fetchMaterialAs(who: RunAs, o: FetchOptions): Promise<CredentialMaterial> {
  const groups = await hasPasswdEntry(who.uid) ? "--init-groups" : "--clear-groups";
  const args = [
    `--reuid=${who.uid}`,
    `--regid=${who.gid}`,
    groups,
    "--inh-caps=-all",
    "--no-new-privs",
    "--",
    ...selfCommand(),
    "credentials",
    "--json",
    "--env-stdin",
    ...(o.kubeconfig ? ["--kubeconfig", o.kubeconfig] : []),
    ...(o.context ? ["--context", o.context] : []),
  ];
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: who.env.HOME ?? "/",
    DENO_NO_UPDATE_CHECK: "1",
  };
  if (who.env.DENO_DIR) env.DENO_DIR = who.env.DENO_DIR;
  let cwd = who.cwd;
  try {
    if (!(await Deno.stat(cwd)).isDirectory) cwd = "/";
  } catch {
    cwd = "/";
  }
  const child = new Deno.Command("setpriv", {
    args,
    env,
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(who.env))).catch(() => {});
  await w.close().catch(() => {});
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    const why = stderr.replace(/^kconnect: /gm, "") ||
      `exit status ${out.code}${out.signal ? ` (${out.signal})` : ""}`;
    throw new Error(`Cannot get credentials as uid ${who.uid}: ${why}`);
  }
  const last = stdout.split("\n").pop() ?? "";
  return parseMaterial(last);
}
