/**
 * Running `kconnect up --foreground` in a test namespace: start it, wait for `ready`, stop it
 * with a signal; and running the daemon and one-shot commands (`up` through the daemon,
 * `status`, `down`) with a private socket, state directory and log file.
 *
 * @module
 */
import { LineWatcher } from "./_lines.ts";
import { type ExecResult, type Netns, STALE_STATE_ROOT } from "./_netns.ts";
import { KCONNECT_RUN, ROOT } from "./_dataplane.ts";

/** A running (or finished) `kconnect up`. */
export interface UpProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  out: LineWatcher;
  err: LineWatcher;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Where a test's `kconnect up` in `ns` keeps its journal: one directory per namespace. */
export function testStateDir(ns: Netns): string {
  return `${STALE_STATE_ROOT}/${ns.name}`;
}

/** Removes a namespace's state directory, and the parent once it is empty. */
export async function removeTestStateDir(ns: Netns): Promise<void> {
  await Deno.remove(testStateDir(ns), { recursive: true }).catch(() => {});
  await Deno.remove(STALE_STATE_ROOT).catch(() => {}); // fails while others use it
}

/**
 * Starts `kconnect up --foreground` with `args` in `ns` without waiting. Unless `args` say otherwise it uses
 * the namespace's own state directory and leaves DNS alone (`--dns off`): a test that configures
 * DNS must give its namespace its own resolv.conf first.
 */
export function spawnUp(ns: Netns, args: string[], via: Spawner = ns): UpProcess {
  const extra = [
    ...(args.includes("--state-dir") ? [] : ["--state-dir", testStateDir(ns)]),
    ...(args.includes("--dns") ? [] : ["--dns", "off"]),
  ];
  const child = via.spawn([
    ...KCONNECT_RUN,
    "-A",
    `${ROOT}main.ts`,
    "up",
    "--foreground",
    ...args,
    ...extra,
  ], {
    stdout: "piped",
    stderr: "piped",
  });
  const out = new LineWatcher(child.stdout), err = new LineWatcher(child.stderr);
  let stopped: Promise<number> | null = null;
  const up: UpProcess = {
    child,
    out,
    err,
    stop(signal: Deno.Signal = "SIGTERM") {
      stopped ??= (async () => {
        try {
          child.kill(signal);
        } catch { /* exited already */ }
        const st = await child.status;
        await Promise.all([out.done, err.done]);
        return st.code;
      })();
      return stopped;
    },
    async [Symbol.asyncDispose]() {
      await up.stop();
      await removeTestStateDir(ns);
    },
  };
  return up;
}

/** Something that runs commands in the namespace (the Netns itself, or an environment in it). */
export interface Spawner {
  spawn(cmd: string[], options: { stdout: "piped"; stderr: "piped" }): Deno.ChildProcess;
}

/** Starts `kconnect up` and waits until it is ready; throws with its output if it is not. */
export async function startUp(ns: Netns, args: string[], via: Spawner = ns): Promise<UpProcess> {
  const up = spawnUp(ns, args, via);
  try {
    await up.out.waitFor(/^ready/, 45_000);
  } catch (err) {
    await up.stop();
    throw new Error(`kconnect up did not get ready: ${(err as Error).message}\n${up.err.text()}`);
  }
  return up;
}

/** Runs `kconnect up` expecting it to fail; returns its exit status and stderr. */
export async function failUp(
  ns: Netns,
  args: string[],
  via: Spawner = ns,
): Promise<{ code: number; stderr: string }> {
  const up = spawnUp(ns, args, via);
  const ready = up.out.waitFor(/^ready/, 45_000).then(() => true, () => false);
  const never = new Promise<null>(() => {});
  const st = await Promise.race([up.child.status, ready.then((ok) => ok ? null : never)]);
  if (st === null) {
    await up.stop();
    throw new Error(`kconnect up got ready but was expected to fail:\n${up.out.text()}`);
  }
  await Promise.all([up.out.done, up.err.done]);
  await removeTestStateDir(ns);
  return { code: st.code, stderr: up.err.text() };
}

/** A private socket, state directory and log file for a test's daemon. */
export interface DaemonPaths extends AsyncDisposable {
  /** Scratch directory holding them (mode 0755, removed on dispose). */
  dir: string;
  socket: string;
  stateDir: string;
  logFile: string;
  /** The environment that points kconnect at them. */
  env: Record<string, string>;
}

/** Makes {@linkcode DaemonPaths} in a fresh temporary directory. */
export async function daemonPaths(): Promise<DaemonPaths> {
  const dir = await Deno.makeTempDir({ prefix: "kc-daemon-" });
  await Deno.chmod(dir, 0o755);
  const socket = `${dir}/run/kconnect.sock`;
  const stateDir = `${dir}/state`;
  const logFile = `${dir}/log/daemon.log`;
  return {
    dir,
    socket,
    stateDir,
    logFile,
    env: { KCONNECT_SOCKET: socket, KCONNECT_STATE_DIR: stateDir, KCONNECT_LOG_FILE: logFile },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A non-root identity to run kconnect as: numeric ids, no passwd entry needed. */
export interface TestUser {
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: number[];
  /** Its HOME (readable and writable by it). */
  home: string;
  /** A copy of root's Deno cache it owns (a non-root deno needs a DENO_DIR it can use). */
  denoDir: string;
}

/**
 * Makes a {@linkcode TestUser} with a home and Deno cache under `dir` (which it must be able to
 * traverse). Nothing is added to /etc/passwd or /etc/group.
 */
export async function makeTestUser(
  dir: string,
  uid: number,
  groups: number[] = [],
): Promise<TestUser> {
  const home = `${dir}/home-${uid}`;
  const denoDir = `${home}/.cache/deno`;
  await Deno.mkdir(`${home}/.cache`, { recursive: true });
  const src = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
  const cp = await new Deno.Command("cp", { args: ["-a", src, denoDir] }).output();
  // A deno running meanwhile may checkpoint its SQLite caches: their -wal and -shm files can
  // vanish between cp's listing and its copy, which leaves a usable cache.
  const errors = new TextDecoder().decode(cp.stderr).split("\n")
    .filter((l) => l !== "" && !/cannot stat '.*-(wal|shm)': No such file or directory/.test(l));
  if (!cp.success && errors.length > 0) throw new Error(`cp -a ${src}: ${errors.join("\n")}`);
  const ch = await new Deno.Command("chown", { args: ["-R", `${uid}:${uid}`, home] }).output();
  if (!ch.success) throw new Error(`chown ${home}: ${new TextDecoder().decode(ch.stderr)}`);
  return { uid, gid: uid, groups, home, denoDir };
}

/**
 * What sudo puts in the environment of `sudo kconnect …` run by `user`, over `base`: the SUDO_*
 * variables, and (as with `sudo -E`) the user's HOME and the Deno cache its `kconnect credentials`
 * needs when run from source.
 */
export function sudoEnvOf(user: TestUser, base: Record<string, string>): Record<string, string> {
  return {
    ...base,
    SUDO_UID: String(user.uid),
    SUDO_GID: String(user.gid),
    SUDO_USER: `user${user.uid}`,
    HOME: user.home,
    DENO_DIR: user.denoDir,
  };
}

/** Options of {@linkcode kconnect}. */
export interface KconnectOptions {
  /** Extra environment. */
  env?: Record<string, string>;
  /** Run as this user (through setpriv) instead of root. */
  as?: TestUser;
  /** Kill it after this many ms. Default 60 s. */
  timeoutMs?: number;
}

/** Runs one kconnect command (`up`, `status`, `down`, …) in `ns` to completion. */
export function kconnect(
  ns: Netns,
  args: string[],
  o: KconnectOptions = {},
): Promise<ExecResult> {
  const main = [...KCONNECT_RUN, "-A", `${ROOT}main.ts`, ...args];
  const u = o.as;
  const cmd = u
    ? [
      "setpriv",
      `--reuid=${u.uid}`,
      `--regid=${u.gid}`,
      u.groups.length ? `--groups=${u.groups.join(",")}` : "--clear-groups",
      "--inh-caps=-all",
      ...main,
    ]
    : main;
  const env = {
    DENO_NO_UPDATE_CHECK: "1",
    ...(u ? { HOME: u.home, DENO_DIR: u.denoDir, USER: `user${u.uid}` } : {}),
    ...o.env,
  };
  return ns.exec(cmd, {
    env,
    check: false,
    cwd: u?.home,
    signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
  });
}
