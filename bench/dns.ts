// deno-lint-ignore-file no-console
/**
 * DNS benchmark on the test cluster (tests/cluster), all in one run, latency (p50/p99) and
 * queries per second, with the cluster's own DNS as the baseline:
 *
 * 1. baseline: in the cluster namespace, straight to the cluster DNS 10.96.0.10 (dnsmasq,
 *    authoritative for cluster.local): a known name repeated, unique random names below
 *    `default.svc.cluster.local` (NXDOMAIN) back to back and also one every 50 ms (as an
 *    application asks: every hop wakes from idle), and 64 queries outstanding for 3 s of each;
 * 2. through kconnect: `kconnect up --dns resolv.conf` in the laptop namespace, a dig-style UDP
 *    client to kconnect's server 198.18.0.3: the same four (cached: kconnect's cache answers;
 *    unique names: every query goes through the tunnel to the cluster DNS), an outside name
 *    (forwarded to the laptop's upstream) against asking that upstream directly, and as the
 *    tunnel's yardstick a 64-byte TCP request/response on an open connection and a new
 *    connection (one stream open) to the echo pod;
 * 3. through the laptop's system resolver, as programs resolve: glibc `getaddrinfo(name, NULL,
 *    AF_UNSPEC, SOCK_STREAM)` in a python3 loop (one A and one AAAA query per call, sent
 *    together; the search list is walked only for names that do not exist), before and during
 *    `kconnect up`: the cluster name repeated, unique cluster names that exist (added to the
 *    cluster DNS's hosts file for the run), an outside name (`www.example.com`, answered by the
 *    laptop's upstream dnsmasq) and unique outside names that do not exist.
 *
 * During each 64-outstanding run the CPU of every process in the namespaces is sampled (% of
 * one core). The clients are tests/fixtures/dns_bench.ts. Prints tables; asserts nothing.
 * About a minute.
 *
 *   sudo deno run -A --unstable-net bench/dns.ts
 *
 * @module
 */
import { TestCluster } from "../tests/cluster/cluster.ts";
import { DNS_IP, IPS, LAPTOP_IP } from "../tests/cluster/topology.ts";
import type { Netns } from "../tests/_netns.ts";
import { startUp } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";

const CLIENT = `${ROOT}tests/fixtures/dns_bench.ts`;
const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;
const KCONNECT_DNS = "198.18.0.3";
const WEB = "web.default.svc.cluster.local";
const UNIQUE = "random:default.svc.cluster.local";
const OUTSIDE = "www.example.com";
const LOAD = 64;
const tag = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
/** Names added to the cluster DNS for this run: `gai-<tag>-<i>.default.svc.cluster.local`. */
const EXTRA_NAMES = 4000;

interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  qps: number;
}
interface Udp extends Summary {
  seconds: number;
  sent: number;
  lost: number;
  late: number;
  rcodes: Record<string, number>;
  withAnswers: number;
  truncated: number;
  clientCpu: number;
  cpu?: string;
}
interface Gai extends Summary {
  fails: number;
  addrs: string[];
}

// ---- CPU sampling (/proc) ------------------------------------------------------------------

function labelOf(cmd: string): string {
  const known: [RegExp, string][] = [
    [/main\.ts up\b/, "kconnect up"],
    [/traffic-manager/, "traffic manager"],
    [/apiserver\.ts/, "API server stand-in"],
    [/dnsmasq .*upstream-dns/, "laptop upstream dnsmasq"],
    [/dnsmasq .*dnsmasq\.conf/, "cluster DNS dnsmasq"],
    [/dns_bench\.ts/, "bench client"],
    [/kubelet_server\.ts/, "kubelet"],
  ];
  for (const [re, name] of known) if (re.test(cmd)) return name;
  return cmd.split(" ")[0].split("/").pop() ?? "?";
}

async function ticksOf(path: string): Promise<number> {
  const s = await Deno.readTextFile(path);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function snapshot(namespaces: Netns[]): Promise<Map<number, [string, number]>> {
  const m = new Map<number, [string, number]>();
  for (const ns of namespaces) {
    const r = await new Deno.Command("ip", { args: ["netns", "pids", ns.name] }).output();
    for (const pid of new TextDecoder().decode(r.stdout).split(/\s+/).filter(Boolean)) {
      try {
        const cmd = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").join(" ");
        m.set(Number(pid), [labelOf(cmd), await ticksOf(`/proc/${pid}/stat`)]);
      } catch { /* gone */ }
    }
  }
  return m;
}

function cpuLine(a: Map<number, [string, number]>, b: Map<number, [string, number]>, ms: number) {
  const by = new Map<string, number>();
  for (const [pid, [label, t]] of b) {
    const before = a.get(pid);
    if (!before) continue;
    by.set(label, (by.get(label) ?? 0) + (t - before[1]) * 10 / ms * 100);
  }
  return [...by].filter(([, p]) => p >= 3).sort((x, y) => y[1] - x[1])
    .map(([l, p]) => `${l} ${p.toFixed(0)}%`).join(", ");
}

// ---- clients -------------------------------------------------------------------------------

async function json<T>(ns: Netns, cmd: string[]): Promise<T> {
  const r = await ns.exec(cmd, { signal: AbortSignal.timeout(60_000) });
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

function params(p: Record<string, string | number>): string[] {
  return Object.entries(p).map(([k, v]) => `${k}=${v}`);
}

async function udp(
  ns: Netns,
  p: Record<string, string | number>,
  watch: Netns[] | null = null,
): Promise<Udp> {
  const run = json<Udp>(ns, [...DENO_RUN, "-A", "--unstable-net", CLIENT, "udp", ...params(p)]);
  if (watch === null) return await run;
  // The client starts in ~0.3 s and warms up; sample the middle of the run.
  await new Promise((r) => setTimeout(r, 900));
  const a = await snapshot(watch);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 1600));
  const b = await snapshot(watch);
  const cpu = cpuLine(a, b, performance.now() - t0);
  return { ...await run, cpu };
}

const latency = (server: string, name: string) => ({ server, name, n: 3000, ms: 2000, warmup: 50 });
/** Unique names one at a time, each 50 ms after the last answer, as an application asks. */
const spaced = (server: string) => ({ server, name: UNIQUE, n: 40, ms: 3000, warmup: 3, gap: 50 });
const load = (server: string, name: string) => ({
  server,
  name,
  concurrency: LOAD,
  n: 1e9,
  ms: 3000,
  warmup: 500,
  timeout: 1000,
});

function gai(ns: Netns, name: string, extra: Record<string, number> = {}): Promise<Gai> {
  return json<Gai>(ns, [...DENO_RUN, "-A", CLIENT, "gai", ...params({ name, ...extra })]);
}

// ---- output --------------------------------------------------------------------------------

function us(v: number): string {
  if (!Number.isFinite(v)) return "–";
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`;
}

function qps(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "–";
  return v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

function outcome(r: Udp): string {
  const total = Object.values(r.rcodes).reduce((a, b) => a + b, 0);
  const parts = Object.entries(r.rcodes).sort((a, b) => b[1] - a[1]).map(([k, v]) =>
    v === total ? k : `${k} ${(v / total * 100).toFixed(1)}%`
  );
  if (r.withAnswers > 0 && r.withAnswers < total) parts.push(`${r.withAnswers} with records`);
  if (r.truncated > 0) parts.push(`${r.truncated} TC`);
  return parts.join(", ") || "no answers";
}

const W = 64;
const HEAD = "measurement".padEnd(W) + "|      p50 |      p99 |     qps |      n | lost | answers";

function header(title: string, extra = ""): void {
  console.log(`\n## ${title}`);
  console.log(HEAD + extra);
  console.log(HEAD.replace(/[^|]/g, "-") + extra.replace(/[^|]/g, "-"));
}

function row(name: string, r: Summary & { lost?: number }, rest: string, vs = ""): void {
  console.log(
    `${name.padEnd(W)}| ${us(r.p50).padStart(8)} | ${us(r.p99).padStart(8)} | ` +
      `${qps(r.qps).padStart(7)} | ${String(r.n).padStart(6)} | ${
        String(r.lost ?? "").padStart(4)
      } | ${rest}${vs ? ` | ${vs}` : ""}`,
  );
}

function vsLatency(x: Summary, b: Summary): string {
  if (!(x.n > 0 && b.n > 0)) return "–";
  const d = x.p50 - b.p50;
  return `p50 ${d >= 0 ? "+" : "−"}${us(Math.abs(d))} (${(x.p50 / b.p50).toFixed(1)}×)`;
}

function vsQps(x: Summary, b: Summary): string {
  return `qps ${(x.qps / b.qps).toFixed(2)}×`;
}

// ---- the run -------------------------------------------------------------------------------

if (Deno.uid() !== 0) {
  console.error("bench/dns.ts needs root (network namespaces and a TUN device)");
  Deno.exit(1);
}
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
console.log(
  `DNS on the test cluster (network namespaces), one ${navigator.hardwareConcurrency}-core ` +
    `machine, all in the same run. UDP rows: tests/fixtures/dns_bench.ts (Deno, one socket, A ` +
    `queries, no EDNS); 1 outstanding for latency (qps = 1/mean), ${LOAD} outstanding for 3 s ` +
    `for qps (p50/p99 then are under that load). Latencies client-side, answer received − ` +
    `query sent.`,
);

await using cluster = await TestCluster.start();
const { laptop, apiserverNs, clusterNs } = cluster;
const all = [laptop, apiserverNs, clusterNs];
console.log(`cluster up (${elapsed()})`);

// Unique names that exist, for getaddrinfo: appended to the cluster DNS's hosts file, and
// dnsmasq re-reads it on SIGHUP.
{
  const lines = Array.from(
    { length: EXTRA_NAMES },
    (_, i) =>
      `10.96.${100 + Math.floor(i / 250)}.${
        (i % 250) + 1
      } gai-${tag}-${i}.default.svc.cluster.local`,
  );
  await Deno.writeTextFile(`${cluster.dir}/dns-hosts`, lines.join("\n") + "\n", { append: true });
  const out = await new Deno.Command("ip", { args: ["netns", "pids", clusterNs.name] }).output();
  const pids = new TextDecoder().decode(out.stdout).split(/\s+/);
  let hup = 0;
  for (const pid of pids.filter(Boolean)) {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmd.startsWith("dnsmasq\0") && cmd.includes(`${cluster.dir}/dnsmasq.conf`)) {
      Deno.kill(Number(pid), "SIGHUP");
      hup++;
    }
  }
  if (hup !== 1) throw new Error(`found ${hup} cluster dnsmasq processes, expected 1`);
  const last = `gai-${tag}-${EXTRA_NAMES - 1}.default.svc.cluster.local`;
  for (let i = 0;; i++) {
    const r = await clusterNs.exec(["dig", "+short", "+time=1", "+tries=1", `@${DNS_IP}`, last], {
      check: false,
    });
    if (r.stdout.trim() === `10.96.${100 + Math.floor((EXTRA_NAMES - 1) / 250)}.250`) break;
    if (i > 50) throw new Error(`the cluster DNS does not know ${last}: ${r.stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// 1. Baseline: the cluster DNS from inside the cluster.
const base = {
  cached: await udp(clusterNs, latency(DNS_IP, WEB)),
  unique: await udp(clusterNs, latency(DNS_IP, UNIQUE)),
  spaced: await udp(clusterNs, spaced(DNS_IP)),
  loadCached: await udp(clusterNs, load(DNS_IP, WEB), all),
  loadUnique: await udp(clusterNs, load(DNS_IP, UNIQUE), all),
};
console.log(`baseline done (${elapsed()})`);

// 3a. The laptop before kconnect: its upstream directly, and getaddrinfo.
const before = {
  upstream: await udp(laptop, latency(LAPTOP_IP, OUTSIDE)),
  outside: await gai(laptop, OUTSIDE),
  missing: await gai(laptop, "nosuch-{r}-{i}.example.com"),
};
console.log(`laptop before kconnect done (${elapsed()})`);

// 2 and 3b. Through kconnect.
let during;
{
  await using up = await startUp(laptop, [
    "--kubeconfig",
    cluster.kubeconfig,
    "--dns",
    "resolv.conf",
  ]);
  const dnsLine = /DNS: resolv\.conf[^\n]*/.exec(up.out.text())?.[0] ?? "(no DNS line)";
  const conf = (await Deno.readTextFile(cluster.laptopResolvConf)).split("\n")
    .filter((l) => l && !l.startsWith("#")).join("; ");
  console.log(`kconnect up ready (${elapsed()}): ${dnsLine}\n  resolv.conf: ${conf}`);
  const rr = await json<Summary>(laptop, [
    ...DENO_RUN,
    "-A",
    NETPROBE,
    "rr-client",
    ...params({ host: IPS.echo, port: 7, n: 3000, ms: 1500, warmup: 50 }),
  ]);
  const conn = await json<Summary & { connect: Summary }>(laptop, [
    ...DENO_RUN,
    "-A",
    NETPROBE,
    "connect-client",
    ...params({ host: IPS.echo, port: 7, n: 1000, ms: 1500 }),
  ]);
  during = {
    rr,
    conn,
    cached: await udp(laptop, latency(KCONNECT_DNS, WEB)),
    unique: await udp(laptop, latency(KCONNECT_DNS, UNIQUE)),
    spaced: await udp(laptop, spaced(KCONNECT_DNS)),
    outside: await udp(laptop, latency(KCONNECT_DNS, OUTSIDE)),
    loadCached: await udp(laptop, load(KCONNECT_DNS, WEB), all),
    loadUnique: await udp(laptop, load(KCONNECT_DNS, UNIQUE), all),
    gaiWeb: await gai(laptop, WEB),
    gaiUnique: await gai(laptop, `gai-${tag}-{i}.default.svc.cluster.local`, { n: EXTRA_NAMES }),
    gaiOutside: await gai(laptop, OUTSIDE),
    gaiMissing: await gai(laptop, "nosuch-{r}-{i}.example.com"),
  };
  const drops = /dnsDropped=\d+/.exec(up.err.text())?.[0];
  if (drops) console.log(`kconnect: ${drops}`);
}
console.log(`kconnect down (${elapsed()})`);

// ---- tables --------------------------------------------------------------------------------

header("1. baseline: cluster namespace → cluster DNS 10.96.0.10 directly (dnsmasq)");
row(`(a) ${WEB} A, repeated`, base.cached, outcome(base.cached));
row("(b) unique random x.default.svc.cluster.local A", base.unique, outcome(base.unique));
row("(b) the same, one every 50 ms (not back to back)", base.spaced, outcome(base.spaced));
row(`(c) ${LOAD} outstanding, ${WEB}`, base.loadCached, outcome(base.loadCached));
row(`(c) ${LOAD} outstanding, unique random names`, base.loadUnique, outcome(base.loadUnique));
for (const [what, r] of [["cached", base.loadCached], ["unique", base.loadUnique]] as const) {
  console.log(
    `CPU (% of one core) during (c) ${what}: ${r.cpu}; bench client ${
      (r.clientCpu * 100).toFixed(0)
    }% of its measured window`,
  );
}

header(
  `2. laptop → kconnect's server ${KCONNECT_DNS} (UDP, dig-style), vs 1`,
  " | vs baseline",
);
row(
  `(a) ${WEB} A, repeated (kconnect's cache)`,
  during.cached,
  outcome(during.cached),
  vsLatency(during.cached, base.cached),
);
row(
  "(b) unique random names (each through the tunnel)",
  during.unique,
  outcome(during.unique),
  vsLatency(during.unique, base.unique),
);
row(
  "(b) the same, one every 50 ms (not back to back)",
  during.spaced,
  outcome(during.spaced),
  vsLatency(during.spaced, base.spaced),
);
row(
  `(c) ${LOAD} outstanding, ${WEB} (cache)`,
  during.loadCached,
  outcome(during.loadCached),
  vsQps(during.loadCached, base.loadCached),
);
row(
  `(c) ${LOAD} outstanding, unique names (tunnel)`,
  during.loadUnique,
  outcome(during.loadUnique),
  vsQps(during.loadUnique, base.loadUnique),
);
row(
  `${OUTSIDE} A via kconnect (forwarded upstream)`,
  during.outside,
  outcome(during.outside),
  vsLatency(during.outside, before.upstream),
);
row(
  `${OUTSIDE} A straight to the upstream ${LAPTOP_IP}`,
  before.upstream,
  outcome(before.upstream),
  "(before up; the reference for the row above)",
);
console.log(
  `tunnel yardstick (laptop → echo pod ${IPS.echo}:7 through kconnect): 64 B TCP ` +
    `request/response on an open connection p50 ${us(during.rr.p50)}, p99 ${
      us(during.rr.p99)
    }; connect() (one stream open) p50 ${us(during.conn.connect.p50)}, p99 ${
      us(during.conn.connect.p99)
    }; connect + 64 B rr + close p50 ${us(during.conn.p50)}`,
);
for (
  const [what, x, b] of [
    ["back to back", during.unique, base.unique],
    ["spaced 50 ms", during.spaced, base.spaced],
  ] as const
) {
  console.log(
    `uncached (b) ${what}: p50 − (tunnel rr p50 + baseline p50) = ${
      us(x.p50 - during.rr.p50 - b.p50)
    } beyond one tunnel round trip and the cluster DNS's own time`,
  );
}
for (const [what, r] of [["cached", during.loadCached], ["unique", during.loadUnique]] as const) {
  console.log(
    `CPU (% of one core) during (c) ${what}: ${r.cpu}; bench client ${
      (r.clientCpu * 100).toFixed(0)
    }% of its measured window`,
  );
}

console.log(
  `\n## 3. laptop's system resolver: glibc getaddrinfo(name, AF_UNSPEC, SOCK_STREAM) from ` +
    `python3, one call at a time (each call = A + AAAA sent together; qps = 1/mean)`,
);
const GHEAD = "name".padEnd(W) +
  "| before up: p50 / p99     | during up: p50 / p99     | qps during | result during | added p50";
console.log(GHEAD);
console.log(GHEAD.replace(/[^|]/g, "-"));
const gcol = (r: Gai | null) =>
  (r ? `${us(r.p50)} / ${us(r.p99)} (n=${r.n})` : "does not resolve").padEnd(25);
const gres = (
  r: Gai,
) => (r.fails === r.n ? "not found" : r.fails > 0 ? `${r.fails} failed` : r.addrs.join(" "));
const grow = (name: string, b: Gai | null, d: Gai) =>
  console.log(
    `${name.padEnd(W)}| ${gcol(b)}| ${gcol(d)}| ${qps(d.qps).padStart(10)} | ${gres(d)} | ${
      b ? vsLatency(d, b) : ""
    }`,
  );
grow(`${WEB}, repeated`, null, during.gaiWeb);
grow("unique gai-<i>.default.svc.cluster.local (exist)", null, during.gaiUnique);
grow(`${OUTSIDE} (laptop's upstream), repeated`, before.outside, during.gaiOutside);
grow("unique nosuch-<i>.example.com (NXDOMAIN, search list)", before.missing, during.gaiMissing);
console.log(
  "search list before: corp.example; during: the cluster's domains first, then corp.example " +
    "(kconnect answers the expansions below cluster.local itself)",
);
console.log(`\ntotal ${elapsed()}`);
