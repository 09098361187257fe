// deno-lint-ignore-file no-console -- a benchmark: its output is its interface
/**
 * Memory and scale (bench/vs_portforward.ts `--scale N`): the kconnect client's and the traffic
 * manager's RSS while `N` idle TCP connections from the laptop namespace to a pod are held
 * through the tunnel, and whether every one still answers afterwards.
 *
 * Each configuration gets a fresh test cluster (so the manager's memory is not what an earlier
 * part of the run left behind): an echo server for many connections on the echo pod's address
 * (bench/_echo_many.ts), `kconnect up`, and the connection holder (bench/_conn_holder.ts) in the
 * laptop namespace. RSS is read from /proc (VmRSS, and VmHWM for the peak) idle after `up`, once
 * every connection is open, after each has sent one byte and got it back, and 5 s after they are
 * closed. Connections kconnect refuses are counted with the error the program saw, and the
 * client's and manager's log lines that name a limit or a failed dial are printed, one of each
 * kind with a count.
 *
 * @module
 */
import { MANAGER_POD, MANAGER_RUN_FLAGS, TestCluster } from "../tests/cluster/cluster.ts";
import { IPS } from "../tests/cluster/topology.ts";
import { waitListening } from "../tests/cluster/workloads.ts";
import { LineWatcher } from "../tests/_lines.ts";
import { startUp } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";
import { type Proc, procs, rssOf } from "./_cluster_lib.ts";

const ECHO_PORT = 7300;
const MB = 1e6;

/** One configuration to try. */
export interface ScaleConfig {
  /** Shown in the tables. */
  name: string;
  /** Extra flags of `kconnect up`. */
  upFlags: string[];
  /** Extra flags of `kconnect traffic-manager`; null runs the test cluster's standard manager. */
  managerFlags: string[] | null;
}

interface Sample {
  client: number;
  manager: number;
  clientPeak: number;
  managerPeak: number;
  clientFds: number;
  managerFds: number;
}

/** What one configuration gave. */
export interface ScaleResult {
  config: ScaleConfig;
  n: number;
  opened: number;
  openFailed: Record<string, number>;
  openMs: number;
  answered: number;
  wrong: number;
  echoFailed: Record<string, number>;
  echoMs: number;
  idle: Sample;
  holding: Sample;
  afterEcho: Sample;
  afterClose: Sample;
  /** "Max open files" soft/hard of the client, manager, holder and echo server. */
  nofile: Record<string, string>;
  /** The client's own `stats` log lines (RSS, heap, flows, streams) while holding. */
  clientStats: string[];
  /** Log lines of the client and the manager that name a limit or a failed dial (one a kind). */
  limitLines: string[];
  /** Lines the echo server printed on stderr. */
  echoErrors: string[];
}

async function fds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  let k = 0;
  try {
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) k++;
  } catch { /* gone */ }
  return k;
}

async function nofileOf(pid: number | undefined): Promise<string> {
  if (pid === undefined) return "?";
  try {
    const m = /Max open files\s+(\S+)\s+(\S+)/.exec(await Deno.readTextFile(`/proc/${pid}/limits`));
    return m ? `${m[1]}/${m[2]}` : "?";
  } catch {
    return "?";
  }
}

function pidOf(m: Map<number, Proc>, role: "client" | "manager"): number | undefined {
  for (const [pid, p] of m) if (p.role === role) return pid;
  return undefined;
}

async function sample(watch: Parameters<typeof procs>[0]): Promise<Sample> {
  const m = await procs(watch);
  return {
    client: rssOf(m, "client"),
    manager: rssOf(m, "manager"),
    clientPeak: rssOf(m, "client", true),
    managerPeak: rssOf(m, "manager", true),
    clientFds: await fds(pidOf(m, "client")),
    managerFds: await fds(pidOf(m, "manager")),
  };
}

/**
 * Raises this process's RLIMIT_NOFILE to `want` (soft and hard) with prlimit(1) when its hard
 * limit is lower, so that the cluster's processes, started after, inherit it (Deno raises its
 * own soft limit to the hard one). Returns what it did.
 */
export async function raiseNofile(want: number): Promise<string> {
  const m = /Max open files\s+(\S+)\s+(\S+)/.exec(await Deno.readTextFile("/proc/self/limits"));
  const hard = m?.[2] === "unlimited" ? Infinity : Number(m?.[2] ?? 0);
  if (hard >= want) return `RLIMIT_NOFILE ${m?.[1]}/${m?.[2]} already ≥ ${want}`;
  const r = await new Deno.Command("prlimit", {
    args: ["--pid", String(Deno.pid), `--nofile=${want}:${want}`],
    stderr: "piped",
  }).output();
  return r.success
    ? `RLIMIT_NOFILE raised from ${m?.[1]}/${m?.[2]} to ${want}/${want}`
    : `RLIMIT_NOFILE ${m?.[1]}/${m?.[2]}, raising to ${want} failed: ${
      new TextDecoder().decode(r.stderr).trim()
    }`;
}

/** The test cluster, with a manager started with `managerFlags` (see {@linkcode ScaleConfig}). */
async function startCluster(managerFlags: string[] | null, dir: string): Promise<TestCluster> {
  if (managerFlags === null) return await TestCluster.start();
  // The manager's --service-account-dir lies in the cluster's scratch directory, known only once
  // it is made: the command waits for a file naming it.
  const saFile = `${dir}/sa-dir`;
  await Deno.remove(saFile).catch(() => {});
  const cluster = await TestCluster.start({
    waitForManager: false,
    managerCommand: [
      "sh",
      "-c",
      'f="$1"; shift; while [ ! -s "$f" ]; do sleep 0.05; done; ' +
      'exec "$@" --service-account-dir "$(cat "$f")"',
      "sh",
      saFile,
      ...DENO_RUN,
      ...MANAGER_RUN_FLAGS,
      "-A",
      `${ROOT}main.ts`,
      "traffic-manager",
      "--listen",
      `127.0.0.1:${MANAGER_POD.port}`,
      "--refresh",
      "30",
      ...managerFlags,
    ],
  });
  try {
    await Deno.writeTextFile(saFile, cluster.serviceAccountDir);
    await waitListening(cluster.clusterNs, null, "127.0.0.1", MANAGER_POD.port, "tcp", 30_000);
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return cluster;
}

/**
 * Lines of `text` that name a limit or a failed dial (the client's are at debug level): the first
 * of each kind (digits aside), with a count.
 */
function limitLines(text: string, who: string): string[] {
  const kinds = new Map<string, { first: string; times: number }>();
  for (const line of text.split("\n")) {
    if (!/busy|limit|refus|already open|too many|EMFILE|os error 24|\bdial\b/i.test(line)) {
      continue;
    }
    const kind = line.replace(/^\S+Z\s+/, "").replace(/\d+/g, "#");
    const k = kinds.get(kind);
    if (k) k.times++;
    else kinds.set(kind, { first: line.trim(), times: 1 });
  }
  return [...kinds.values()].map(({ first, times }) =>
    `${who}: ${first}${times > 1 ? ` (${times} such lines)` : ""}`
  );
}

interface Opened {
  opened: number;
  failed: Record<string, number>;
  ms: number;
}
interface Echoed {
  answered: number;
  wrong: number;
  failed: Record<string, number>;
  ms: number;
}

/** Runs one configuration; `progress` gets a line now and then. */
export async function scaleRun(
  config: ScaleConfig,
  n: number,
  progress: (line: string) => void,
): Promise<ScaleResult> {
  const dir = await Deno.makeTempDir({ prefix: "kc-bench-scale-" });
  try {
    await using cluster = await startCluster(config.managerFlags, dir);
    const { laptop, apiserverNs, clusterNs } = cluster;
    const watch = [laptop, apiserverNs, clusterNs];
    const echo = clusterNs.spawn(
      [...DENO_RUN, "-A", `${ROOT}bench/_echo_many.ts`, IPS.echo, String(ECHO_PORT)],
      { stdout: "null", stderr: "piped" },
    );
    const echoErr = new LineWatcher(echo.stderr);
    await waitListening(clusterNs, null, IPS.echo, ECHO_PORT);

    await using up = await startUp(laptop, [
      "--kubeconfig",
      cluster.kubeconfig,
      "--log-level",
      "debug",
      ...config.upFlags,
    ]);
    /** The client's next `stats` line (it logs one every 5 s at debug level). */
    const nextStats = async () => {
      const from = up.err.lines.length;
      const deadline = Date.now() + 7000;
      while (Date.now() < deadline) {
        const line = up.err.lines.slice(from).find((l) => /\bstats\b/.test(l));
        if (line !== undefined) return line.replace(/^\S+\s+/, "");
        await new Promise((r) => setTimeout(r, 200));
      }
      return "(none)";
    };
    await new Promise((r) => setTimeout(r, 3000));
    const idle = await sample(watch);
    progress(`${config.name}: up, idle client ${mbs(idle.client)}, manager ${mbs(idle.manager)}`);

    const holder = laptop.spawn([
      ...DENO_RUN,
      "-A",
      `${ROOT}bench/_conn_holder.ts`,
      `host=${IPS.echo}`,
      `port=${ECHO_PORT}`,
      `n=${n}`,
      "concurrency=200",
      "timeout=30000",
    ], { stdin: "piped", stdout: "piped", stderr: "piped" });
    const out = new LineWatcher(holder.stdout);
    const holderErr = new LineWatcher(holder.stderr);
    const stdin = holder.stdin.getWriter();
    const phase = async <T>(name: string, ms: number): Promise<T> => {
      const line = await out.waitFor(new RegExp(`"phase":"${name}"`), ms).catch((err) => {
        throw new Error(`${(err as Error).message}\nholder stderr:\n${holderErr.text()}`);
      });
      return JSON.parse(line) as T;
    };
    let shown = 0;
    const ticker = setInterval(() => {
      for (; shown < out.lines.length; shown++) {
        const o = JSON.parse(out.lines[shown]);
        if (o.phase === "progress") {
          progress(`  ${o.attempted} attempted, ${o.opened} open (${(o.ms / 1000).toFixed(0)} s)`);
        }
      }
    }, 1000);
    let opened: Opened, echoed: Echoed;
    const nofile: Record<string, string> = {};
    const clientStats: string[] = [];
    let holding: Sample, afterEcho: Sample, afterClose: Sample;
    try {
      opened = await phase<Opened>("opened", 15 * 60_000);
      await new Promise((r) => setTimeout(r, 2000));
      holding = await sample(watch);
      const m = await procs(watch);
      nofile.client = await nofileOf(pidOf(m, "client"));
      nofile.manager = await nofileOf(pidOf(m, "manager"));
      nofile.holder = await nofileOf(holder.pid);
      nofile["echo server"] = await nofileOf(echo.pid);
      clientStats.push(`holding: ${await nextStats()}`);
      progress(
        `${config.name}: ${opened.opened} of ${n} open in ${(opened.ms / 1000).toFixed(1)} s, ` +
          `client ${mbs(holding.client)}, manager ${mbs(holding.manager)}`,
      );
      await stdin.write(new TextEncoder().encode("echo\n"));
      echoed = await phase<Echoed>("echoed", 5 * 60_000);
      await new Promise((r) => setTimeout(r, 1000));
      afterEcho = await sample(watch);
      clientStats.push(`after the echo: ${await nextStats()}`);
      await stdin.write(new TextEncoder().encode("close\n"));
      await phase("closed", 60_000);
      await holder.status;
      await new Promise((r) => setTimeout(r, 5000));
      afterClose = await sample(watch);
    } finally {
      clearInterval(ticker);
      try {
        holder.kill("SIGKILL");
      } catch { /* exited */ }
      await holder.status;
      await stdin.close().catch(() => {});
    }
    const result: ScaleResult = {
      config,
      n,
      opened: opened.opened,
      openFailed: opened.failed,
      openMs: opened.ms,
      answered: echoed.answered,
      wrong: echoed.wrong,
      echoFailed: echoed.failed,
      echoMs: echoed.ms,
      idle,
      holding,
      afterEcho,
      afterClose,
      nofile,
      clientStats,
      limitLines: [],
      echoErrors: [],
    };
    await up.stop();
    result.limitLines = [
      ...limitLines(up.err.text(), "client"),
      ...limitLines(cluster.managerErrors.text(), "manager"),
      ...limitLines(cluster.managerOutput.text(), "manager"),
    ];
    result.echoErrors = echoErr.lines.slice(0, 5);
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function mbs(b: number): string {
  return `${(b / MB).toFixed(0)} MB`;
}

function failures(f: Record<string, number>): string {
  const e = Object.entries(f).sort((a, b) => b[1] - a[1]);
  return e.length === 0 ? "none" : e.map(([k, v]) => `${v} × ${k}`).join("; ");
}

/** Prints the section's tables. */
export function printScale(results: ScaleResult[], notes: string[]): void {
  if (results.length === 0) return;
  const n = results[0].n;
  console.log(
    `\n## Memory and scale: ${n} idle TCP connections laptop → pod ${IPS.echo}:${ECHO_PORT} ` +
      `through kconnect (RSS in MB = 10^6 bytes; goal of issue 12: ≤ 100 MB idle, ≤ 200 MB ` +
      `each at 10,000 flows)`,
  );
  console.log("| configuration | opened | answered after all were open | open time | echo time |");
  console.log("|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.config.name} | ${r.opened} / ${r.n} | ${r.answered} / ${r.opened}` +
        `${r.wrong ? ` (${r.wrong} wrong byte)` : ""} | ${(r.openMs / 1000).toFixed(1)} s | ${
          (r.echoMs / 1000).toFixed(1)
        } s |`,
    );
  }
  console.log(
    "\n| configuration | moment | client RSS | manager RSS | client peak | manager peak | " +
      "client fds | manager fds |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const rows: [string, Sample][] = [
      ["idle, before", r.idle],
      [`holding ${r.opened}`, r.holding],
      [`holding ${r.opened}, after the echo`, r.afterEcho],
      ["5 s after closing them", r.afterClose],
    ];
    for (const [moment, s] of rows) {
      console.log(
        `| ${r.config.name} | ${moment} | ${mbs(s.client)} | ${mbs(s.manager)} | ` +
          `${mbs(s.clientPeak)} | ${mbs(s.managerPeak)} | ${s.clientFds} | ${s.managerFds} |`,
      );
    }
  }
  for (const r of results) {
    console.log(`\n${r.config.name}:`);
    console.log(
      `- kconnect up flags: ${r.config.upFlags.join(" ") || "(defaults)"} (and --log-level debug)`,
    );
    console.log(
      `- traffic-manager flags: ${
        r.config.managerFlags === null
          ? "(defaults: the test cluster's manager)"
          : r.config.managerFlags.join(" ")
      }`,
    );
    console.log(`- connects that failed: ${failures(r.openFailed)}`);
    console.log(`- echoes that failed: ${failures(r.echoFailed)}`);
    console.log(
      `- RLIMIT_NOFILE soft/hard: ${
        Object.entries(r.nofile).map(([k, v]) => `${k} ${v}`).join(", ")
      }`,
    );
    for (const l of r.clientStats) console.log(`- client's stats log, ${l}`);
    if (r.limitLines.length > 0) {
      console.log("- log lines naming a limit or a failed dial (the first of each kind):");
      for (const l of r.limitLines) console.log(`  - ${l}`);
    } else console.log("- no log line of the client or the manager names a limit or a failed dial");
    if (r.echoErrors.length > 0) console.log(`- echo server: ${r.echoErrors.join("; ")}`);
  }
  for (const line of notes) console.log(line);
}
