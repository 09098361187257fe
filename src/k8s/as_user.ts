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
 * The child starts in `/`: root never changes into, or even looks at, a directory the client
 * named (a relative lookup from there needs search permission on that directory only, not on
 * its parents, so a root `chdir` would open directories the user cannot reach). The client's
 * working directory goes to the child as `--cwd` and the child enters it after the switch, as the
 * user, or stays in `/` when the user may not. What the child prints is read up to
 * {@linkcode MAX_CHILD_OUTPUT} bytes per stream; more kills it.
 *
 * The same path serves `sudo kconnect up`: a root process that has the `SUDO_UID` of the user
 * who ran sudo gets that user's credentials this way ({@linkcode sudoRunAs}), so the user's
 * exec plugins and token files are never run or read as root.
 *
 * @module
 */
import { type CredentialMaterial, parseMaterial } from "./material.ts";
import { sudoUid } from "../host/sudo.ts";
import { runningFromSource, selfCommand } from "../host/self.ts";

/** Who to run as. */
export interface RunAs {
  uid: number;
  gid: number;
  /** The user's environment (applied after the switch). */
  env: Record<string, string>;
  /** Working directory, entered by the child as the user; `/` when it cannot be. */
  cwd: string;
}

/** The most a credentials child may print on stdout or on stderr: 1 MiB. */
export const MAX_CHILD_OUTPUT = 1 << 20;

/** The user database entry of `uid` (`getent passwd`): name and home; null when none. */
export async function passwdEntry(uid: number): Promise<{ name: string; home: string } | null> {
  const out = await new Deno.Command("getent", {
    args: ["passwd", String(uid)],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  if (!out?.success) return null;
  const f = new TextDecoder().decode(out.stdout).trim().split(":");
  return f.length >= 6 ? { name: f[0], home: f[5] } : null;
}

/**
 * Who a root process should get credentials as: the user who ran sudo (`SUDO_UID`, `SUDO_GID`
 * of `env`, the root process's own environment or the environment a root client sent), with
 * that user's HOME, USER and LOGNAME; null when `env` has no non-root `SUDO_UID` (root's own
 * credentials are loaded by root).
 *
 * @example
 * ```ts ignore
 * import { sudoRunAs } from "./as_user.ts";
 * await sudoRunAs({ SUDO_UID: "1000", SUDO_GID: "1000" }, "/home/me"); // { uid: 1000, … }
 * ```
 */
export async function sudoRunAs(
  env: Record<string, string>,
  cwd: string,
): Promise<RunAs | null> {
  const uid = sudoUid(env);
  if (uid === null) return null;
  const g = env.SUDO_GID;
  const entry = await passwdEntry(uid);
  const gid = g !== undefined && /^\d{1,10}$/.test(g) ? Number(g) : uid;
  const user = entry?.name ?? env.SUDO_USER;
  const userEnv: Record<string, string> = { ...env };
  if (entry) userEnv.HOME = entry.home;
  if (user) {
    userEnv.USER = user;
    userEnv.LOGNAME = user;
  }
  return { uid, gid, env: userEnv, cwd };
}

/** Whether `uid` has an entry in the user database (then `--init-groups` works). */
async function hasPasswdEntry(uid: number): Promise<boolean> {
  return (await passwdEntry(uid)) !== null;
}

/** Options of {@linkcode fetchMaterialAs}. */
export interface FetchOptions {
  kubeconfig: string | null;
  context: string | null;
  /** Milliseconds before the command is killed. Default 60 s (exec plugins can be slow). */
  timeoutMs?: number;
}

/** Reads `stream` to its end, keeping at most `cap` bytes; calls `over` once past it. */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  over: () => void,
): Promise<{ text: string; over: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let exceeded = false;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (size + value.length > cap) {
        chunks.push(value.subarray(0, cap - size));
        size = cap;
        exceeded = true;
        over();
        await reader.cancel().catch(() => {});
        break;
      }
      chunks.push(value);
      size += value.length;
    }
  } catch { /* the child went away */ }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return { text: new TextDecoder().decode(all), over: exceeded };
}

/**
 * Runs `kconnect credentials --json` as `who` and returns what it printed.
 *
 * @throws {Error} with the command's stderr when it fails.
 */
export async function fetchMaterialAs(who: RunAs, o: FetchOptions): Promise<CredentialMaterial> {
  const groups = await hasPasswdEntry(who.uid) ? "--init-groups" : "--clear-groups";
  const cwd = who.cwd.startsWith("/") && !who.cwd.includes("\0") ? who.cwd : "/";
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
    "--cwd",
    cwd,
    ...(o.kubeconfig ? ["--kubeconfig", o.kubeconfig] : []),
    ...(o.context ? ["--context", o.context] : []),
  ];
  const home = who.env.HOME ?? "/";
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: home,
    DENO_NO_UPDATE_CHECK: "1",
  };
  if (who.env.DENO_DIR) env.DENO_DIR = who.env.DENO_DIR;
  else if (runningFromSource()) env.DENO_DIR = `${home}/.cache/deno`;
  const child = new Deno.Command("setpriv", {
    args,
    env,
    clearEnv: true,
    // Never the client's directory: the child enters it itself, as the user (see --cwd).
    cwd: "/",
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(who.env))).catch(() => {});
  await w.close().catch(() => {});
  const [out, err, status] = await Promise.all([
    readCapped(child.stdout, MAX_CHILD_OUTPUT, kill),
    readCapped(child.stderr, MAX_CHILD_OUTPUT, kill),
    child.status,
  ]);
  if (out.over || err.over) {
    throw new Error(
      `Cannot get credentials as uid ${who.uid}: kconnect credentials printed more than ${
        MAX_CHILD_OUTPUT >> 20
      } MiB and was stopped`,
    );
  }
  const stdout = out.text.trim();
  const stderr = err.text.trim();
  if (!status.success) {
    const why = stderr.replace(/^kconnect: /gm, "") ||
      `exit status ${status.code}${status.signal ? ` (${status.signal})` : ""}`;
    // Fetched as this process's own user, the child's error is simply the error.
    throw new Error(
      who.uid === Deno.uid() ? why : `Cannot get credentials as uid ${who.uid}: ${why}`,
    );
  }
  const last = stdout.split("\n").pop() ?? "";
  return parseMaterial(last);
}
