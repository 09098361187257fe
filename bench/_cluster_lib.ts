/**
 * Helpers shared by the cluster benchmarks (bench/cluster.ts, bench/vs_portforward.ts): iperf3
 * and netprobe runs from a namespace, CPU and memory sampling from /proc by process role, and
 * number formatting.
 *
 * @module
 */
import type { Netns } from "../tests/_netns.ts";
export { DelayLine } from "../tests/cluster/delay_line_process.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";

/** Run settings the helpers read; the benchmark sets them from its arguments. */
export const settings = { seconds: 5, sampleCpu: true };

const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;

export interface Iperf {
  bps: number;
  /** Bytes the receiver counted (the sender's when only that is known). */
  bytes: number;
  retransmits: number | null;
  cpu: string;
}
export interface Latency {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}
export interface Results {
  one: Iperf & { note: string };
  eight: Iperf & { note: string };
  rr: Latency;
  conn: Latency & { connect: Latency };
}

// ---- CPU sampling (/proc) ------------------------------------------------------------------

export interface ProcSample {
  label: string;
  total: number;
  threads: Map<number, number>;
}

export const CLK_TCK = 100;

export async function ticks(path: string): Promise<number> {
  const s = await Deno.readTextFile(path);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

export function labelOf(cmdline: string[]): string {
  const text = cmdline.join(" ");
  const known: [RegExp, string][] = [
    [/main\.ts up\b/, "kconnect up"],
    [/traffic-manager/, "traffic manager"],
    [/apiserver\.ts/, "API server stand-in"],
    [/delay_line\.ts/, "delay line"],
    [/netprobe\.ts (\S+)/, "netprobe"],
    [/kubelet_server\.ts/, "kubelet"],
    [/^iperf3 -s/, "iperf3 server"],
    [/^iperf3 -c/, "iperf3 client"],
  ];
  for (const [re, name] of known) {
    const m = re.exec(text);
    if (m) return m[1] ? `${name} ${m[1]}` : name;
  }
  return cmdline[0]?.split("/").pop() ?? "?";
}

/** Busy and total jiffies of the whole machine (namespaces share the CPUs). */
export async function machineTicks(): Promise<{ busy: number; total: number }> {
  const f = (await Deno.readTextFile("/proc/stat")).split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total }; // minus idle and iowait
}

/** TX drops of the laptop's TUN (packets the kernel could not queue for kconnect). */
export async function tunDrops(laptop: Netns): Promise<number | null> {
  const r = await laptop.exec(["cat", "/sys/class/net/kconnect0/statistics/tx_dropped"], {
    check: false,
  });
  return r.code === 0 ? Number(r.stdout.trim()) : null;
}

export async function pidsIn(namespaces: Netns[]): Promise<number[]> {
  const out: number[] = [];
  for (const ns of namespaces) {
    const r = await new Deno.Command("ip", { args: ["netns", "pids", ns.name] }).output();
    out.push(...new TextDecoder().decode(r.stdout).split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

export async function snapshot(namespaces: Netns[]): Promise<Map<number, ProcSample>> {
  const m = new Map<number, ProcSample>();
  for (const pid of await pidsIn(namespaces)) {
    try {
      const cmd = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").filter(Boolean);
      const threads = new Map<number, number>();
      for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
        try {
          threads.set(Number(t.name), await ticks(`/proc/${pid}/task/${t.name}/stat`));
        } catch { /* thread gone */ }
      }
      m.set(pid, { label: labelOf(cmd), total: await ticks(`/proc/${pid}/stat`), threads });
    } catch { /* process gone */ }
  }
  return m;
}

/** "name 95% (max thread 60%)" for every process above 5% of a core between a and b. */
export function cpuLine(
  a: Map<number, ProcSample>,
  b: Map<number, ProcSample>,
  ms: number,
): string {
  const rows: { label: string; pct: number; thread: number }[] = [];
  const pct = (t: number) => (t / CLK_TCK) * 1000 / ms * 100;
  for (const [pid, s] of b) {
    const before = a.get(pid);
    if (!before) continue;
    let thread = 0;
    for (const [tid, t] of s.threads) {
      thread = Math.max(thread, pct(t - (before.threads.get(tid) ?? t)));
    }
    const p = pct(s.total - before.total);
    if (p >= 5) rows.push({ label: s.label, pct: p, thread });
  }
  rows.sort((x, y) => y.pct - x.pct);
  return rows.map((r) =>
    `${r.label} ${r.pct.toFixed(0)}%` +
    (r.pct - r.thread > 10 ? ` (busiest thread ${r.thread.toFixed(0)}%)` : "")
  ).join(", ");
}

// ---- processes by role (bench/vs_portforward.ts) ------------------------------------------

/** What a process in the test cluster is, for the CPU and memory tables. */
export type Role = "client" | "manager" | "pf" | "api" | "kubelet";
export const ROLES: Role[] = ["client", "manager", "pf", "api", "kubelet"];
export const ROLE_NAME: Record<Role, string> = {
  client: "kconnect client",
  manager: "manager",
  pf: "port-forward client",
  api: "API server",
  kubelet: "kubelet",
};

/**
 * The role of a process from its command line (arguments joined by spaces). The kubelet hop is
 * the stand-in's kubelet (`tests/cluster/kubelet_server.ts`, one process per node, which
 * terminates each port-forward WebSocket and dials the pod in-process).
 */
export function roleOf(cmdline: string): Role | null {
  if (/main\.ts up\b/.test(cmdline)) return "client";
  if (/traffic-manager/.test(cmdline)) return "manager";
  if (/pf_client\.ts/.test(cmdline)) return "pf";
  if (/apiserver\.ts/.test(cmdline)) return "api";
  if (/kubelet_server\.ts/.test(cmdline)) return "kubelet";
  return null;
}

/** A process's CPU ticks (its own and its reaped children's) and memory. */
export interface Proc {
  role: Role;
  own: number;
  children: number;
  /** VmRSS, bytes. */
  rss: number;
  /** VmHWM (peak RSS), bytes. */
  peak: number;
}

/** Every process of a known role in `namespaces`, by pid. */
export async function procs(namespaces: Netns[]): Promise<Map<number, Proc>> {
  const m = new Map<number, Proc>();
  for (const pid of await pidsIn(namespaces)) {
    try {
      const cmd = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").join(" ").trim();
      const role = roleOf(cmd);
      if (role === null) continue;
      const s = await Deno.readTextFile(`/proc/${pid}/stat`);
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const kib = (field: string) =>
        Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
      m.set(pid, {
        role,
        own: Number(f[11]) + Number(f[12]),
        children: Number(f[13]) + Number(f[14]),
        rss: kib("VmRSS"),
        peak: kib("VmHWM"),
      });
    } catch { /* gone */ }
  }
  return m;
}

/** CPU seconds per role between two snapshots. */
export function cpuDelta(a: Map<number, Proc>, b: Map<number, Proc>): Record<Role, number> {
  const out = { client: 0, manager: 0, pf: 0, api: 0, kubelet: 0 };
  for (const [pid, p] of b) {
    const before = a.get(pid);
    out[p.role] += (p.own - (before?.own ?? 0)) / CLK_TCK;
  }
  return out;
}

/** The largest RSS (or, with `peak`, VmHWM) of a process of `role`, bytes. */
export function rssOf(m: Map<number, Proc>, role: Role, peak = false): number {
  let max = 0;
  for (const p of m.values()) if (p.role === role) max = Math.max(max, peak ? p.peak : p.rss);
  return max;
}

/**
 * CPU time (ticks) the processes of `role` spent between two snapshots, as a share of one core
 * over `ms` milliseconds (a process in both snapshots counts; one that came or went does not).
 */
export function cpuShareOf(
  before: Map<number, Proc>,
  after: Map<number, Proc>,
  role: Role,
  ms: number,
): number {
  let ticks = 0;
  for (const [pid, p] of after) {
    const b = before.get(pid);
    if (p.role === role && b !== undefined) ticks += p.own - b.own;
  }
  return ticks / CLK_TCK / (ms / 1000);
}

// ---- measurements --------------------------------------------------------------------------

export async function iperf(
  client: Netns,
  target: string,
  port: number,
  streams: number,
  watch: Netns[],
  senderFallback = false,
  reverse = false,
): Promise<Iperf & { note: string }> {
  // iperf3's server runs one test at a time and can take a moment to notice that the last
  // client has gone: a "busy" answer is tried again (a few times, 2 s apart).
  for (let attempt = 1;; attempt++) {
    try {
      return await iperfOnce(client, target, port, streams, watch, senderFallback, reverse);
    } catch (err) {
      if (attempt >= 4 || !/server is busy/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function iperfOnce(
  client: Netns,
  target: string,
  port: number,
  streams: number,
  watch: Netns[],
  senderFallback: boolean,
  reverse: boolean,
): Promise<Iperf & { note: string }> {
  const run = client.exec([
    "iperf3",
    "-c",
    target,
    "-p",
    String(port),
    "-t",
    String(settings.seconds),
    "-P",
    String(streams),
    "--connect-timeout",
    "10000",
    "-J",
    ...(reverse ? ["-R"] : []),
  ], { signal: AbortSignal.timeout((settings.seconds + 30) * 1000), check: false });
  let cpu = "";
  const drops0 = await tunDrops(client);
  if (settings.sampleCpu && settings.seconds >= 3) {
    await new Promise((r) => setTimeout(r, 1500));
    const [a, ma] = [await snapshot(watch), await machineTicks()];
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, (settings.seconds - 2.5) * 1000));
    const [b, mb] = [await snapshot(watch), await machineTicks()];
    const machine = (mb.busy - ma.busy) / (mb.total - ma.total) * 100;
    cpu = `machine ${machine.toFixed(0)}% busy; ${cpuLine(a, b, performance.now() - t0)}`;
  }
  const r = await run;
  const drops1 = await tunDrops(client);
  if (drops0 !== null && drops1 !== null) cpu += `; TUN tx_dropped +${drops1 - drops0}`;
  let j;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 to ${target}:${port} failed: ${r.stderr || r.stdout}`);
  }
  const sent = j.end?.sum_sent?.bits_per_second ?? 0;
  if (j.error && senderFallback && sent > 0) {
    return {
      bps: sent,
      bytes: j.end.sum_sent.bytes ?? 0,
      retransmits: j.end.sum_sent.retransmits ?? null,
      cpu,
      note: " (sender's count: the relay died at the end of the test)",
    };
  }
  if (j.error) throw new Error(`iperf3 to ${target}:${port}: ${j.error}`);
  return {
    bps: j.end.sum_received.bits_per_second,
    bytes: j.end.sum_received.bytes,
    retransmits: j.end.sum_sent.retransmits ?? null,
    cpu,
    note: "",
  };
}

export async function netprobe<T>(
  ns: Netns,
  mode: string,
  params: Record<string, number | string>,
): Promise<T> {
  const r = await ns.exec([
    ...DENO_RUN,
    "-A",
    NETPROBE,
    mode,
    ...Object.entries(params).map(([k, v]) => `${k}=${v}`),
  ], { signal: AbortSignal.timeout(60_000) });
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

export function rate(bps: number): string {
  return bps >= 1e9 ? `${(bps / 1e9).toFixed(2)} Gbit/s` : `${(bps / 1e6).toFixed(1)} Mbit/s`;
}

export function us(v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`;
}
