/**
 * The data-path test host: a network namespace with local workloads on loopback and
 * `kconnect forward` routing 10.96.0.0/12 and fd00:96::/64 into its TUN, mapped onto
 * 127.0.0.0/8 and ::1. A program in the namespace that connects to 10.96.0.1:8080 goes through
 * the TUN, the flow engine and the direct dialer to 127.0.0.1:8080.
 *
 * @module
 */
import { sourceRunFlags } from "../src/host/self.ts";
import { LineWatcher } from "./_lines.ts";
import { Netns } from "./_netns.ts";
import { CLIENT_V8_FLAGS, v8FlagsArg } from "../src/v8_flags.ts";

/** Root of the repository. */
export const ROOT = new URL("../", import.meta.url).pathname;
/** The deno binary running the tests. */
export const DENO = Deno.execPath();
/**
 * `deno run` of this checkout's code, offline: its deno.json and lock, nothing fetched (a child
 * in a network namespace has no route to the registry). Every deno the tests start uses it.
 */
export const DENO_RUN: readonly string[] = [DENO, "run", ...sourceRunFlags()];

/**
 * `deno run` for kconnect itself on the laptop side (`up`, `forward`, `status`, …): with the V8
 * flags its binary is compiled with, so tests and benchmarks run it as users do.
 */
export const KCONNECT_RUN: readonly string[] = [...DENO_RUN, v8FlagsArg(CLIENT_V8_FLAGS)];

/** A running `kconnect forward`. */
export interface Forward {
  child: Deno.ChildProcess;
  out: LineWatcher;
  err: LineWatcher;
  /** Name of its TUN device. */
  tun: string;
}

/** The namespace, its workloads, and kconnect. */
export interface DataplaneHost extends AsyncDisposable {
  ns: Netns;
  forward: Forward;
  /** Runs a workload or client in the namespace; tracked and killed on dispose. */
  spawn(cmd: string[]): { child: Deno.ChildProcess; out: LineWatcher; err: LineWatcher };
  /** Starts a netprobe server and waits until it listens. */
  probeServer(mode: string, port: number, extra?: string[]): Promise<LineWatcher>;
  /** Runs a netprobe client to completion. */
  probe(args: string[]): Promise<{ code: number; json: Record<string, unknown>; stderr: string }>;
  /** Waits until something in the namespace listens on `port`. */
  waitForPort(port: number, proto?: "tcp" | "udp"): Promise<void>;
  /** Stops kconnect with SIGTERM and returns its exit status. */
  stopForward(): Promise<number>;
}

const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;

/** Creates the host; `await using` it so everything is torn down. */
export async function dataplaneHost(
  prefix: string,
  forwardArgs: string[] = [],
): Promise<DataplaneHost> {
  const ns = await Netns.create(prefix);
  try {
    const spawn = (cmd: string[]) => {
      const child = ns.spawn(cmd, { stdout: "piped", stderr: "piped" });
      return { child, out: new LineWatcher(child.stdout), err: new LineWatcher(child.stderr) };
    };
    const fw = spawn([
      ...KCONNECT_RUN,
      "-A",
      `${ROOT}main.ts`,
      "forward",
      "--route",
      "10.96.0.0/12",
      "--route",
      "fd00:96::/64",
      "--map",
      "10.96.0.0/12=127.0.0.0/8",
      "--map",
      "fd00:96::/64=::1",
      "--tun-name",
      "kc0",
      ...forwardArgs,
    ]);
    try {
      await fw.out.waitFor(/^ready$/);
    } catch (err) {
      throw new Error(
        `kconnect forward did not start: ${(err as Error).message}\n${fw.err.text()}`,
      );
    }
    const forward: Forward = { ...fw, tun: "kc0" };
    let stopped: Promise<number> | null = null;
    const host: DataplaneHost = {
      ns,
      forward,
      spawn,
      async probeServer(mode, port, extra = []) {
        const s = spawn([
          ...DENO_RUN,
          "-A",
          "--unstable-net",
          NETPROBE,
          mode,
          `port=${port}`,
          ...extra,
        ]);
        await s.out.waitFor(/^listening$/);
        return s.out;
      },
      async waitForPort(port, proto = "tcp") {
        for (let i = 0; i < 100; i++) {
          const r = await ns.exec([
            "ss",
            "-Hln",
            proto === "tcp" ? "-t" : "-u",
            `sport = :${port}`,
          ]);
          if (r.stdout.trim() !== "") return;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error(`nothing listens on ${proto} port ${port} after 10 s`);
      },
      async probe(args) {
        const r = await ns.exec([...DENO_RUN, "-A", "--unstable-net", NETPROBE, ...args], {
          check: false,
        });
        const last = r.stdout.trim().split("\n").pop() ?? "";
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(last);
        } catch { /* not JSON: the caller sees code and stderr */ }
        return { code: r.code, json, stderr: r.stderr };
      },
      stopForward() {
        stopped ??= (async () => {
          try {
            fw.child.kill("SIGTERM");
          } catch { /* already gone */ }
          const st = await fw.child.status;
          await Promise.all([fw.out.done, fw.err.done]);
          return st.code;
        })();
        return stopped;
      },
      async [Symbol.asyncDispose]() {
        await host.stopForward().catch(() => {});
        await ns[Symbol.asyncDispose]();
      },
    };
    return host;
  } catch (err) {
    await ns[Symbol.asyncDispose]();
    throw err;
  }
}
