/**
 * Running `kconnect up` in a test namespace: start it, wait for `ready`, stop it with a signal.
 *
 * @module
 */
import { LineWatcher } from "./_lines.ts";
import type { Netns } from "./_netns.ts";
import { DENO, ROOT } from "./_dataplane.ts";

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
  return `/tmp/kconnect-test-state/${ns.name}`;
}

/**
 * Starts `kconnect up` with `args` in `ns` without waiting. Unless `args` say otherwise it uses
 * the namespace's own state directory and leaves DNS alone (`--dns off`): a test that configures
 * DNS must give its namespace its own resolv.conf first.
 */
export function spawnUp(ns: Netns, args: string[], via: Spawner = ns): UpProcess {
  const extra = [
    ...(args.includes("--state-dir") ? [] : ["--state-dir", testStateDir(ns)]),
    ...(args.includes("--dns") ? [] : ["--dns", "off"]),
  ];
  const child = via.spawn([DENO, "run", "-A", `${ROOT}main.ts`, "up", ...args, ...extra], {
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
      await Deno.remove(testStateDir(ns), { recursive: true }).catch(() => {});
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
  await Deno.remove(testStateDir(ns), { recursive: true }).catch(() => {});
  return { code: st.code, stderr: up.err.text() };
}
