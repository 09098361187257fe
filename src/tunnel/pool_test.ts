import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { SessionClosedError } from "./errors.ts";
import { memoryPipe, type MemoryPipeOptions } from "../io/pipe.ts";
import { SessionPool } from "./pool.ts";
import { Session, type SessionCloseInfo } from "./session.ts";
import { type FakeClock, simTest, waitFor } from "./_test_util.ts";

// Every test runs on simulated time (`simTest`): pool, sessions and pipes share a fake clock.

/**
 * A fake "traffic manager": every connect makes a pipe with a server session on the far end.
 * The n-th successful connect uses `pipes[n]` (default: no delay). `connectTimes` records when
 * each connect was attempted (fake time), failed or not.
 */
function serverFarm(clock: FakeClock, pipes: MemoryPipeOptions[] = []) {
  const servers: Session[] = [];
  const connectTimes: number[] = [];
  let failNext = 0;
  let connects = 0;
  return {
    servers,
    connectTimes,
    get connects() {
      return connects;
    },
    failNext(n: number) {
      failNext = n;
    },
    connect: (_signal: AbortSignal): Promise<Conn> => {
      connects++;
      connectTimes.push(clock.now());
      if (failNext > 0) {
        failNext--;
        return Promise.reject(new Error("connect refused"));
      }
      const [a, b] = memoryPipe({ ...pipes[servers.length], clock });
      servers.push(new Session(b, { client: false, clock }));
      return Promise.resolve(a);
    },
    async close() {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

simTest("SessionPool.start() opens size sessions and open() spreads streams", async (clock) => {
  // One-way delays 30, 5 and 60 ms: the fastest session's round trip is at least 10 ms.
  const farm = serverFarm(clock, [{ delayMs: 30 }, { delayMs: 5 }, { delayMs: 60 }]);
  const pool = new SessionPool({ size: 3, connect: farm.connect, session: {}, clock });
  await pool.start();
  assert.equal(pool.sessions.length, 3);
  const streams = await Promise.all(Array.from({ length: 9 }, () => pool.open()));
  assert.deepEqual(pool.sessions.map((s) => s.numStreams), [3, 3, 3]);
  // ping() pings every session and answers with the smallest round trip: each session's last
  // round trip is the one of this ping (its start-up ping was answered before).
  const rtt = await pool.ping();
  const each = pool.sessions.map((s) => s.stats.lastRttMs!);
  assert.equal(rtt, 10, "the 5 ms pipe's two delays");
  assert.deepEqual(each, [60, 10, 120]);
  for (const s of streams) s.reset();
  await pool.close();
  await farm.close();
});

simTest(
  "SessionPool.start() rejects with the connect error when the first fails",
  async (clock) => {
    const farm = serverFarm(clock);
    farm.failNext(1);
    const pool = new SessionPool({ size: 2, connect: farm.connect, session: {}, clock });
    await assert.rejects(pool.start(), /connect refused/);
    await pool.close();
    await farm.close();
  },
);

simTest("SessionPool replaces a session that died, with backoff", async (clock) => {
  const farm = serverFarm(clock);
  const closes: SessionCloseInfo[] = [];
  let closedAt = 0;
  const RETRY_MIN = 25;
  const pool = new SessionPool({
    size: 2,
    connect: farm.connect,
    session: {},
    onSessionClosed: (info) => {
      closedAt = clock.now();
      closes.push(info);
    },
    retryMinMs: RETRY_MIN,
    clock,
  });
  await pool.start();
  const s = await pool.open();
  const dead = pool.sessions.find((x) => x.numStreams === 1)!;
  const deadIndex = pool.sessions.indexOf(dead);
  const survivor = pool.sessions[1 - deadIndex];
  const survivorServer = farm.servers[1 - deadIndex];
  farm.failNext(2); // the first two reconnects fail
  await farm.servers[deadIndex].close();
  await dead.closed;
  await assert.rejects(s.read(new Uint8Array(1)), SessionClosedError);
  // New streams go to the survivor meanwhile (no replacement can exist yet: the first attempt
  // waits out a backoff), and the dead session is no longer offered.
  assert.ok(!pool.sessions.includes(dead), "a closed session is still listed");
  const before = survivor.numStreams;
  const t = await pool.open();
  assert.equal(survivor.numStreams, before + 1, "the new stream is not on the survivor");
  await t.write(new Uint8Array([7]));
  const onServer = (await survivorServer.accept())!;
  assert.equal(onServer.id, t.id);
  assert.equal(await onServer.read(new Uint8Array(1)), 1);
  await waitFor(clock, () => pool.sessions.length === 2, "the dead session is replaced");
  assert.equal(farm.connects, 2 + 3);
  assert.equal(closes.length, 1);
  assert.equal(closes[0].reason, "remote-goaway");
  // Backoff, measured on the attempts: the session died within 2 s of opening, so even the
  // first attempt waits 2 x retryMinMs; each failure then doubles the wait: 50 ms, 50 ms,
  // 100 ms.
  const [, , c3, c4, c5] = farm.connectTimes;
  const gaps = [c3 - closedAt, c4 - c3, c5 - c4];
  assert.deepEqual(gaps, [2 * RETRY_MIN, 2 * RETRY_MIN, 4 * RETRY_MIN]);
  t.reset();
  onServer.close();
  await pool.close();
  assert.equal(pool.sessions.length, 0);
  await assert.rejects(pool.open(), SessionClosedError);
  await farm.close();
});

simTest("SessionPool.open() waits for a session when none is live", async (clock) => {
  const farm = serverFarm(clock);
  const pool = new SessionPool({
    size: 1,
    connect: farm.connect,
    session: {},
    retryMinMs: 20,
    clock,
  });
  await pool.start();
  farm.failNext(1);
  await farm.servers[0].close();
  await pool.sessions[0]?.closed;
  const s = await pool.open();
  assert.equal(pool.sessions.length, 1);
  const ac = new AbortController();
  ac.abort(new Error("gave up"));
  await assert.rejects(pool.open(ac.signal), /gave up/);
  await assert.rejects(pool.open({ signal: ac.signal }), /gave up/);
  s.reset();
  await pool.close();
  await farm.close();
});
