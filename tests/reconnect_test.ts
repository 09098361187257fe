/**
 * Living through a broken path with resumption off (`--resume-grace 0`, what a protocol-1
 * traffic manager also gets): the API server restarting, and a silently black-holed transport.
 * kconnect keeps TUN, routes and DNS, notices, reconnects, and new connections work again; flows
 * that were open end instead of hanging. Root only. With resumption on, see resume_test.ts.
 *
 * Durations are liveness bounds, generous for a busy 2-core machine (the nominal figures, about
 * 9 s to notice a black hole and a few seconds to reconnect, are measured by
 * bench/reconnect.ts): each test fails when something never happens, not when it is slow.
 */
import assert from "node:assert/strict";
import { LineWatcher } from "./_lines.ts";
import { linkExists, type Netns, stillRunning } from "./_netns.ts";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";

/** How long anything here may take before it counts as never happening, in seconds. */
const LIVENESS_S = 45;

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

/** A long-lived TCP flow through the tunnel, established: redis confirmed the subscription. */
interface Flow {
  child: Deno.ChildProcess;
  out: LineWatcher;
  err: LineWatcher;
}

/**
 * Opens a flow that only ends when its connection does (redis-cli waits for messages on a
 * channel nobody publishes to) and waits until redis has confirmed the subscription, so the flow
 * is known to be open through the tunnel.
 */
async function longFlow(ns: Netns): Promise<Flow> {
  const child = ns.spawn(["redis-cli", "-h", "10.96.0.21", "SUBSCRIBE", "nothing"], {
    stdout: "piped",
    stderr: "piped",
  });
  const flow = { child, out: new LineWatcher(child.stdout), err: new LineWatcher(child.stderr) };
  // redis-cli prints "subscribe", the channel and the count of subscriptions.
  await flow.out.waitFor(/^1$/, 30_000);
  assert.deepEqual(flow.out.lines.slice(0, 3), ["subscribe", "nothing", "1"], flow.err.text());
  return flow;
}

Deno.test({
  name: "kconnect reconnects after the API server restarts; open flows end, new ones work again",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({
      up: ["--log-level", "info", "--resume-grace", "0"],
    });
    const { cluster, laptop, up } = connected;
    assert.ok(await ping(laptop));
    const flow = await longFlow(laptop);
    assert.ok(await stillRunning(flow.child), "the flow is open when the API server stops");

    await cluster.stopApiServer();
    const ended = await Promise.race([
      flow.child.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), LIVENESS_S * 1000)),
    ]);
    assert.ok(ended, `the open flow did not end within ${LIVENESS_S} s of the API server going`);
    assert.equal(await ping(laptop), false, "no tunnel while the API server is down");
    assert.equal(await linkExists(laptop, "kconnect0"), true, "the TUN stays while reconnecting");

    await cluster.startApiServer();
    await secondsUntil(() => ping(laptop), LIVENESS_S, "a request after the API server returned");
    assert.match(up.err.text(), /tunnel transport closed/);
    assert.ok(await stillRunning(up.child), "kconnect up is still running");
  },
});

Deno.test({
  name: "a silently black-holed transport is noticed by the keepalive and replaced",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({
      up: ["--log-level", "info", "--resume-grace", "0"],
    });
    const { laptop, up } = connected;
    assert.ok(await ping(laptop));
    const rules = [
      ["OUTPUT", "-d", "100.64.0.1", "-p", "tcp", "--dport", "6443", "-j", "DROP"],
      ["INPUT", "-s", "100.64.0.1", "-p", "tcp", "--sport", "6443", "-j", "DROP"],
    ];
    const mark = up.err.lines.length;
    for (const r of rules) await laptop.exec(["iptables", "-A", ...r]);
    try {
      // Nothing closes the connection: only kconnect's keepalive can notice (TCP itself would
      // retransmit for many minutes).
      await secondsUntil(
        () =>
          Promise.resolve(
            up.err.lines.slice(mark).some((l) =>
              /tunnel transport closed \(keepalive-timeout\)/.test(l)
            ),
          ),
        LIVENESS_S,
        "noticing the black hole",
      );
    } finally {
      for (const r of rules) await laptop.exec(["iptables", "-D", ...r], { check: false });
    }
    await secondsUntil(() => ping(laptop), LIVENESS_S, "a request after the path came back");
    assert.ok(await stillRunning(up.child), "kconnect up is still running");
  },
});
