// deno-lint-ignore-file no-console
/**
 * Runs every benchmark in turn (`deno task bench`, as root) and prints their tables:
 * TUN packet I/O (bench/tun_io.ts), iperf3 through the whole data path against loopback
 * (bench/dataplane.ts), and laptop → pod through `kconnect up` on the test cluster against a
 * direct route, also with 20 ms to the API server (bench/cluster.ts), kconnect against a
 * per-connection port-forward client (bench/vs_portforward.ts, its tables), and DNS through
 * kconnect against the cluster's DNS and the laptop's resolver before and during `up`
 * (bench/dns.ts), how long reconnecting takes after an API server restart and a black hole
 * (bench/reconnect.ts), the manager's memory under a hostile client
 * (bench/manager_budget.ts), and the CPU floor of one relay hop in Deno (bench/relay_floor.ts).
 * Extra arguments pick benchmarks by name: `deno task bench dataplane`. Each runs with its default options; for others (e.g. bench/vs_portforward.ts's
 * `--plot` and `--scale`) run the file itself.
 *
 * @module
 */
import { DENO_RUN } from "../tests/_dataplane.ts";

const all = [
  "tun_io",
  "dataplane",
  "cluster",
  "vs_portforward",
  "dns",
  "reconnect",
  "manager_budget",
  "relay_floor",
];
const picked = Deno.args.length > 0 ? all.filter((b) => Deno.args.includes(b)) : all;
let failed = 0;
for (const name of picked) {
  console.log(`\n#### bench/${name}.ts`);
  const [deno, ...lead] = DENO_RUN;
  const st = await new Deno.Command(deno, {
    args: [...lead, "-A", "--unstable-net", new URL(`./${name}.ts`, import.meta.url).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!st.success) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
