// deno-lint-ignore-file no-console
/**
 * Data-path benchmark: iperf3 TCP throughput through kconnect's TUN and flow engine
 * (`kconnect forward`, destinations mapped to loopback) against iperf3 over plain loopback in
 * the same namespace and the same run, at several TUN MTUs. Prints a table; asserts nothing.
 *
 *   sudo deno run -A bench/dataplane.ts [--seconds 5] [--mtu 1500,9000,65000] [--parallel 1]
 *
 * @module
 */
import { dataplaneHost } from "../tests/_dataplane.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
}

const seconds = Number(arg("seconds", "5"));
const mtus = arg("mtu", "1500,9000,65000").split(",").map(Number);
const parallel = Number(arg("parallel", "1"));

interface Result {
  gbps: number;
  retransmits: number;
}

async function iperf(
  host: Awaited<ReturnType<typeof dataplaneHost>>,
  target: string,
): Promise<Result> {
  const r = await host.ns.exec([
    "iperf3",
    "-c",
    target,
    "-p",
    "5201",
    "-t",
    String(seconds),
    "-P",
    String(parallel),
    "-J",
  ]);
  const j = JSON.parse(r.stdout);
  return {
    gbps: j.end.sum_received.bits_per_second / 1e9,
    retransmits: j.end.sum_sent.retransmits ?? 0,
  };
}

if (Deno.uid() !== 0) {
  console.error("bench/dataplane.ts needs root (network namespaces and a TUN device)");
  Deno.exit(1);
}

console.log(`iperf3 -t ${seconds} -P ${parallel}, TCP, one 2-core machine, same run`);
console.log("path                         | Gbit/s | retransmits | ratio to loopback");
console.log("-----------------------------|--------|-------------|------------------");
for (const mtu of mtus) {
  await using host = await dataplaneHost(`bench${mtu}`, ["--mtu", String(mtu)]);
  const server = host.spawn(["iperf3", "-s", "-p", "5201"]);
  await host.waitForPort(5201);
  const loop = await iperf(host, "127.0.0.1");
  const tun = await iperf(host, "10.96.0.1");
  const tun6 = await iperf(host, "fd00:96::1");
  const row = (name: string, r: Result) =>
    console.log(
      `${name.padEnd(29)}| ${r.gbps.toFixed(2).padStart(6)} | ${
        String(r.retransmits).padStart(11)
      } | ${(r.gbps / loop.gbps).toFixed(3)}`,
    );
  row(`loopback (baseline)`, loop);
  row(`kconnect TUN mtu ${mtu} IPv4`, tun);
  row(`kconnect TUN mtu ${mtu} IPv6`, tun6);
  server.child.kill();
}
