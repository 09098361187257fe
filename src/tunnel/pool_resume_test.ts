// A pool of resumable sessions against the manager's side of resumption (SessionRegistry), on
// simulated time: transports are cut, the path stays down for a while, and streams go on — or,
// when the manager was replaced or the grace period ran out, end promptly.
import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { memoryPipe } from "../io/pipe.ts";
import { relay } from "../io/relay.ts";
import { SessionPool } from "./pool.ts";
import type { ResumeEvent } from "./resumer.ts";
import { SessionRegistry } from "./registry.ts";
import { readHello, RefuseCode, writeRefused } from "./hello.ts";
import { Session } from "./session.ts";
import { type FakeClock, simTest } from "./_test_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A fake traffic manager behind a path that can go down: while `down`, a connect hangs until
 * its signal aborts (a black hole); `cut()` breaks every transport. Streams are echoed.
 */
function manager(clock: FakeClock, options: { legacy?: boolean } = {}) {
  let registry = newRegistry(clock);
  const ends: Conn[] = [];
  const sessions: Session[] = [];
  const farm = {
    down: false,
    connects: 0,
    /** The next resume is answered "busy" (another resume of the session under way). */
    busyOnce: false,
    get registry() {
      return registry;
    },
    /** The manager restarted: it knows no session. */
    restart() {
      for (const s of sessions) s.close();
      registry = newRegistry(clock);
    },
    cut() {
      for (const c of ends.splice(0)) c.close();
    },
    connect(signal: AbortSignal): Promise<Conn> {
      farm.connects++;
      if (farm.down) {
        // The SYNs go nowhere: the connect fails after a while (or when given up).
        return new Promise((_, reject) => {
          const t = clock.setTimer(() => reject(new Error("connect timed out")), 5_000);
          signal.addEventListener("abort", () => {
            clock.clearTimer(t);
            reject(signal.reason);
          }, { once: true });
        });
      }
      const [a, b] = memoryPipe({ clock, delayMs: 5 });
      ends.push(a, b);
      const create = (conn: Conn, grant: { retainLimit: number } | null) => {
        const s = new Session(conn, {
          client: false,
          clock,
          resumable: grant !== null,
          ...(grant ? { retainLimit: grant.retainLimit } : {}),
        });
        sessions.push(s);
        (async () => {
          for await (const st of s) relay(st, st).catch(() => {});
        })();
        return s;
      };
      if (options.legacy) create(b, null);
      else if (farm.busyOnce) {
        farm.busyOnce = false;
        readHello(b).then(() => writeRefused(b, RefuseCode.Busy, "a resume is under way"))
          .finally(() => b.close());
      } else registry.handshake(b, create);
      return Promise.resolve(a);
    },
    async close() {
      await Promise.all(sessions.map((s) => s.close()));
    },
  };
  return farm;
}

function newRegistry(clock: FakeClock): SessionRegistry {
  return new SessionRegistry({
    maxGraceSeconds: 60,
    retainLimit: 1 << 20,
    detachedCapBytes: 64 << 20,
    clock,
  });
}

async function echo(
  s: { write(p: Uint8Array): Promise<number>; read(p: Uint8Array): Promise<number | null> },
  text: string,
): Promise<string> {
  await s.write(enc.encode(text));
  const buf = new Uint8Array(64);
  const n = await s.read(buf);
  return n === null ? "<eof>" : dec.decode(buf.subarray(0, n));
}

/** A resumable pool of one session to a fresh farm, with a stream open and echoing. */
async function connected(clock: FakeClock) {
  const farm = manager(clock);
  const events: ResumeEvent[] = [];
  const pool = poolOf(clock, farm, events);
  await pool.start();
  const s = await pool.open();
  assert.equal(await echo(s, "x"), "x");
  return {
    farm,
    events,
    pool,
    s,
    async [Symbol.asyncDispose]() {
      await pool.close();
      await farm.close();
    },
  };
}

function poolOf(clock: FakeClock, farm: ReturnType<typeof manager>, events: ResumeEvent[]) {
  return new SessionPool({
    size: 1,
    connect: (signal) => farm.connect(signal),
    session: { keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 2000 },
    clock,
    resume: { graceSeconds: 30, onEvent: (e) => events.push(e) },
  });
}

simTest(
  "resumable pool: a stream lives through a cut transport and 20 s of black hole, and moves within a second of the path's return",
  async (clock) => {
    const farm = manager(clock);
    const events: ResumeEvent[] = [];
    const pool = poolOf(clock, farm, events);
    await pool.start();
    assert.equal(pool.resumable, true);
    assert.equal(pool.graceSeconds, 30);
    const s = await pool.open();
    assert.equal(await echo(s, "before"), "before");

    farm.down = true;
    farm.cut();
    await clock.sleep(20_000);
    assert.equal(pool.detached.length, 1, "the session waits, detached");
    assert.equal(events[0].kind, "detached");
    assert.equal(farm.registry.stats.detached, 1, "and the manager holds it too");
    const pending = s.write(enc.encode("during")); // the app's write stalls, no error
    const back = clock.now();
    farm.down = false;
    const buf = new Uint8Array(64);
    await pending;
    const n = await s.read(buf);
    assert.equal(dec.decode(buf.subarray(0, n!)), "during");
    assert.ok(clock.now() - back <= 1000, `moving again ${clock.now() - back} ms after the return`);
    const resumed = events.find((e) => e.kind === "resumed");
    assert.ok(resumed && resumed.kind === "resumed" && resumed.streams === 1);
    assert.equal(await echo(s, "after"), "after");
    assert.equal(farm.registry.stats.resumed, 1);
    await pool.close();
    await farm.close();
  },
);

simTest(
  "resumable pool: the manager replaced during the outage refuses; the stream ends at once and a fresh session serves new streams",
  async (clock) => {
    await using c = await connected(clock);
    const { farm, events, pool, s } = c;
    farm.down = true;
    farm.cut();
    await clock.sleep(5_000);
    farm.restart();
    const back = clock.now();
    farm.down = false;
    const r = await s.read(new Uint8Array(8)).then(() => "read", (e) => (e as Error).message);
    assert.match(r, /resume refused: no such session/);
    assert.ok(clock.now() - back <= 1000);
    assert.ok(events.some((e) => e.kind === "refused" && e.streams === 1));
    const t = await pool.open();
    assert.equal(await echo(t, "new"), "new");
  },
);

simTest(
  "resumable pool: past the grace period the session ends (streams fail) and the manager drops it too",
  async (clock) => {
    await using c = await connected(clock);
    const { farm, events, pool, s } = c;
    farm.down = true;
    farm.cut();
    const r = s.read(new Uint8Array(8)).then(() => "read", (e) => (e as Error).message);
    await clock.sleep(31_000);
    assert.match(await r, /longer than the 30 s grace period/);
    assert.ok(events.some((e) => e.kind === "expired"));
    await clock.sleep(30_000);
    assert.equal(farm.registry.stats.sessions, 0, "the manager's grace ran out too");
    assert.equal(farm.registry.stats.expired, 1);
    farm.down = false;
    const t = await pool.open();
    assert.equal(await echo(t, "new"), "new");
  },
);

simTest(
  "resumable pool: a protocol-1 manager is recognised; the pool goes on without resumption",
  async (clock) => {
    const farm = manager(clock, { legacy: true });
    const events: ResumeEvent[] = [];
    const pool = poolOf(clock, farm, events);
    await pool.start();
    assert.equal(pool.resumable, false);
    assert.equal(events[0]?.kind, "legacy");
    const s = await pool.open();
    assert.equal(await echo(s, "old"), "old");
    farm.cut();
    const r = await s.read(new Uint8Array(8)).then(() => "read", (e) => (e as Error).message);
    assert.match(r, /session closed/, "without resumption a lost transport ends the streams");
    await pool.close();
    await farm.close();
  },
);

simTest(
  "resumable pool: a 'busy' answer (another resume under way) is tried again, not taken as the end",
  async (clock) => {
    await using c = await connected(clock);
    const { farm, events, s } = c;
    farm.busyOnce = true;
    farm.cut();
    assert.equal(await echo(s, "y"), "y");
    assert.ok(!events.some((e) => e.kind === "refused"), JSON.stringify(events));
    const resumed = events.find((e) => e.kind === "resumed");
    assert.ok(resumed?.kind === "resumed" && resumed.attempts >= 2);
  },
);
