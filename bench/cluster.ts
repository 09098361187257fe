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
 * 3. kconnect +20 ms: the same through tests/cluster/delay_relay.ts in the API server's
 *    namespace (10 ms each way, 100.64.0.1:7443 → 127.0.0.1:6443), plus the relay alone
 *    (iperf3 through a second relay to an iperf3 server in the API server's namespace) as
 *    the ceiling of that path.
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
import { API_LAPTOP_IP, API_PORT, IPS } from "../tests/cluster/topology.ts";
import { waitListening } from "../tests/cluster/workloads.ts";
import type { Netns } from "../tests/_netns.ts";
import {
  delayRelayCommand,
  type Iperf,
  iperf,
  type Latency,
  netprobe,
  rate,
  RELAY_PORT,
  type Results,
  settings,
  us,
} from "./_cluster_lib.ts";
import { startUp, type UpProcess } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";

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
const RELAY_IPERF_PORT = 7444;
const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;
const RELAY = `${ROOT}tests/cluster/delay_relay.ts`;
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

// 3. Through kconnect with `delayMs` each way between the laptop and the API server.
const apiRelay = apiserverNs.spawn(delayRelayCommand(delayMs));
// The relay alone, as the ceiling of the delayed path: iperf3 through a relay of its own to an
// iperf3 server in the API server's namespace. delay_relay.ts exits when a write to a closed
// socket fails (an unhandled rejection in its writer), which iperf3's end of test can cause:
// then the control connection dies with it and only the sender's count is left, so one fresh
// relay per run, and the sender's rate when the receiver's is lost.
apiserverNs.spawn(["iperf3", "-s", "-B", "127.0.0.1", "-p", String(IPERF_PORT)]);
await waitListening(apiserverNs, null, "127.0.0.1", IPERF_PORT);
async function relayAlone(streams: number, port: number): Promise<Iperf & { note: string }> {
  const relay = apiserverNs.spawn([
    ...DENO_RUN,
    "-A",
    RELAY,
    "--listen",
    `${API_LAPTOP_IP}:${port}`,
    "--to",
    `127.0.0.1:${IPERF_PORT}`,
    "--delay",
    String(delayMs),
  ]);
  try {
    await waitListening(apiserverNs, null, API_LAPTOP_IP, port);
    return await iperf(laptop, API_LAPTOP_IP, port, streams, all, true);
  } finally {
    try {
      relay.kill();
    } catch { /* exited */ }
    await relay.status;
  }
}
const relayOne = await relayAlone(1, RELAY_IPERF_PORT);
const relayEight = await relayAlone(8, RELAY_IPERF_PORT + 1);
await waitListening(apiserverNs, null, API_LAPTOP_IP, RELAY_PORT);
let apiRelayExit: Deno.CommandStatus | null = null;
apiRelay.status.then((s) => apiRelayExit = s, () => {});

const kubeconfig = `${cluster.dir}/kubeconfig-delayed`;
const original = await Deno.readTextFile(cluster.kubeconfig);
const server = `https://${API_LAPTOP_IP}:${API_PORT}`;
if (!original.includes(server)) throw new Error(`${server} not found in the kubeconfig`);
await Deno.writeTextFile(
  kubeconfig,
  original.replaceAll(server, `https://${API_LAPTOP_IP}:${RELAY_PORT}`),
);
let delayed: Results;
{
  await using up = await startUp(laptop, ["--kubeconfig", kubeconfig]);
  console.log(`\nkconnect up ready (${elapsed()}), via the relay: ${tunnelLine(up)}`);
  delayed = await measure(laptop, all, true);
  if (apiRelayExit) {
    console.log(
      `!! the API server's delay relay exited (code ${
        (apiRelayExit as Deno.CommandStatus).code
      }) during the measurements`,
    );
  }
}
table(
  `3. through kconnect up, +${2 * delayMs} ms round trip laptop ↔ API server ` +
    `(delay_relay.ts ${delayMs} ms each way, 100.64.0.1:${RELAY_PORT})`,
  delayed,
  direct,
);
console.log(
  `path ceiling, iperf3 through delay_relay.ts alone (no kconnect): 1 stream ${
    rate(relayOne.bps)
  }${relayOne.note}, 8 streams ${rate(relayEight.bps)}${relayEight.note}`,
);
if (sampleCpu) console.log(`CPU during the relay-alone 1 stream: ${relayOne.cpu || "n/a"}`);
const bdp = (bps: number) => `${(bps * 2 * delayMs / 1000 / 8 / 2 ** 20).toFixed(1)} MiB`;
console.log(
  `window needed at ${2 * delayMs} ms: ${
    bdp(delayed.one.bps)
  } in flight for the 1-stream result, ` +
    `${bdp(1e9)} per Gbit/s; yamux windows grow to 16 MiB (${
      rate(16 * 2 ** 20 * 8 / (2 * delayMs / 1000))
    } per stream at this round trip)`,
);
console.log("Telepresence reports about 20 Mbit/s through its gRPC tunnel at this delay");
console.log(`\ntotal ${elapsed()}`);
