import assert from "node:assert/strict";
import { FakeClock } from "../tunnel/_test_util.ts";
import { IDLE_CHECK_MS, IdleRelease, QUIET_BELOW, releaseMemory } from "./idle_release.ts";

function setUp() {
  const clock = new FakeClock();
  const traffic = { bytes: 0 };
  const calls: number[] = [];
  const idle = new IdleRelease({
    activity: () => traffic.bytes,
    release: () => calls.push(clock.now()),
    clock,
  });
  /** Moves fake time on by `ms`, firing the checks due. */
  const advance = (ms: number) => clock.run(clock.sleep(ms));
  return { clock, traffic, calls, idle, advance };
}

Deno.test("IdleRelease releases once after traffic stops, and not while it flows", async () => {
  const { traffic, calls, idle, advance } = setUp();
  await advance(5 * IDLE_CHECK_MS);
  assert.deepEqual(calls, [], "no traffic yet: nothing to release");
  for (let i = 0; i < 6; i++) {
    traffic.bytes += QUIET_BELOW;
    await advance(IDLE_CHECK_MS);
  }
  assert.deepEqual(calls, [], "traffic in every period: no release");
  await advance(IDLE_CHECK_MS);
  assert.equal(calls.length, 1, "the first quiet period after traffic releases");
  await advance(10 * IDLE_CHECK_MS);
  assert.equal(calls.length, 1, "staying idle does not release again");
  for (let i = 0; i < 6; i++) {
    if (i % 2 === 0) traffic.bytes += 12; // a keepalive every other period
    await advance(IDLE_CHECK_MS);
  }
  assert.equal(calls.length, 1, "keepalives are not traffic");
  traffic.bytes -= 5 * QUIET_BELOW; // a counted session ended with its bytes
  await advance(3 * IDLE_CHECK_MS);
  assert.equal(calls.length, 2, "a large change either way is a spell of traffic");
  assert.equal(idle.releases, 2);
  idle[Symbol.dispose]();
});

Deno.test("IdleRelease stops checking once disposed", async () => {
  const { clock, traffic, calls, idle, advance } = setUp();
  traffic.bytes = QUIET_BELOW;
  idle[Symbol.dispose]();
  assert.equal(clock.pendingTimers, 0);
  traffic.bytes = 3 * QUIET_BELOW;
  await advance(5 * IDLE_CHECK_MS);
  assert.deepEqual(calls, []);
});

Deno.test("releaseMemory collects before it trims, and goes on without gc", () => {
  const done: string[] = [];
  releaseMemory(() => done.push("gc"), () => (done.push("trim"), true));
  assert.deepEqual(done, ["gc", "trim"]);
  releaseMemory(undefined, () => (done.push("trim"), false));
  assert.deepEqual(done, ["gc", "trim", "trim"]);
});
