/**
 * WindowBudget: one bound on the windows of a laptop's sessions. Streams open at the large
 * initial window while the budget lasts and at the spec's after; a stream past the budget gets
 * no more than the spec's window of data buffered; windows stop growing at the budget; ending
 * streams (and sessions) give their share back.
 *
 * @module
 */
import assert from "node:assert/strict";
import { memoryPipe } from "../io/pipe.ts";
import { Session } from "./session.ts";
import { SPEC_INITIAL_WINDOW } from "./frame.ts";
import { WindowBudget } from "./window_budget.ts";
import { SessionPool } from "./pool.ts";
import type { Stream } from "./stream.ts";
import { type FakeClock, simTest, waitFor } from "./_test_util.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const INITIAL = 4 * MiB;
const EXTRA = INITIAL - SPEC_INITIAL_WINDOW;

/** A laptop-side session with the budget's policy, and a plain server session. */
function pair(clock: FakeClock, budget: WindowBudget, delayMs = 0) {
  const [a, b] = memoryPipe({ clock, delayMs });
  const client = new Session(a, { clock, client: true, initialWindow: INITIAL }, budget.policy);
  const server = new Session(b, { clock, client: false });
  return {
    client,
    server,
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

simTest(
  "WindowBudget: streams open at the large window while it lasts, then at the spec's",
  async (clock) => {
    let spent = 0;
    const budget = new WindowBudget(2 * EXTRA + EXTRA / 2, () => spent++);
    await using p = pair(clock, budget);
    const big = [await p.client.open(), await p.client.open()];
    const small = await p.client.open();
    for (const s of big) assert.equal(s.receiveWindow, INITIAL);
    assert.equal(small.receiveWindow, SPEC_INITIAL_WINDOW);
    assert.equal(budget.used, 2 * EXTRA);
    assert.equal(budget.refused, 1);
    assert.equal(spent, 1, "the owner hears when the budget is first spent");

    // The server sees the credit the client granted: 4 MiB on the first two, 256 KiB on the third.
    const far: Stream[] = [];
    for (let i = 0; i < 3; i++) far.push((await p.server.accept())!);
    await waitFor(clock, () => far[0].sendWindow === INITIAL, "the grant");
    assert.equal(far[1].sendWindow, INITIAL);
    assert.equal(far[2].sendWindow, SPEC_INITIAL_WINDOW);

    // Nobody reads the third stream: the server can put only the spec's window of data into it.
    const data = new Uint8Array(1 * MiB);
    let written = false;
    const write = far[2].write(data).then(() => written = true);
    await waitFor(clock, () => small.bufferedBytes === SPEC_INITIAL_WINDOW, "the window's data");
    await clock.sleep(1000);
    assert.equal(small.bufferedBytes, SPEC_INITIAL_WINDOW);
    assert.equal(written, false);

    // Refused again while still spent: not told again.
    assert.equal((await p.client.open()).receiveWindow, SPEC_INITIAL_WINDOW);
    assert.equal(spent, 1);

    // An ended stream gives its share back: the next opens at 4 MiB again; spent once more, the
    // owner hears again (use had fallen to half the budget).
    big[0].reset();
    await waitFor(clock, () => budget.used === EXTRA, "the share back");
    const again = await p.client.open();
    assert.equal(again.receiveWindow, INITIAL);
    assert.equal((await p.client.open()).receiveWindow, SPEC_INITIAL_WINDOW);
    assert.equal(spent, 2);

    // Reading the third stream lets the write finish; it never grew (no budget left for it).
    const buf = new Uint8Array(64 * KiB);
    let got = 0;
    while (got < data.length) got += (await small.read(buf))!;
    await write;
    assert.equal(small.receiveWindow, SPEC_INITIAL_WINDOW);
    assert.equal(small.windowGrowth, 0);
  },
);

simTest(
  "WindowBudget: auto-tuning stops at the budget, and a closed session gives everything back",
  async (clock) => {
    // Room for one growth (4 → 16 MiB), not for the next (16 → 32 MiB).
    const budget = new WindowBudget(EXTRA + 14 * MiB);
    // Auto-tuning compares the reader's pace with the round trip: 20 ms here.
    await using p = pair(clock, budget, 10);
    await p.client.ping();
    const s = await p.client.open();
    const t = (await p.server.accept())!;
    // A reader that keeps up makes the window grow; the budget stops it short of the 32 MiB cap.
    const send = (async () => {
      const chunk = new Uint8Array(1 * MiB);
      for (let i = 0; i < 64; i++) await t.write(chunk);
      await t.closeWrite();
    })();
    const buf = new Uint8Array(256 * KiB);
    while ((await s.read(buf)) !== null) { /* keep up */ }
    await send;
    assert.ok(
      budget.refused > 0,
      `growth was never refused: window ${s.receiveWindow}, used ${budget.used}`,
    );
    assert.equal(s.receiveWindow, 16 * MiB);
    assert.equal(budget.used, s.windowGrowth);
    assert.equal(budget.used, 16 * MiB - SPEC_INITIAL_WINDOW);

    await p.client.open();
    await p.client.close();
    assert.equal(budget.used, 0);
  },
);

simTest("WindowBudget: every session of a SessionPool draws on the one budget", async (clock) => {
  const budget = new WindowBudget(3 * EXTRA);
  const servers: Session[] = [];
  const pool = new SessionPool({
    size: 2,
    clock,
    session: { clock, initialWindow: INITIAL },
    policy: budget.policy,
    connect: () => {
      const [a, b] = memoryPipe({ clock });
      servers.push(new Session(b, { clock, client: false }));
      return Promise.resolve(a);
    },
  });
  try {
    await pool.start();
    const streams = [];
    for (let i = 0; i < 4; i++) streams.push(await pool.open());
    // Spread over both sessions, three at 4 MiB, and the fourth at the spec's window.
    assert.equal(new Set(pool.sessions.map((s) => s.numStreams)).size, 1);
    assert.deepEqual(
      streams.map((s) => s.receiveWindow).sort((x, y) => x - y),
      [SPEC_INITIAL_WINDOW, INITIAL, INITIAL, INITIAL],
    );
    assert.equal(budget.used, 3 * EXTRA);
  } finally {
    await pool.close();
    await Promise.all(servers.map((s) => s.close()));
  }
  assert.equal(budget.used, 0);
});
