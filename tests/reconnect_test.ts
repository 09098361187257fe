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
import { linkExists, stillRunning } from "./_netns.ts";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";
import { blackHole } from "./_outage.ts";
import { lineAfter, redisPing, secondsUntil, Subscriber, within } from "./_flows.ts";

/** How long anything here may take before it counts as never happening, in seconds. */
const LIVENESS_S = 45;

Deno.test({
  name:
    "resumption off: kconnect reconnects after the API server restarts; open flows end, new ones work again",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({
      up: ["--log-level", "info", "--resume-grace", "0"],
    });
    const { cluster, laptop, up } = connected;
    assert.ok(await redisPing(laptop));
    // A flow that only ends when its connection does, open through the tunnel.
    await using flow = await Subscriber.open(laptop);
    assert.ok(await stillRunning(flow.child), "the flow is open when the API server stops");

    await cluster.stopApiServer();
    await within(
      flow.ended,
      LIVENESS_S * 1000,
      `the open flow ending after the API server went`,
    );
    assert.equal(await redisPing(laptop), false, "no tunnel while the API server is down");
    assert.equal(await linkExists(laptop, "kconnect0"), true, "the TUN stays while reconnecting");

    await cluster.startApiServer();
    await secondsUntil(
      () => redisPing(laptop),
      LIVENESS_S,
      "a request after the API server returned",
    );
    assert.match(up.err.text(), /tunnel transport closed/);
    assert.ok(await stillRunning(up.child), "kconnect up is still running");
  },
});

Deno.test({
  name: "resumption off: a silently black-holed transport is noticed by the keepalive and replaced",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({
      up: ["--log-level", "info", "--resume-grace", "0"],
    });
    const { laptop, up } = connected;
    assert.ok(await redisPing(laptop));
    const mark = up.err.lines.length;
    {
      await using _hole = await blackHole(laptop);
      // Nothing closes the connection: only kconnect's keepalive can notice (TCP itself would
      // retransmit for many minutes).
      await lineAfter(
        up.err,
        mark,
        /tunnel transport closed \(keepalive-timeout\)/,
        LIVENESS_S * 1000,
      );
    }
    await secondsUntil(() => redisPing(laptop), LIVENESS_S, "a request after the path came back");
    assert.ok(await stillRunning(up.child), "kconnect up is still running");
  },
});
