/**
 * Tests of the test cluster's outage tools and the workloads the resumption tests use
 * (tests/resume_test.ts): the traffic manager replaced (`restartManager`), a black hole between
 * laptop and API server, every laptop ↔ API server connection killed, the UDP echo that names
 * the sender, a large web file of known content, and the flow helpers of tests/_flows.ts. No
 * kconnect runs here: flows go from the cluster namespace straight to the workloads, and the
 * tunnel's path is probed with curl and a port-forward. Root only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster.ts";
import { IPS, MANAGER_POD, SERVICE_IPS, UDP_PEER_PORT } from "./topology.ts";
import type { ProbeResult } from "./pf_probe.ts";
import { DENO_RUN } from "../_dataplane.ts";
import { isRoot, stillRunning } from "../_netns.ts";
import { blackHole, killApiConnections } from "../_outage.ts";
import { Download, RedisSession, Subscriber, UdpSession, within } from "../_flows.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

const PROBE = new URL("./pf_probe.ts", import.meta.url).pathname;
/** A stand-in traffic manager: an echo server on the manager's port. */
const ECHO_MANAGER = [
  ...DENO_RUN,
  "--allow-net",
  new URL("../fixtures/echo_server.ts", import.meta.url).pathname,
  "127.0.0.1",
  String(MANAGER_POD.port),
];

/** `GET /version` from the laptop, 2 s at most: curl's exit code (28: timed out). */
async function apiVersion(cluster: TestCluster): Promise<number> {
  const r = await cluster.laptop.exec([
    "curl",
    "-sS",
    "-o",
    "/dev/null",
    "--fail",
    "-m",
    "2",
    "--cacert",
    cluster.caFile,
    "-H",
    `Authorization: Bearer ${cluster.token}`,
    `${cluster.apiUrl}/version`,
  ], { check: false });
  return r.code;
}

/** The laptop namespace's iptables rules (`iptables -S`), without the chain policies. */
async function laptopRules(cluster: TestCluster): Promise<string[]> {
  const r = await cluster.laptop.exec(["iptables", "-w", "-S"]);
  return r.stdout.split("\n").filter((l) => l.startsWith("-A "));
}

/** A port-forward from the laptop to the manager pod's port, sending `text`. */
async function portForward(cluster: TestCluster, text: string): Promise<ProbeResult> {
  const url = `wss://100.64.0.1:6443/api/v1/namespaces/${MANAGER_POD.namespace}/pods/` +
    `${MANAGER_POD.name}/portforward?ports=${MANAGER_POD.port}`;
  const r = await cluster.laptop.exec([
    ...DENO_RUN,
    "-A",
    PROBE,
    url,
    cluster.token,
    cluster.caFile,
    text,
  ]);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function echoed(r: ProbeResult): string {
  return r.messages.slice(2).filter((m) => m.channel === 0).map((m) => m.text).join("");
}

Deno.test({
  name:
    "TestCluster.restartManager kills the manager and starts a new one in the same pod; port-forwards reach it",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start({ managerCommand: ECHO_MANAGER });
    assert.equal(echoed(await portForward(cluster, "to the first")), "to the first");
    const first = cluster.managerProcess!;

    await cluster.stopManager();
    assert.equal(cluster.managerProcess, null);
    assert.equal((await first.status).signal, "SIGKILL");
    assert.deepEqual(cluster.pastManagers.map((w) => w.child), [first]);
    const refused = await portForward(cluster, "to nobody");
    assert.equal(echoed(refused), "");
    assert.ok(
      refused.messages.some((m) => m.channel === 1 && /connection refused/.test(m.text)),
      JSON.stringify(refused),
    );

    await cluster.startManager();
    const second = cluster.managerProcess!;
    assert.notEqual(second.pid, first.pid);
    assert.equal(echoed(await portForward(cluster, "to the second")), "to the second");

    await cluster.restartManager();
    assert.notEqual(cluster.managerProcess!.pid, second.pid);
    assert.equal(await stillRunning(second), false);
    assert.equal(cluster.pastManagers.length, 2);
    assert.equal(echoed(await portForward(cluster, "to the third")), "to the third");
  },
});

Deno.test({
  name:
    "outages: a black hole stops laptop ↔ API server traffic until lifted, killApiConnections aborts them, the API server restarts with the manager pod",
  ...opts,
  fn: async (t) => {
    await using cluster = await TestCluster.start();
    const before = await laptopRules(cluster);

    await t.step("a black hole drops the API server's traffic until lifted", async () => {
      assert.equal(await apiVersion(cluster), 0);
      const hole = await blackHole(cluster.laptop);
      try {
        assert.equal((await laptopRules(cluster)).length, before.length + 2);
        assert.equal(await apiVersion(cluster), 28, "curl times out in the black hole");
      } finally {
        await hole.lift();
      }
      assert.equal(hole.lifted, true);
      assert.deepEqual(await laptopRules(cluster), before);
      assert.equal(await apiVersion(cluster), 0);
      await hole.lift(); // twice is fine
    });

    await t.step("a black hole is lifted when the block holding it throws", async () => {
      await assert.rejects(async () => {
        await using _hole = await blackHole(cluster.laptop);
        assert.equal((await laptopRules(cluster)).length, before.length + 2);
        throw new Error("the test failed in the middle");
      }, /in the middle/);
      assert.deepEqual(await laptopRules(cluster), before);
      assert.equal(await apiVersion(cluster), 0);
    });

    await t.step("killApiConnections aborts an open connection to the API server", async () => {
      // An idle connection that only ends when killed (the API server waits for its TLS hello).
      const conn = cluster.laptop.spawn(["socat", "-", "TCP:100.64.0.1:6443"], {
        stdin: "piped",
        stderr: "piped",
      });
      try {
        for (let i = 0; i < 100; i++) {
          const ss = await cluster.laptop.exec(["ss", "-H", "-tn", "state", "established"]);
          if (ss.stdout.includes("100.64.0.1:6443")) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(await killApiConnections(cluster.laptop), 1);
        const st = await within(conn.status, 10_000, "socat ending");
        assert.notEqual(st.code, 0, "socat saw an error");
        assert.equal(await killApiConnections(cluster.laptop), 0);
        assert.equal(await apiVersion(cluster), 0);
      } finally {
        try {
          conn.kill("SIGKILL");
        } catch { /* gone */ }
        await conn.status;
        await conn.stdin.close().catch(() => {});
        await conn.stderr.cancel().catch(() => {});
      }
    });

    await t.step("the manager pod is listed again after an API server restart", async () => {
      const pods = async () => {
        const r = await cluster.laptop.exec([
          "curl",
          "-sS",
          "--fail",
          "-m",
          "10",
          "--cacert",
          cluster.caFile,
          "-H",
          `Authorization: Bearer ${cluster.token}`,
          `${cluster.apiUrl}/api/v1/namespaces/${MANAGER_POD.namespace}/pods`,
        ]);
        return (JSON.parse(r.stdout).items as { metadata: { name: string } }[])
          .map((p) => p.metadata.name);
      };
      assert.deepEqual(await pods(), [MANAGER_POD.name]);
      await cluster.restartApiServer();
      assert.deepEqual(await pods(), [MANAGER_POD.name]);
    });

    await t.step("the real manager restarts and listens again", async () => {
      const old = cluster.managerProcess!;
      await cluster.restartManager(); // resolves once the new one listens on 127.0.0.1:8081
      assert.equal(await stillRunning(old), false);
      assert.ok(await stillRunning(cluster.managerProcess!));
      assert.notEqual(cluster.managerProcess!.pid, old.pid);
    });
  },
});

Deno.test({
  name:
    "workloads for resumption: the UDP echo names the sender, a web file of known content, and the flow helpers",
  ...opts,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ manager: false });
    const ns = cluster.clusterNs;

    await t.step("the UDP peer echo answers with the sender's address and port", async () => {
      const r = await ns.exec(["socat", "-T2", "-", `UDP:${SERVICE_IPS.echo}:${UDP_PEER_PORT}`], {
        stdin: "hello\n",
      });
      assert.match(r.stdout, /^hello from \d+\.\d+\.\d+\.\d+:\d+\n$/);
      const pod = await ns.exec(["socat", "-T2", "-", `UDP:${IPS.echo}:${UDP_PEER_PORT}`], {
        stdin: "pod\n",
      });
      assert.match(pod.stdout, /^pod from /);
    });

    await t.step("UdpSession keeps one socket: the same sender every time", async () => {
      await using udp = UdpSession.open(ns);
      const a = await udp.exchange("one", 5000);
      const b = await udp.exchange("two", 5000);
      const c = await udp.exchangeUntilAnswered("three", 5000);
      assert.match(a, /^\d+\.\d+\.\d+\.\d+:\d+$/);
      assert.deepEqual([b, c.peer, c.tag], [a, a, "three-1"]);
      await using other = UdpSession.open(ns);
      assert.notEqual(await other.exchange("other", 5000), a, "another socket, another port");
    });

    await t.step("RedisSession holds one connection; Subscriber waits", async () => {
      await using redis = await RedisSession.open(ns);
      assert.match(redis.clientId, /^\d+$/);
      assert.equal(await redis.command("PING", 5000), "PONG");
      assert.equal(await redis.command("INCR outage-test", 5000), "1");
      assert.equal(await redis.command("CLIENT ID", 5000), redis.clientId);
      await using sub = await Subscriber.open(ns);
      assert.ok(await stillRunning(sub.child));
      await using other = await RedisSession.open(ns);
      assert.notEqual(other.clientId, redis.clientId);
      // The subscriber ends when its connection does.
      assert.equal(await other.command("CLIENT KILL TYPE pubsub", 5000), "1");
      await within(sub.ended, 10_000, "the subscriber ending");
      assert.equal(redis.err.text(), "");
    });

    await t.step("a 64 MiB web file of known content downloads at a limited rate", async () => {
      const blob = await cluster.writeWebFile("blob.bin", 64 << 20);
      const again = await cluster.writeWebFile("blob2.bin", 64 << 20);
      assert.equal(again.sha256, blob.sha256, "the same seed, the same content");
      assert.notEqual((await cluster.writeWebFile("other.bin", 1 << 20, 2)).sha256, blob.sha256);
      assert.equal(blob.url, "http://10.96.0.20/blob.bin");
      await using dl = Download.start(ns, blob.url, `${cluster.dir}/blob.down`, {
        rate: "32M",
        maxSeconds: 60,
      });
      await dl.waitForBytes(1 << 20, 30_000);
      const { code, stderr } = await within(dl.finished, 60_000, "the download");
      assert.equal(code, 0, stderr);
      assert.equal(await dl.sha256(), blob.sha256);
    });
  },
});
