// deno-lint-ignore-file no-console
/**
 * The main job, end to end on one machine (`deno task demo`, as root): a test cluster made of
 * network namespaces (an API server stand-in, a "cluster" with pods, services, cluster DNS and
 * the traffic manager, and a "laptop" that can reach only the API server), then `kconnect up`
 * on the laptop, a few requests to pod and service IPs through the tunnel, and everything torn
 * down again.
 *
 * @module
 */
import { TestCluster } from "./cluster/cluster.ts";
import { startUp } from "./_up.ts";

if (Deno.uid() !== 0) {
  console.error("the demo needs root: it creates network namespaces and a TUN device");
  Deno.exit(1);
}

const step = (s: string) => console.log(`\n== ${s}`);

step("starting the test cluster (API server stand-in, pods, services, DNS, traffic manager)");
await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
console.log(`API server ${cluster.apiUrl}; kubeconfig ${cluster.kubeconfig}`);

const show = async (cmd: string[]) => {
  console.log(`$ ${cmd.join(" ")}`);
  const r = await cluster.laptop.exec(cmd, { check: false });
  console.log((r.stdout + r.stderr).trimEnd());
};

step("before kconnect: the laptop cannot reach the cluster's service IPs");
await show(["curl", "-sS", "-m", "3", "http://10.96.0.20/"]);

step("sudo kconnect up (in the laptop namespace)");
await using up = await startUp(cluster.laptop, ["--kubeconfig", cluster.kubeconfig]);
console.log(up.out.text());

step("requests through the tunnel");
await Deno.writeTextFile(
  `${cluster.webDir}/hello.txt`,
  "hello from the web pod, through kconnect\n",
);
await show(["curl", "-sS", "-m", "5", "http://10.96.0.20/hello.txt"]);
await show(["curl", "-sS", "-m", "5", "http://10.244.0.10:8080/hello.txt"]);
await show(["redis-cli", "-h", "10.96.0.21", "SET", "greeting", "hi"]);
await show(["redis-cli", "-h", "10.96.0.21", "GET", "greeting"]);
await show(["sh", "-c", "echo ping over UDP | socat -t 2 - UDP:10.96.0.22:7"]);
await show(["curl", "-sS", "-m", "5", "http://10.244.0.10:9/"]);

step("kconnect down (SIGTERM)");
await up.stop();
console.log(up.out.text().split("\n").at(-1));
await show(["ip", "route", "show"]);
