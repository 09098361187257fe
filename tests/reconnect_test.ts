/**
 * Living through a broken path: the API server restarting, and a silently black-holed transport.
 * kconnect keeps TUN, routes and DNS, notices, reconnects, and new connections work again within
 * seconds; flows that were open end instead of hanging. Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { isRoot, type Netns } from "./_netns.ts";
import { startUp } from "./_up.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

async function ping(ns: Netns): Promise<boolean> {
  const r = await ns.exec(["timeout", "3", "redis-cli", "-h", "10.96.0.21", "PING"], {
    check: false,
  });
  return r.stdout.trim() === "PONG";
}

/** Seconds until `ok()` holds, polling every 200 ms; throws after `limit` seconds. */
async function secondsUntil(
  ok: () => Promise<boolean>,
  limit: number,
  what: string,
): Promise<number> {
  const t0 = performance.now();
  while ((performance.now() - t0) / 1000 < limit) {
    if (await ok()) return (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen within ${limit} s`);
}

/** Starts a long-lived TCP flow through the tunnel; resolves when it ends, with seconds taken. */
function longFlow(ns: Netns): { ended: Promise<number>; started: number } {
  const started = performance.now();
  // redis-cli waits for messages on a channel nobody publishes to: it only ends when the
  // connection does.
  const ended = ns.exec(["redis-cli", "-h", "10.96.0.21", "SUBSCRIBE", "nothing"], { check: false })
    .then(() => (performance.now() - started) / 1000);
  return { ended, started };
}

Deno.test({
  name:
    "kconnect reconnects after the API server restarts; open flows end, new ones work within seconds",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const laptop = cluster.laptop;
    await using up = await startUp(laptop, [
      "--kubeconfig",
      cluster.kubeconfig,
      "--log-level",
      "info",
    ]);
    assert.ok(await ping(laptop));
    const flow = longFlow(laptop);
    await new Promise((r) => setTimeout(r, 500));

    await cluster.stopApiServer();
    const stoppedAt = performance.now();
    const flowSeconds = await Promise.race([
      flow.ended.then(() => (performance.now() - stoppedAt) / 1000),
      new Promise<number>((r) => setTimeout(() => r(Infinity), 15_000)),
    ]);
    assert.ok(
      flowSeconds < 12,
      `the open flow ended ${flowSeconds} s after the API server went away`,
    );
    assert.equal(await ping(laptop), false, "no tunnel while the API server is down");
    const link = await laptop.exec(["ip", "link", "show", "kconnect0"], { check: false });
    assert.equal(link.code, 0, "the TUN stays while reconnecting");

    await cluster.startApiServer();
    const back = await secondsUntil(
      () => ping(laptop),
      15,
      "a request after the API server returned",
    );
    assert.ok(back < 10, `new requests worked ${back.toFixed(1)} s after the API server returned`);
    assert.match(up.err.text(), /tunnel transport closed/);
    assert.equal(up.child.pid > 0, true);
  },
});

Deno.test({
  name: "a silently black-holed transport is detected within about 10 s and replaced",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const laptop = cluster.laptop;
    await using up = await startUp(laptop, [
      "--kubeconfig",
      cluster.kubeconfig,
      "--log-level",
      "info",
    ]);
    assert.ok(await ping(laptop));
    const rules = [
      ["OUTPUT", "-d", "100.64.0.1", "-p", "tcp", "--dport", "6443", "-j", "DROP"],
      ["INPUT", "-s", "100.64.0.1", "-p", "tcp", "--sport", "6443", "-j", "DROP"],
    ];
    const mark = up.err.lines.length;
    for (const r of rules) await laptop.exec(["iptables", "-A", ...r]);
    const blackholed = performance.now();
    try {
      const detected = await secondsUntil(
        () =>
          Promise.resolve(
            up.err.lines.slice(mark).some((l) =>
              /tunnel transport closed \(keepalive-timeout\)/.test(l)
            ),
          ),
        20,
        "noticing the black hole",
      );
      assert.ok(detected < 12, `noticed after ${detected.toFixed(1)} s`);
    } finally {
      for (const r of rules) await laptop.exec(["iptables", "-D", ...r], { check: false });
    }
    const back = await secondsUntil(() => ping(laptop), 20, "a request after the path came back");
    assert.ok(back < 10, `requests worked ${back.toFixed(1)} s after the path came back`);
    void blackholed;
  },
});
