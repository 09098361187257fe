// deno-lint-ignore-file no-console
/**
 * Whole-path benchmark: laptop → pod through `kconnect up` (TUN, flow engine, yamux over
 * `pods/portforward` WebSockets, the API server stand-in, the traffic manager) against a direct
 * veth route to the same pod, in the same run, on the test cluster (tests/cluster). Three
 * scenarios, one table each:
 *
 * 1. direct: an extra veth laptop ↔ cluster namespace with 10.244.0.0/24 routed over it (removed
 *    afterwards, and checked unreachable, before kconnect starts);
 * 2. kconnect: `kconnect up` against the API server at 100.64.0.1:6443;
 * 3. kconnect +20 ms: the same with every packet between the laptop and the API server's
 *    namespace held 10 ms each way by tests/cluster/delay_line.ts (TCP end to end), plus iperf3
 *    from the laptop to an iperf3 server in the API server's namespace through the line alone
 *    as the ceiling of that path.
 *
 * Each scenario: iperf3 one stream and 8 streams, 64-byte request/response latency on one
 * connection, and new-connection latency (connect + one 64-byte request/reply + close), all to
 * servers bound to the echo pod's IP 10.244.0.12. During each iperf3 run (unless `--no-cpu`) the
 * machine's busy share and the CPU use of every process in the benchmark's namespaces (% of one
 * core; the busiest thread too when it differs) are sampled, and the TUN's tx_dropped counter
 * is read before and after (those drops are the laptop-side retransmits). Prints tables;
 * asserts nothing. About a minute.
 *
 *   sudo deno run -A --unstable-net bench/cluster.ts [--seconds 5] [--delay 10] [--no-cpu]
 *
 * @module
 */
import { TestCluster } from "../tests/cluster/cluster.ts";
import { API_LAPTOP_IP, IPS } from "../tests/cluster/topology.ts";
import { waitListening } from "../tests/cluster/workloads.ts";
import type { Netns } from "../tests/_netns.ts";
import {
  DelayLine,
  type Iperf,
  iperf,
  type Latency,
  netprobe,
  rate,
  type Results,
  settings,
  us,
} from "./_cluster_lib.ts";
import { startUp, type UpProcess } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";
import { DEFAULT_SESSION_OPTIONS } from "../src/tunnel/config.ts";

const maxWindow = DEFAULT_SESSION_OPTIONS.maxWindow;

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
}

const seconds = Number(arg("seconds", "5"));
const delayMs = Number(arg("delay", "10"));
const sampleCpu = !Deno.args.includes("--no-cpu");
settings.seconds = seconds;
settings.sampleCpu = sampleCpu;

const POD = IPS.echo;
const IPERF_PORT = 5201;
const RR_PORT = 7100;
const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;
const DIRECT = { laptop: "100.64.9.1", cluster: "100.64.9.2", route: "10.244.0.0/24" };

async function measure(laptop: Netns, watch: Netns[], slow: boolean): Promise<Results> {
  const one = await iperf(laptop, POD, IPERF_PORT, 1, watch);
  const eight = await iperf(laptop, POD, IPERF_PORT, 8, watch);
  const rr = await netprobe<Latency>(laptop, "rr-client", {
    host: POD,
    port: RR_PORT,
    n: 5000,
    ms: slow ? 5000 : 3000,
    warmup: slow ? 5 : 50,
  });
  const conn = await netprobe<Results["conn"]>(laptop, "connect-client", {
    host: POD,
    port: RR_PORT,
    n: 1000,
    ms: slow ? 6000 : 3000,
  });
  return { one, eight, rr, conn };
}

// ---- output --------------------------------------------------------------------------------

function table(title: string, r: Results, base: Results | null): void {
  console.log(`\n## ${title}`);
  console.log(
    "measurement                    | result                              | retransmits | vs direct",
  );
  console.log(
    "-------------------------------|-------------------------------------|-------------|----------",
  );
  const row = (name: string, result: string, retr: string, ratio: string) =>
    console.log(
      `${name.padEnd(31)}| ${result.padEnd(36)}| ${retr.padStart(11)} | ${ratio}`,
    );
  const tput = (name: string, x: Iperf, b: Iperf | undefined) =>
    row(
      name,
      rate(x.bps),
      x.retransmits === null ? "n/a" : String(x.retransmits),
      b ? `${(x.bps / b.bps).toFixed(3)}×` : "1.000×",
    );
  const lat = (name: string, x: Latency, b: Latency | undefined) =>
    row(
      name,
      `p50 ${us(x.p50)}, p99 ${us(x.p99)} (n=${x.n})`,
      "",
      b ? `p50 ${(x.p50 / b.p50).toFixed(1)}×, p99 ${(x.p99 / b.p99).toFixed(1)}×` : "1.0×",
    );
  tput(`iperf3 -t ${seconds}, 1 stream`, r.one, base?.one);
  tput(`iperf3 -t ${seconds}, 8 streams`, r.eight, base?.eight);
  lat("64 B request/response", r.rr, base?.rr);
  lat("connect + 64 B rr + close", r.conn, base?.conn);
  lat("  of which connect()", r.conn.connect, base?.conn.connect);
  console.log(
    `connect() p50 = ${(r.conn.connect.p50 / r.rr.p50).toFixed(1)} × the request/response p50`,
  );
  if (sampleCpu) {
    const cores = navigator.hardwareConcurrency;
    console.log(`CPU (% of one core; ${cores} cores) during 1 stream: ${r.one.cpu || "n/a"}`);
    console.log(`CPU (% of one core; ${cores} cores) during 8 streams: ${r.eight.cpu || "n/a"}`);
  }
}

// ---- the run -------------------------------------------------------------------------------

if (Deno.uid() !== 0) {
  console.error("bench/cluster.ts needs root (network namespaces and a TUN device)");
  Deno.exit(1);
}

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
console.log(
  `laptop → pod ${POD} (test cluster, network namespaces), one ${navigator.hardwareConcurrency}-` +
    `core machine, all scenarios in the same run; iperf3 TCP -t ${seconds}; latencies from ` +
    `tests/fixtures/netprobe.ts (Deno client, TCP_NODELAY)`,
);

await using cluster = await TestCluster.start();
const { laptop, apiserverNs, clusterNs } = cluster;
const all = [laptop, apiserverNs, clusterNs];

// Servers bound to the echo pod's IP in the cluster namespace.
clusterNs.spawn(["iperf3", "-s", "-B", POD, "-p", String(IPERF_PORT)]);
clusterNs.spawn([...DENO_RUN, "-A", NETPROBE, "rr-server", `host=${POD}`, `port=${RR_PORT}`]);
await waitListening(clusterNs, null, POD, IPERF_PORT);
await waitListening(clusterNs, null, POD, RR_PORT);

// 1. Direct route.
await laptop.veth(clusterNs, {
  name: "direct0",
  peerName: "direct0",
  address: `${DIRECT.laptop}/30`,
  peerAddress: `${DIRECT.cluster}/30`,
});
await laptop.exec(["ip", "route", "add", DIRECT.route, "via", DIRECT.cluster, "dev", "direct0"]);
// The laptop's address is on-link in the cluster namespace (/30); the explicit host route
// only states it.
await clusterNs.exec(["ip", "route", "replace", `${DIRECT.laptop}/32`, "dev", "direct0"]);
const direct = await measure(laptop, all, false);
table("1. direct route (veth laptop ↔ cluster namespace, no kconnect): baseline", direct, null);

await laptop.exec(["ip", "route", "del", DIRECT.route]);
await clusterNs.exec(["ip", "route", "del", `${DIRECT.laptop}/32`]);
await laptop.exec(["ip", "link", "del", "direct0"]);
const routeGet = await laptop.exec(["ip", "route", "get", POD], { check: false });
const ping = await laptop.exec(["ping", "-c", "1", "-W", "1", POD], { check: false });
if (routeGet.code === 0 || ping.code === 0) {
  throw new Error(`${POD} is still reachable from the laptop after removing the direct route`);
}
console.log(
  `direct route removed: \`ip route get ${POD}\`: ${routeGet.stderr.trim()}; ping fails ` +
    `(${elapsed()})`,
);

function tunnelLine(up: UpProcess): string {
  const text = up.out.text() + up.err.text();
  return /tunnel open[^\n]*/.exec(text)?.[0].replace(/\s+/g, " ") ?? "";
}

// 2. Through kconnect.
let viaKconnect: Results;
{
  await using up = await startUp(laptop, ["--kubeconfig", cluster.kubeconfig]);
  console.log(`\nkconnect up ready (${elapsed()}): ${tunnelLine(up)}`);
  viaKconnect = await measure(laptop, all, false);
}
table("2. through kconnect up (API server at 100.64.0.1:6443)", viaKconnect, direct);

// 3. Through kconnect with `delayMs` each way between the laptop and the API server: every packet
// between them waits in tests/cluster/delay_line.ts (TCP end to end). Its ceiling: iperf3 from
// the laptop straight to an iperf3 server in the API server's namespace, through the line.
apiserverNs.spawn(["iperf3", "-s", "-B", API_LAPTOP_IP, "-p", String(IPERF_PORT)]);
await waitListening(apiserverNs, null, API_LAPTOP_IP, IPERF_PORT);
const line = new DelayLine(apiserverNs);
await line.start(delayMs);
let delayed: Results;
let lineOne: Iperf, lineEight: Iperf;
try {
  lineOne = await iperf(laptop, API_LAPTOP_IP, IPERF_PORT, 1, all);
  lineEight = await iperf(laptop, API_LAPTOP_IP, IPERF_PORT, 8, all);
  await using up = await startUp(laptop, ["--kubeconfig", cluster.kubeconfig]);
  console.log(`\nkconnect up ready (${elapsed()}), through the delay line: ${tunnelLine(up)}`);
  delayed = await measure(laptop, all, true);
} finally {
  await line.stop();
}
if (line.restarts > 0) console.log(`!! the delay line was restarted ${line.restarts} times`);
table(
  `3. through kconnect up, +${2 * delayMs} ms round trip laptop ↔ API server ` +
    `(delay_line.ts, ${delayMs} ms each way)`,
  delayed,
  direct,
);
console.log(
  `path ceiling, iperf3 laptop → API server namespace through the delay line (no kconnect): ` +
    `1 stream ${rate(lineOne.bps)}, 8 streams ${rate(lineEight.bps)}`,
);
if (sampleCpu) console.log(`CPU during the line-alone 1 stream: ${lineOne.cpu || "n/a"}`);
const bdp = (bps: number) => `${(bps * 2 * delayMs / 1000 / 8 / 2 ** 20).toFixed(1)} MiB`;
console.log(
  `window needed at ${2 * delayMs} ms: ${
    bdp(delayed.one.bps)
  } in flight for the 1-stream result, ` +
    `${bdp(1e9)} per Gbit/s; the laptop's stream windows grow to ${maxWindow >> 20} MiB (${
      rate(maxWindow * 8 / (2 * delayMs / 1000))
    } per stream at this round trip), one TCP connection's to its send buffer`,
);
console.log("Telepresence reports about 20 Mbit/s through its gRPC tunnel at this delay");
console.log(`\ntotal ${elapsed()}`);
