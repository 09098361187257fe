// deno-lint-ignore-file no-console
/**
 * The main job, shown end to end on one machine (`deno task demo`, as root): a network
 * namespace stands in for a laptop, `kconnect forward` routes 10.96.0.0/12 and fd00:96::/64
 * into its TUN and dials every flow to servers on the namespace's loopback, and ordinary
 * programs (curl, dig) reach those servers by the routed addresses. Everything is removed at
 * the end.
 *
 * @module
 */
import { dataplaneHost } from "./_dataplane.ts";

if (Deno.uid() !== 0) {
  console.error("the demo needs root: it creates a network namespace and a TUN device");
  Deno.exit(1);
}

const step = (s: string) => console.log(`\n== ${s}`);

step("starting kconnect forward in a fresh network namespace");
await using host = await dataplaneHost("demo");
console.log(host.forward.out.text());

step("workloads on the namespace's loopback: an HTTP server and dnsmasq");
const dir = await Deno.makeTempDir({ prefix: "kc-demo-" });
try {
  await Deno.writeTextFile(`${dir}/index.html`, "hello through kconnect\n");
  host.spawn(["python3", "-m", "http.server", "8080", "--bind", "::", "--directory", dir]);
  host.spawn([
    "dnsmasq",
    "--no-daemon",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--bind-interfaces",
    "--listen-address=127.0.0.1",
    "--port=5353",
    "--address=/web.demo/10.96.0.1",
  ]);
  await host.waitForPort(8080);
  await host.waitForPort(5353, "udp");

  const show = async (cmd: string[]) => {
    console.log(`$ ${cmd.join(" ")}`);
    const r = await host.ns.exec(cmd, { check: false });
    console.log((r.stdout + r.stderr).trimEnd());
  };
  step("TCP through the TUN (IPv4 and IPv6)");
  await show(["curl", "-sS", "-m", "5", "http://10.96.0.1:8080/index.html"]);
  await show(["curl", "-sS", "-m", "5", "http://[fd00:96::1]:8080/index.html"]);
  step("UDP through the TUN");
  await show(["dig", "+short", "-p", "5353", "@10.96.0.1", "web.demo"]);
  step("a closed port is refused at once");
  await show(["curl", "-sS", "-m", "5", "http://10.96.0.1:9/"]);
} finally {
  await Deno.remove(dir, { recursive: true });
}
step("stopping kconnect");
await host.stopForward();
console.log(host.forward.out.text().split("\n").at(-1));
