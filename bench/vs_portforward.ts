// deno-lint-ignore-file no-console
/**
 * kconnect against what a user would pick instead, `kubectl port-forward`, side by side in one
 * run through the same API server stand-in (tests/cluster): laptop namespace → echo pod
 * 10.244.0.12 in the cluster namespace.
 *
 * - **pf**: bench/pf_client.ts, a per-connection port-forward client written like kubectl's: it
 *   listens on 127.0.0.1 in the laptop namespace and opens one `v4.channel.k8s.io` WebSocket per
 *   accepted connection (src/k8s/portforward.ts's `openPortForward`, with backpressure);
 * - **kconnect**: `kconnect up`, default settings (and each `--variant "name=--flag value"`
 *   given, e.g. `--variant "mtu 65000=--mtu 65000"`);
 *
 * each at +0 ms and at +2×`--delay` ms round trip between the laptop and the API server
 * (tests/cluster/delay_line.ts in the API server's namespace: a packet delay line, so every TCP
 * connection runs end to end and sees the round trip, slow start included). Figures:
 * iperf3 one stream, 8 streams (-P 8) and reverse (-R), one run each; a 64 MiB HTTP download with
 * curl (median of 3); HTTP request/response p50 (curl, one kept-alive connection, 64-byte
 * bodies); a new connection to its first byte (connect, 64-byte request, reply, close: the reply
 * is the first byte a port-forward connection can deliver). CPU seconds per GB moved per
 * process, from /proc/<pid>/stat utime+stime deltas over each iperf3 run: kconnect client,
 * traffic manager, port-forward client, API server stand-in and the stand-in's kubelet. RSS of
 * the client and the manager idle and at the middle of the one-stream run.
 *
 * The stand-in relays port-forward as a real chain does (tests/cluster/upgrade_proxy.ts,
 * kubelet_server.ts): the API server checks the request, then proxies the upgraded connection
 * to the node's kubelet over a second TLS hop with its kubelet client certificate; the kubelet
 * terminates the WebSocket and dials the pod in-process. Both paths pay the same per
 * port-forward WebSocket, so the comparison is like for like.
 *
 * Two more parts, each asked for by its option (numbers printed, nothing asserted):
 *
 * - `--plot <file.svg>`: single-stream iperf3 throughput, laptop → pod and reverse, for
 *   port-forward and each kconnect path at each added round trip of `--delays` (ms, default
 *   0,10,20,40; half each way, every point through the delay line, 0 ms included), printed as a
 *   table and drawn as an SVG line chart (bench/_svg.ts) with the date, cores and commit;
 * - `--scale <n>`: the client's and the manager's RSS while `n` idle TCP connections from the
 *   laptop to a pod are held through kconnect, and how many still answer (bench/_scale.ts). With
 *   the defaults first; while a try does not hold all `n`, the next: the manager started with
 *   `--scale-manager-flags` (default `--max-streams 20480 --max-session-streams 10240`), then also
 *   `kconnect up` with `--scale-up-flags` (default `--transports 4`). Each try on a fresh test
 *   cluster, the client at `--log-level debug` (its dial failures and memory stats).
 *
 * `--no-tables` skips the side-by-side tables (for a run of only the parts above).
 *
 *   sudo deno run -A --unstable-net bench/vs_portforward.ts [--seconds 5] [--delay 10]
 *     [--variant "mtu 65000=--mtu 65000"]… [--no-default] [--only-delay <rtt ms>]… [--no-tables]
 *     [--plot docs/perf/throughput_vs_rtt.svg [--delays 0,10,20,40]] [--scale 10000
 *     [--scale-up-flags "--transports 4"] [--scale-manager-flags "--max-streams 10240 …"]]
 *
 * Prints tables; asserts nothing. The tables take about three minutes, the plot about 40 s per
 * round trip, the scale part under a minute per configuration (10,000 connections, here).
 *
 * @module
 */
import { TestCluster } from "../tests/cluster/cluster.ts";
import { IPS } from "../tests/cluster/topology.ts";
import { waitListening } from "../tests/cluster/workloads.ts";
import type { Netns } from "../tests/_netns.ts";
import { startUp } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";
import {
  cpuDelta,
  cpuShareOf,
  DelayLine,
  type Iperf,
  iperf,
  type Latency,
  netprobe,
  procs,
  type Role,
  ROLE_NAME,
  ROLES,
  rssOf,
  settings,
} from "./_cluster_lib.ts";
import { type ChartSeries, lineChartSvg } from "./_svg.ts";
import { IDLE_CHECK_MS } from "../src/host/idle_release.ts";
import { printScale, raiseNofile, type ScaleConfig, type ScaleResult, scaleRun } from "./_scale.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
}
function args(name: string): string[] {
  const out: string[] = [];
  Deno.args.forEach((a, i) => {
    if (a === `--${name}` && Deno.args[i + 1] !== undefined) out.push(Deno.args[i + 1]);
  });
  return out;
}
const words = (text: string) => text.split(/\s+/).filter((w) => w !== "");

settings.seconds = Number(arg("seconds", "5"));
settings.sampleCpu = false;
const delayMs = Number(arg("delay", "10"));
/** Added round trips of the tables, ms (the delay line adds half of each in each direction). */
const delays = args("only-delay").length > 0 ? args("only-delay").map(Number) : [0, 2 * delayMs];
const variants: { name: string; flags: string[] }[] = [
  ...(Deno.args.includes("--no-default") ? [] : [{ name: "kconnect", flags: [] }]),
  ...args("variant").map((v) => {
    const i = v.indexOf("=");
    return { name: `kconnect ${v.slice(0, i)}`, flags: words(v.slice(i + 1)) };
  }),
];
const tables = !Deno.args.includes("--no-tables");
const plotFile = arg("plot", "");
/** Added round trips of the plot, ms. */
const plotDelays = arg("delays", "0,10,20,40").split(",").map(Number);
const scaleN = Number(arg("scale", "0"));
const scaleUpFlags = words(arg("scale-up-flags", "--transports 4"));
const scaleManagerFlags = words(
  arg("scale-manager-flags", "--max-streams 20480 --max-session-streams 10240"),
);
for (const [name, v] of [["delays", plotDelays], ["only-delay", delays]] as const) {
  if (v.some((d) => !(d >= 0))) throw new Error(`--${name}: not a list of ms ≥ 0: ${v}`);
}

const POD = IPS.echo;
const POD_NAME = "echo-7f6d5c4b3-m9n8p";
const IPERF_PORT = 5201, RR_PORT = 7100, HTTP_PORT = 8088;
const LOCAL = { [IPERF_PORT]: 15201, [RR_PORT]: 17100, [HTTP_PORT]: 18088 } as const;
const BLOB = 64 << 20;

// ---- measurements --------------------------------------------------------------------------

interface Flow extends Omit<Iperf, "cpu"> {
  cpu: Record<Role, number>;
  rss?: { client: number; manager: number; pf: number };
}
interface Scenario {
  one: Flow;
  eight: Flow;
  reverse: Flow;
  downloadS: number;
  http: Latency;
  firstByte: Latency;
  idleRss?: { client: number; manager: number };
  /** RSS once the traffic has been over for {@linkcode QUIET_WAIT_MS}. */
  quietRss?: { client: number; manager: number };
  /** Share of one core used while connected and idle, over {@linkcode IDLE_CPU_MS}. */
  idleCpu?: { client: number; manager: number };
}

/** How long the idle CPU figure is taken over. */
const IDLE_CPU_MS = 10_000;
/** How long after the traffic the "quiet after" RSS is read: past the client's idle release. */
const QUIET_WAIT_MS = 2.5 * IDLE_CHECK_MS;

async function flow(
  laptop: Netns,
  watch: Netns[],
  host: string,
  port: number,
  streams: number,
  reverse: boolean,
  sampleRss: boolean,
): Promise<Flow> {
  const a = await procs(watch);
  let rss: Flow["rss"];
  const mid = sampleRss
    ? new Promise<void>((r) => setTimeout(r, settings.seconds * 500)).then(async () => {
      const m = await procs(watch);
      rss = { client: rssOf(m, "client"), manager: rssOf(m, "manager"), pf: rssOf(m, "pf") };
    })
    : Promise.resolve();
  const r = await iperf(laptop, host, port, streams, watch, false, reverse);
  await mid;
  await new Promise((res) => setTimeout(res, 1500)); // per-connection relays exit and are reaped
  const b = await procs(watch);
  return { bps: r.bps, bytes: r.bytes, retransmits: r.retransmits, cpu: cpuDelta(a, b), rss };
}

async function curlDownload(laptop: Netns, host: string, port: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await laptop.exec([
      "curl",
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{time_total} %{size_download}",
      `http://${host}:${port}/blob`,
    ], { signal: AbortSignal.timeout(120_000) });
    const [t, size] = r.stdout.trim().split(" ").map(Number);
    if (size !== BLOB) throw new Error(`curl got ${size} bytes, not ${BLOB}`);
    times.push(t);
  }
  return times.sort((x, y) => x - y)[1];
}

async function httpRoundTrips(laptop: Netns, host: string, port: number): Promise<Latency> {
  const n = 200;
  const argv = ["curl", "-sS", "-w", "%{time_total}\\n"];
  for (let i = 0; i < n; i++) argv.push("-o", "/dev/null", `http://${host}:${port}/small`);
  const r = await laptop.exec(argv, { signal: AbortSignal.timeout(120_000) });
  const t = r.stdout.trim().split("\n").map((x) => Number(x) * 1e6).slice(5); // µs, warm
  t.sort((x, y) => x - y);
  const q = (p: number) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
  return { n: t.length, p50: q(0.5), p99: q(0.99), mean: t.reduce((s, x) => s + x, 0) / t.length };
}

async function scenario(
  laptop: Netns,
  watch: Netns[],
  target: (port: number) => { host: string; port: number },
  slow: boolean,
): Promise<Scenario> {
  const ip = target(IPERF_PORT), http = target(HTTP_PORT), rr = target(RR_PORT);
  const one = await flow(laptop, watch, ip.host, ip.port, 1, false, true);
  const eight = await flow(laptop, watch, ip.host, ip.port, 8, false, false);
  const reverse = await flow(laptop, watch, ip.host, ip.port, 1, true, false);
  const downloadS = await curlDownload(laptop, http.host, http.port);
  const httpLat = await httpRoundTrips(laptop, http.host, http.port);
  const firstByte = await netprobe<Latency>(laptop, "connect-client", {
    host: rr.host,
    port: rr.port,
    n: slow ? 100 : 300,
    ms: slow ? 6000 : 3000,
  });
  return { one, eight, reverse, downloadS, http: httpLat, firstByte };
}

// ---- output --------------------------------------------------------------------------------

const gbps = (x: { bps: number }) => (x.bps / 1e9).toFixed(2);
const ms = (us: number) => us >= 10_000 ? (us / 1000).toFixed(1) : (us / 1000).toFixed(2);
const mb = (b: number) => (b / 2 ** 20).toFixed(0);

function sideBySide(label: string, pf: Scenario, k: Scenario, name: string): void {
  console.log(`\n## ${label}: ${name} vs per-connection port-forward`);
  console.log(`| figure | port-forward | ${name} | ${name} / pf |`);
  console.log("|---|---|---|---|");
  const row = (f: string, a: number, b: number, fmt: (x: number) => string, better: string) =>
    console.log(`| ${f} | ${fmt(a)} | ${fmt(b)} | ${(b / a).toFixed(2)}× (${better}) |`);
  const g = (x: number) => `${(x / 1e9).toFixed(2)} Gb/s`;
  row("iperf3 1 stream", pf.one.bps, k.one.bps, g, "higher is better");
  row("iperf3 8 streams", pf.eight.bps, k.eight.bps, g, "higher is better");
  row("iperf3 reverse (-R)", pf.reverse.bps, k.reverse.bps, g, "higher is better");
  row("64 MiB curl download", pf.downloadS, k.downloadS, (x) => `${x.toFixed(3)} s`, "lower");
  row("HTTP round trip p50", pf.http.p50, k.http.p50, (x) => `${ms(x)} ms`, "lower");
  row(
    "new connection to first byte p50",
    pf.firstByte.p50,
    k.firstByte.p50,
    (x) => `${ms(x)} ms`,
    "lower",
  );
}

function cpuTable(rows: { path: string; f: Flow }[]): void {
  console.log("\n## CPU seconds per GB moved (utime+stime over each iperf3 run)");
  console.log(
    `| path | Gb/s | ${ROLES.map((r) => ROLE_NAME[r]).join(" | ")} | client+manager / pf client |`,
  );
  console.log(`|---|---|${ROLES.map(() => "---").join("|")}|---|`);
  const pfPer: Record<string, number> = {};
  for (const { path, f } of rows) {
    const gb = f.bytes / 1e9;
    const per = (r: Role) => f.cpu[r] / gb;
    const key = path.replace(/^.*?, /, "");
    if (path.startsWith("port-forward")) pfPer[key] = per("pf");
    const cell = (r: Role) => f.cpu[r] > 0 ? per(r).toFixed(2) : "–";
    const kc = per("client") + per("manager");
    const ratio = path.startsWith("port-forward") || !pfPer[key]
      ? ""
      : `${(kc / pfPer[key]).toFixed(2)}×`;
    console.log(`| ${path} | ${gbps(f)} | ${ROLES.map(cell).join(" | ")} | ${ratio} |`);
  }
}

/** Starts the port-forward clients (one per port, listening on 127.0.0.1 in the laptop). */
async function startPf(laptop: Netns, kubeconfig: string, ports: number[]) {
  const clients = ports.map((port) =>
    laptop.spawn([
      ...DENO_RUN,
      "-A",
      `${ROOT}bench/pf_client.ts`,
      "--kubeconfig",
      kubeconfig,
      "--listen",
      `127.0.0.1:${LOCAL[port as keyof typeof LOCAL]}`,
      "--namespace",
      "default",
      "--pod",
      POD_NAME,
      "--port",
      String(port),
    ])
  );
  for (const port of ports) {
    await waitListening(laptop, null, "127.0.0.1", LOCAL[port as keyof typeof LOCAL]);
  }
  return {
    async stop() {
      for (const c of clients) {
        try {
          c.kill();
        } catch { /* exited */ }
        await c.status;
      }
    },
  };
}

// ---- the run -------------------------------------------------------------------------------

if (Deno.uid() !== 0) {
  console.error("bench/vs_portforward.ts needs root (network namespaces and a TUN device)");
  Deno.exit(1);
}
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
const loadavg = async () => (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3);
const loadAtStart = await loadavg();
console.log(
  `laptop → pod ${POD} through the API server stand-in, port-forward client vs kconnect up, one ` +
    `run, ${navigator.hardwareConcurrency} cores; iperf3 -t ${settings.seconds}; load average ` +
    `${loadAtStart.join(" ")}` +
    (tables
      ? `; tables at +${delays.join(", +")} ms round trip (delay_line.ts, half each way)`
      : "") +
    (plotFile ? `; plot at +${plotDelays.join(", +")} ms` : "") +
    (scaleN > 0 ? `; ${scaleN} idle connections` : ""),
);

interface PlotPoint {
  delay: number;
  path: string;
  reverse: boolean;
  bps: number;
  error?: string;
}
const results: { delay: number; pf: Scenario; k: { name: string; s: Scenario }[] }[] = [];
const plotPoints: PlotPoint[] = [];
let lineRestarts = 0;

if (tables || plotFile) {
  await using cluster = await TestCluster.start();
  const { laptop, apiserverNs, clusterNs } = cluster;
  const watch = [laptop, apiserverNs, clusterNs];

  clusterNs.spawn(["iperf3", "-s", "-B", POD, "-p", String(IPERF_PORT)]);
  clusterNs.spawn([
    ...DENO_RUN,
    "-A",
    `${ROOT}tests/fixtures/netprobe.ts`,
    "rr-server",
    `host=${POD}`,
    `port=${RR_PORT}`,
  ]);
  clusterNs.spawn([
    ...DENO_RUN,
    "-A",
    `${ROOT}bench/_blob_server.ts`,
    POD,
    String(HTTP_PORT),
    String(BLOB),
  ]);
  for (const p of [IPERF_PORT, RR_PORT, HTTP_PORT]) await waitListening(clusterNs, null, POD, p);

  const line = new DelayLine(apiserverNs);
  const kubeconfig = cluster.kubeconfig;

  try {
    for (const delay of tables ? delays : []) {
      // +0 goes straight to the API server; a delay through the delay line.
      if (delay > 0) await line.start(delay / 2);
      // (a) per-connection port-forward.
      const pfClients = await startPf(laptop, kubeconfig, [IPERF_PORT, RR_PORT, HTTP_PORT]);
      console.log(`\nport-forward clients listening, +${delay} ms (${elapsed()})`);
      const pf = await scenario(
        laptop,
        watch,
        (port) => ({ host: "127.0.0.1", port: LOCAL[port as keyof typeof LOCAL] }),
        delay > 0,
      );
      await pfClients.stop();
      // (b) kconnect up, each variant.
      const k: { name: string; s: Scenario }[] = [];
      for (const v of variants) {
        await using up = await startUp(laptop, ["--kubeconfig", kubeconfig, ...v.flags]);
        await new Promise((r) => setTimeout(r, 1000));
        const idle = await procs(watch);
        // Connected and idle (no flows): what a laptop pays just for being connected.
        await new Promise((r) => setTimeout(r, IDLE_CPU_MS));
        const idleLater = await procs(watch);
        console.log(`${v.name} up, +${delay} ms (${elapsed()})`);
        const s = await scenario(laptop, watch, (port) => ({ host: POD, port }), delay > 0);
        // What stays resident once the traffic is over (the client gives memory back then).
        await new Promise((r) => setTimeout(r, QUIET_WAIT_MS));
        const quiet = await procs(watch);
        s.quietRss = { client: rssOf(quiet, "client"), manager: rssOf(quiet, "manager") };
        s.idleRss = { client: rssOf(idle, "client"), manager: rssOf(idle, "manager") };
        s.idleCpu = {
          client: cpuShareOf(idle, idleLater, "client", IDLE_CPU_MS),
          manager: cpuShareOf(idle, idleLater, "manager", IDLE_CPU_MS),
        };
        k.push({ name: v.name, s });
        await up.stop();
      }
      await line.stop();
      results.push({ delay, pf, k });
    }

    // The plot: every point through the delay line (0 ms included), so only the delay changes.
    for (const delay of plotFile ? plotDelays : []) {
      await line.start(delay / 2);
      const point = async (path: string, host: string, port: number, reverse: boolean) => {
        try {
          const f = await flow(laptop, watch, host, port, 1, reverse, false);
          plotPoints.push({ delay, path, reverse, bps: f.bps });
        } catch (err) {
          const error = (err as Error).message.split("\n")[0];
          console.log(`  ${path}, +${delay} ms${reverse ? ", reverse" : ""}: ${error}`);
          plotPoints.push({ delay, path, reverse, bps: NaN, error });
        }
      };
      const pfClients = await startPf(laptop, kubeconfig, [IPERF_PORT]);
      console.log(`\nplot: port-forward, +${delay} ms (${elapsed()})`);
      for (const reverse of [false, true]) {
        await point("port-forward", "127.0.0.1", LOCAL[IPERF_PORT], reverse);
      }
      await pfClients.stop();
      for (const v of variants) {
        await using up = await startUp(laptop, ["--kubeconfig", kubeconfig, ...v.flags]);
        console.log(`plot: ${v.name}, +${delay} ms (${elapsed()})`);
        for (const reverse of [false, true]) await point(v.name, POD, IPERF_PORT, reverse);
        await up.stop();
      }
      await line.stop();
    }
  } finally {
    await line.stop();
    lineRestarts = line.restarts;
  }
}

// ---- the tables ----------------------------------------------------------------------------

for (const r of results) {
  for (const { name, s } of r.k) sideBySide(`+${r.delay} ms round trip`, r.pf, s, name);
}
if (results.length > 0) {
  const cpuRows: { path: string; f: Flow }[] = [];
  for (const r of results) {
    cpuRows.push({ path: `port-forward, +${r.delay} ms, 1 stream`, f: r.pf.one });
    for (const { name, s } of r.k) {
      cpuRows.push({ path: `${name}, +${r.delay} ms, 1 stream`, f: s.one });
    }
    cpuRows.push({ path: `port-forward, +${r.delay} ms, reverse`, f: r.pf.reverse });
    for (const { name, s } of r.k) {
      cpuRows.push({ path: `${name}, +${r.delay} ms, reverse`, f: s.reverse });
    }
    cpuRows.push({ path: `port-forward, +${r.delay} ms, 8 streams`, f: r.pf.eight });
    for (const { name, s } of r.k) {
      cpuRows.push({ path: `${name}, +${r.delay} ms, 8 streams`, f: s.eight });
    }
  }
  cpuTable(cpuRows);

  console.log(
    `\n## RSS (MiB): idle after up, at the middle of the one-stream run, and ${
      QUIET_WAIT_MS / 1000
    } s after the last figure; CPU while connected and idle (% of one core over ${
      IDLE_CPU_MS / 1000
    } s)`,
  );
  console.log(
    "| path | client idle | manager idle | client, 1 stream | manager, 1 stream | client, quiet after | manager, quiet after | client idle CPU | manager idle CPU |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  const pct = (x: number | undefined) => x === undefined ? "" : `${(x * 100).toFixed(2)} %`;
  for (const r of results) {
    console.log(
      `| port-forward client, +${r.delay} ms | | | ${mb(r.pf.one.rss?.pf ?? 0)} | | | | | |`,
    );
    for (const { name, s } of r.k) {
      console.log(
        `| ${name}, +${r.delay} ms | ${mb(s.idleRss!.client)} | ${mb(s.idleRss!.manager)} | ${
          mb(s.one.rss?.client ?? 0)
        } | ${mb(s.one.rss?.manager ?? 0)} | ${mb(s.quietRss!.client)} | ${
          mb(s.quietRss!.manager)
        } | ${pct(s.idleCpu?.client)} | ${pct(s.idleCpu?.manager)} |`,
      );
    }
  }
}

// ---- the plot ------------------------------------------------------------------------------

if (plotFile) {
  const paths = ["port-forward", ...variants.map((v) => v.name)];
  const dir = (reverse: boolean) => reverse ? "pod → laptop (-R)" : "laptop → pod";
  const at = (delay: number, path: string, reverse: boolean) =>
    plotPoints.find((p) => p.delay === delay && p.path === path && p.reverse === reverse);
  const cell = (p: PlotPoint | undefined) =>
    p === undefined || !Number.isFinite(p.bps) ? "failed" : `${(p.bps / 1e9).toFixed(2)}`;
  console.log(
    `\n## Single-stream throughput (Gbit/s) against added round trip (iperf3 -t ${settings.seconds}, ` +
      "one run per point; every point through delay_line.ts, half the round trip each way)",
  );
  const cols = paths.flatMap((p) => [false, true].map((r) => `${p}, ${dir(r)}`));
  const ratioCols = paths.slice(1).flatMap((p) =>
    [false, true].map((r) => `${p} / port-forward, ${r ? "←" : "→"}`)
  );
  console.log(`| added RTT | ${[...cols, ...ratioCols].join(" | ")} |`);
  console.log(`|---|${[...cols, ...ratioCols].map(() => "---").join("|")}|`);
  for (const d of plotDelays) {
    const cells = paths.flatMap((p) => [false, true].map((r) => cell(at(d, p, r))));
    const ratios = paths.slice(1).flatMap((p) =>
      [false, true].map((r) => {
        const a = at(d, "port-forward", r)?.bps ?? NaN, b = at(d, p, r)?.bps ?? NaN;
        return Number.isFinite(a / b) ? `${(b / a).toFixed(2)}×` : "–";
      })
    );
    console.log(`| ${d} ms | ${[...cells, ...ratios].join(" | ")} |`);
  }
  const git = async (...a: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command("git", { args: ["-C", ROOT, ...a], stderr: "null" }).output())
        .stdout,
    ).trim();
  const commit = (await git("rev-parse", "--short", "HEAD")) || "unknown";
  const dirty = (await git("status", "--porcelain", "--untracked-files=no")) !== "";
  const colors: Record<string, string> = { "port-forward": "#d62728", kconnect: "#1f77b4" };
  const spare = ["#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const series: ChartSeries[] = paths.flatMap((p, i) =>
    [false, true].map((reverse) => ({
      name: `${p}, ${dir(reverse)}`,
      color: colors[p] ?? spare[(i - 1) % spare.length],
      dashed: reverse,
      points: plotDelays.map((d) => ({ x: d, y: (at(d, p, reverse)?.bps ?? NaN) / 1e9 })),
    }))
  );
  const when = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const svg = lineChartSvg({
    title: "Single-stream TCP throughput against added round trip: kconnect vs port-forward",
    xLabel: "round trip added between laptop and API server (ms)",
    yLabel: "iperf3 throughput, one stream (Gbit/s)",
    series,
    formatY: (y) => y.toFixed(2),
    caption: [
      `${when} · ${navigator.hardwareConcurrency} cores · kconnect commit ${commit}` +
      `${dirty ? " + uncommitted changes" : ""} · Deno ${Deno.version.deno}`,
      `Load average (1, 5, 15 min) at the start of the run ${loadAtStart.join(" ")}, at the end ` +
      `${(await loadavg()).join(" ")}.`,
      `One run per point, iperf3 -t ${settings.seconds}, one stream: laptop namespace → echo ` +
      "pod through the API server stand-in (tests/cluster).",
      "Round trip added by tests/cluster/delay_line.ts between laptop and API server, half " +
      "each way, at every point (0 ms too).",
      "port-forward: bench/pf_client.ts, one WebSocket per connection; kconnect: kconnect up, " +
      `${variants.length > 1 ? "variants as named" : "default settings"}.`,
      "Made by bench/vs_portforward.ts --plot.",
    ],
  });
  const slash = plotFile.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(plotFile.slice(0, slash), { recursive: true });
  await Deno.writeTextFile(plotFile, svg);
  console.log(`\nwrote ${plotFile} (commit ${commit}${dirty ? ", uncommitted changes" : ""})`);
}
if (lineRestarts > 0) console.log(`\n(the delay line was restarted ${lineRestarts} times)`);

// ---- memory and scale ----------------------------------------------------------------------

if (scaleN > 0) {
  const notes: string[] = [];
  console.log(`\n${await raiseNofile(scaleN + 1024)}`);
  const scale: ScaleResult[] = [];
  // Defaults first; while a configuration does not hold them all, the next step: the manager's
  // limits raised, then also the client's flags.
  const configs: ScaleConfig[] = [
    { name: "defaults", upFlags: [], managerFlags: null },
    { name: "manager limits raised", upFlags: [], managerFlags: scaleManagerFlags },
    {
      name: `manager limits raised, ${scaleUpFlags.join(" ")}`,
      upFlags: scaleUpFlags,
      managerFlags: scaleManagerFlags,
    },
  ];
  console.log(`\nscale: ${scaleN} connections (${elapsed()})`);
  for (const config of configs) {
    const r = await scaleRun(config, scaleN, (line) => console.log(line));
    scale.push(r);
    if (r.opened === scaleN && r.answered === scaleN) break;
    notes.push(`"${config.name}" held ${r.opened} of ${scaleN} (${r.answered} answered).`);
  }
  printScale(scale, notes);
}
console.log(`\ntotal ${elapsed()}`);
