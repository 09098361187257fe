/**
 * `kconnect up` end to end: a laptop namespace that can reach only the API server stand-in gets
 * the cluster's pod and service IPs through port-forward to the traffic manager. Root only.
 */
import { httpStatus } from "./_http.ts";
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { LineWatcher } from "./_lines.ts";
import { linkExists, Netns, stillRunning } from "./_netns.ts";
import { failUp, startUp } from "./_up.ts";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";

const NETPROBE = `${ROOT}tests/fixtures/netprobe.ts`;

async function probe(ns: Netns, args: string[]) {
  const r = await ns.exec([...DENO_RUN, "-A", "--unstable-net", NETPROBE, ...args], {
    check: false,
  });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return { code: r.code, json: JSON.parse(last) as Record<string, unknown>, stderr: r.stderr };
  } catch {
    return { code: r.code, json: {}, stderr: r.stderr + r.stdout };
  }
}

async function sha256File(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A Python client's `connect()` to `host:port`: prints `CONNECTED 0`, `TIMEOUT <s>` (its own
 * timeout ran out) or the errno's name and the seconds it took.
 */
const CONNECT_PY = (host: string, port: number, timeout: number) =>
  `import socket,errno,time
t=time.monotonic()
try:
    socket.create_connection(("${host}", ${port}), timeout=${timeout}); print("CONNECTED", 0)
except socket.timeout:
    print("TIMEOUT", round(time.monotonic()-t, 1))
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)), round(time.monotonic()-t, 1))`;

Deno.test({
  name:
    "kconnect up: pod and service IPs over TCP and UDP from a laptop that reaches only the API server",
  ...E2E_TEST,
  fn: async (t) => {
    await using connected = await connectedLaptop({
      up: ["--log-level", "info"],
      beforeUp: async (c) => {
        const before = await c.laptop.exec(["curl", "-sS", "-m", "10", "http://10.96.0.20/"], {
          check: false,
        });
        // curl exit 7: could not connect (no route to the cluster's networks), not another failure.
        assert.equal(before.code, 7, `the service is not reachable before up: ${before.stderr}`);
      },
    });
    const { cluster, laptop, up } = connected;
    const progress = up.out.text();
    assert.match(progress, /cluster reached: https:\/\/100\.64\.0\.1:6443 \(Kubernetes v1\.33/);
    assert.match(progress, /traffic manager found: kconnect\/traffic-manager-/);
    assert.match(progress, /service CIDR 10\.96\.0\.0\/12 \(ServiceCIDR /);
    assert.match(progress, /pod CIDR 10\.244\.0\.0\/24 \(podCIDRs of 1 node\)/);
    assert.match(progress, /routes: 10\.96\.0\.0\/12, 10\.244\.0\.0\/24 via kconnect0/);

    await t.step("HTTP to a service IP and to a pod IP", async () => {
      for (const url of ["http://10.96.0.20/", "http://10.244.0.10:8080/"]) {
        assert.equal(await httpStatus(laptop, url), "200", url);
      }
    });

    await t.step("redis-cli PING, SET and GET against the redis service", async () => {
      const cli = (...a: string[]) =>
        laptop.exec(["redis-cli", "-h", "10.96.0.21", ...a]).then((r) => r.stdout.trim());
      assert.equal(await cli("PING"), "PONG");
      assert.equal(await cli("SET", "kconnect", "through the tunnel"), "OK");
      assert.equal(await cli("GET", "kconnect"), "through the tunnel");
    });

    await t.step("UDP echo through the echo service", async () => {
      const r = await probe(laptop, [
        "udp-echo",
        "host=10.96.0.22",
        "port=7",
        "count=40",
        "size=1000",
      ]);
      assert.equal(r.json.ok, 40, r.stderr);
    });

    await t.step("200 concurrent connections each get their own bytes back", async () => {
      const r = await probe(laptop, [
        "concurrent",
        "host=10.96.0.22",
        "port=7",
        "n=200",
        "size=16384",
      ]);
      assert.equal(r.json.ok, 200, `${JSON.stringify(r.json)} ${r.stderr}`);
    });

    await t.step("a 100 MB download arrives with a matching sha256", async () => {
      const file = `${cluster.webDir}/big.bin`;
      const data = new Uint8Array(100 << 20);
      for (let o = 0; o < data.length; o += 65536) {
        crypto.getRandomValues(data.subarray(o, o + 65536));
      }
      await Deno.writeFile(file, data);
      const want = await sha256File(file);
      const r = await laptop.exec([
        "sh",
        "-c",
        "curl -sS --fail -m 120 http://10.96.0.20/big.bin | sha256sum",
      ]);
      assert.equal(r.stdout.split(" ")[0], want);
      await Deno.remove(file);
    });

    // kconnect's dial timeout is 10 s and a dial that times out is answered with silence, so
    // the clients wait far longer (60 s) than kconnect may take: a TIMEOUT means kconnect never
    // answered (a hang), and the error's name says which answer it gave. No durations are
    // asserted (a busy CI machine may be slow); connect latency is in bench/cluster.ts.
    await t.step("a closed port on a pod is refused (ECONNREFUSED, not a timeout)", async () => {
      const r = await laptop.exec(["python3", "-c", CONNECT_PY("10.244.0.10", 9, 60)]);
      const [what] = r.stdout.trim().split(" ");
      assert.equal(what, "ECONNREFUSED", r.stdout);
    });

    await t.step("a connect to an unused pod address fails instead of hanging", async () => {
      // The cluster has no host at 10.244.0.99: the manager's dial fails (no ARP answer), and
      // kconnect answers the SYN with ICMP host unreachable.
      const r = await laptop.exec(["python3", "-c", CONNECT_PY("10.244.0.99", 80, 60)]);
      const [what] = r.stdout.trim().split(" ");
      assert.equal(what, "EHOSTUNREACH", `kconnect reported the failure: ${r.stdout}`);
    });

    await t.step("a second laptop connects to the same manager and both work", async () => {
      await using laptop2 = await Netns.create("laptop2");
      await cluster.apiserverNs.veth(laptop2, {
        address: "100.64.2.1/30",
        peerAddress: "100.64.2.2/30",
      });
      await laptop2.exec(["ip", "route", "add", "100.64.0.1/32", "via", "100.64.2.1"]);
      await using up2 = await startUp(laptop2, ["--kubeconfig", cluster.kubeconfig]);
      for (const ns of [laptop, laptop2]) {
        const r = await ns.exec(["redis-cli", "-h", "10.96.0.21", "GET", "kconnect"]);
        assert.equal(r.stdout.trim(), "through the tunnel", ns.name);
      }
      assert.equal(await up2.stop(), 0, up2.err.text());
    });

    await t.step(
      "garbage sent to the manager ends that session only; others keep working",
      async () => {
        // A flow opened before the garbage, on one of the laptop's sessions: a subscriber
        // waiting for messages (redis-cli prints "subscribe", the channel, "1" once it is in).
        const sub = laptop.spawn(["redis-cli", "-h", "10.96.0.21", "SUBSCRIBE", "survivor"], {
          stdout: "piped",
          stderr: "piped",
        });
        const subOut = new LineWatcher(sub.stdout);
        const subErr = new LineWatcher(sub.stderr);
        try {
          await subOut.waitFor(/^1$/, 30_000);
          const mark = up.err.lines.length;
          const r = await cluster.clusterNs.exec([
            "sh",
            "-c",
            "head -c 4096 /dev/urandom | socat -t 2 - TCP:127.0.0.1:8081 > /dev/null; echo done",
          ]);
          assert.match(r.stdout, /done/);
          await cluster.managerErrors.waitFor(/session closed: protocol-error/, 30_000);
          assert.ok(await stillRunning(cluster.managerProcess!), "the manager is still running");
          // The laptop's sessions were not touched: the flow opened before still carries data
          // (a reset session would have ended it, and redis would count no subscriber)…
          const pub = await laptop.exec([
            "redis-cli",
            "-h",
            "10.96.0.21",
            "PUBLISH",
            "survivor",
            "still here",
          ]);
          assert.equal(pub.stdout.trim(), "1", "the subscriber opened before is still connected");
          await subOut.waitFor(/^still here$/, 30_000);
          assert.ok(await stillRunning(sub), `the flow is still open: ${subErr.text()}`);
          // …new connections work…
          assert.equal(await httpStatus(laptop, "http://10.96.0.20/"), "200");
          // …and kconnect never lost a transport meanwhile.
          const closed = up.err.lines.slice(mark).filter((l) => /tunnel transport closed/.test(l));
          assert.deepEqual(closed, [], "no tunnel transport of the laptop closed");
        } finally {
          try {
            sub.kill("SIGTERM");
          } catch { /* ended */ }
          await sub.status;
          await Promise.all([subOut.done, subErr.done]);
        }
      },
    );

    await t.step("SIGTERM disconnects and removes the TUN and its routes", async () => {
      assert.equal(await up.stop("SIGTERM"), 0, up.err.text());
      assert.match(up.out.text(), /disconnected/);
      assert.equal(await linkExists(laptop, "kconnect0"), false, "the TUN is gone");
      const routes = await laptop.exec(["ip", "route", "show"]);
      assert.doesNotMatch(routes.stdout, /10\.96\.|10\.244\./);
    });

    await t.step("up refuses cluster CIDRs that collide with the laptop's routes", async () => {
      await laptop.exec([
        "ip",
        "link",
        "add",
        "corpvpn",
        "type",
        "veth",
        "peer",
        "name",
        "corpvpn-peer",
      ]);
      await laptop.exec(["ip", "link", "set", "corpvpn", "up"]);
      await laptop.exec(["ip", "route", "add", "10.100.0.0/16", "dev", "corpvpn"]);
      const r = await failUp(laptop, ["--kubeconfig", cluster.kubeconfig]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /10\.96\.0\.0\/12 \(service CIDR, ServiceCIDR [^)]*\) overlaps this machine's route 10\.100\.0\.0\/16 dev corpvpn/,
      );
      assert.match(r.stderr, /--never-proxy/);
      // Told to keep that range local, it connects and leaves the VPN's range alone.
      await using up3 = await startUp(laptop, [
        "--kubeconfig",
        cluster.kubeconfig,
        "--never-proxy",
        "10.100.0.0/16",
      ]);
      const get = await laptop.exec(["ip", "-o", "route", "get", "10.100.1.1"]);
      assert.match(get.stdout, /dev corpvpn/);
      const svc = await laptop.exec(["ip", "-o", "route", "get", "10.96.0.20"]);
      assert.match(svc.stdout, /dev kconnect0/);
      await up3.stop();
    });
  },
});

for (
  const [name, options, service, pod] of [
    [
      "1.29: the service CIDR comes from the invalid-ClusterIP error",
      { k8sVersion: "1.29" },
      /service CIDR 10\.96\.0\.0\/12 \(invalid ClusterIP error\)/,
      /pod CIDR 10\.244\.0\.0\/24 \(podCIDRs of 1 node\)/,
    ],
    [
      "1.29 with RBAC denying service creation and node listing: covers of service and pod IPs",
      { k8sVersion: "1.29", denyServiceCreate: true, denyNodes: true },
      /service CIDR 10\.96\.0\.\d+\/\d+ \(cover of \d+ service IPs\)/,
      /pod CIDR 10\.244\.0\.\d+\/\d+ \(cover of \d+ pod IPs\)/,
    ],
  ] as const
) {
  Deno.test({
    name: `kconnect up discovers CIDRs on ${name}`,
    ...E2E_TEST,
    fn: async () => {
      await using connected = await connectedLaptop({ cluster: options });
      const { cluster, up } = connected;
      assert.match(up.out.text(), service);
      assert.match(up.out.text(), pod);
      const r = await cluster.laptop.exec(["redis-cli", "-h", "10.96.0.21", "PING"]);
      assert.equal(r.stdout.trim(), "PONG");
    },
  });
}

Deno.test({
  name:
    "kconnect up explains what is wrong: no kubeconfig, unreachable API server, bad token, no manager",
  ...E2E_TEST,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33", manager: false });
    const laptop = cluster.laptop;
    await t.step("no kubeconfig", async () => {
      const r = await failUp(laptop, ["--kubeconfig", "/nonexistent/kubeconfig"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /kconnect: No kubeconfig found \(looked for \/nonexistent\/kubeconfig\)/,
      );
    });
    await t.step("unknown context", async () => {
      const r = await failUp(laptop, ["--kubeconfig", cluster.kubeconfig, "--context", "prod"]);
      assert.match(r.stderr, /No context "prod" in .* \(contexts: .*test/);
    });
    await t.step("unreachable API server", async () => {
      const text = (await Deno.readTextFile(cluster.kubeconfig)).replace(":6443", ":6999");
      const path = `${cluster.dir}/unreachable.kubeconfig`;
      await Deno.writeTextFile(path, text);
      const r = await failUp(laptop, ["--kubeconfig", path]);
      assert.match(
        r.stderr,
        /Cannot reach the Kubernetes API server at https:\/\/100\.64\.0\.1:6999/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    });
    await t.step("bad token: 401", async () => {
      const r = await failUp(laptop, ["--kubeconfig", await cluster.kubeconfigFor("bad-token")]);
      assert.match(r.stderr, /Unauthorized/);
      assert.match(r.stderr, /did not accept the credentials of user/);
    });
    await t.step("no traffic manager", async () => {
      const r = await failUp(laptop, ["--kubeconfig", cluster.kubeconfig]);
      assert.match(r.stderr, /No traffic manager found in namespace "kconnect"/);
      assert.equal(await linkExists(laptop, "kconnect0"), false, "nothing was set up");
    });
  },
});

Deno.test({
  name:
    "kconnect up reports the port-forward error channel's text when the manager does not listen",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({
      k8sVersion: "1.33",
      managerCommand: ["sleep", "3600"],
      waitForManager: false,
    });
    const r = await failUp(cluster.laptop, ["--kubeconfig", cluster.kubeconfig]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not answer: .*error forwarding port 8081 to pod/);
    assert.match(r.stderr, /connection refused/);
  },
});

Deno.test({
  name: "kconnect up authenticates with a client certificate and with an exec credential plugin",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    for (const kind of ["cert", "exec"] as const) {
      await using up = await startUp(cluster.laptop, [
        "--kubeconfig",
        await cluster.kubeconfigFor(kind),
      ]);
      const r = await cluster.laptop.exec(["redis-cli", "-h", "10.96.0.21", "PING"]);
      assert.equal(r.stdout.trim(), "PONG", kind);
      assert.equal(await up.stop(), 0);
    }
  },
});
