import assert from "node:assert/strict";
import type { Conn } from "../stack/dialer.ts";
import { SessionClosedError } from "./errors.ts";
import { memoryPipe } from "./pipe.ts";
import { SessionPool } from "./pool.ts";
import { Session, type SessionCloseInfo } from "./session.ts";

/** A fake "traffic manager": every connect makes a pipe with a server session on the far end. */
function serverFarm() {
  const servers: Session[] = [];
  let failNext = 0;
  let connects = 0;
  return {
    servers,
    get connects() {
      return connects;
    },
    failNext(n: number) {
      failNext = n;
    },
    connect: (_signal: AbortSignal): Promise<Conn> => {
      connects++;
      if (failNext > 0) {
        failNext--;
        return Promise.reject(new Error("connect refused"));
      }
      const [a, b] = memoryPipe();
      servers.push(new Session(b, { client: false }));
      return Promise.resolve(a);
    },
    async close() {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

Deno.test("SessionPool.start() opens size sessions and open() spreads streams", async () => {
  const farm = serverFarm();
  const pool = new SessionPool({ size: 3, connect: farm.connect, session: {} });
  await pool.start();
  assert.equal(pool.sessions.length, 3);
  const streams = await Promise.all(Array.from({ length: 9 }, () => pool.open()));
  assert.deepEqual(pool.sessions.map((s) => s.numStreams), [3, 3, 3]);
  assert.ok((await pool.ping()) >= 0);
  for (const s of streams) s.reset();
  await pool.close();
  await farm.close();
});

Deno.test("SessionPool.start() rejects with the connect error when the first fails", async () => {
  const farm = serverFarm();
  farm.failNext(1);
  const pool = new SessionPool({ size: 2, connect: farm.connect, session: {} });
  await assert.rejects(pool.start(), /connect refused/);
  await pool.close();
  await farm.close();
});

Deno.test("SessionPool replaces a session that died, with backoff", async () => {
  const farm = serverFarm();
  const closes: SessionCloseInfo[] = [];
  const pool = new SessionPool({
    size: 2,
    connect: farm.connect,
    session: {},
    onSessionClosed: (info) => closes.push(info),
    retryMinMs: 10,
  });
  await pool.start();
  const s = await pool.open();
  const dead = pool.sessions.find((x) => x.numStreams === 1)!;
  farm.failNext(2); // the first two reconnects fail
  await farm.servers[pool.sessions.indexOf(dead)].close();
  await dead.closed;
  await assert.rejects(s.read(new Uint8Array(1)), SessionClosedError);
  // New streams go to the survivor meanwhile.
  const t = await pool.open();
  assert.ok(!dead.isClosed || pool.sessions.every((x) => x !== dead));
  const deadline = Date.now() + 2000;
  while (pool.sessions.length < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(pool.sessions.length, 2);
  assert.equal(farm.connects, 2 + 3);
  assert.equal(closes.length, 1);
  assert.equal(closes[0].reason, "remote-goaway");
  t.reset();
  await pool.close();
  assert.equal(pool.sessions.length, 0);
  await assert.rejects(pool.open(), SessionClosedError);
  await farm.close();
});

Deno.test("SessionPool.open() waits for a session when none is live", async () => {
  const farm = serverFarm();
  const pool = new SessionPool({ size: 1, connect: farm.connect, session: {}, retryMinMs: 20 });
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
