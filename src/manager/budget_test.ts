// Security review H2 and L7: the traffic manager's budgets, played against a real TrafficManager
// over loopback TCP by a hostile client that speaks yamux itself. Loopback is allowed as a
// destination here (the manager denies it by default) so local servers stand in for pods.
import assert from "node:assert/strict";
import { TunnelDialer } from "../dial/tunnel.ts";
import { DirectDialer } from "../dial/direct.ts";
import {
  type DatagramFlow,
  type Dialer,
  DialError,
  type DialOptions,
  type Endpoint,
  type UdpOptions,
} from "../io/dialer.ts";
import { FrameReader } from "../tunnel/length_prefixed.ts";
import { readOpenReply } from "../tunnel/open.ts";
import { encodeOpenRequest } from "../tunnel/open_request.ts";
import { Session } from "../tunnel/session.ts";
import { encodeFrame, Flag, FrameType } from "../tunnel/frame.ts";
import type { Stream } from "../tunnel/stream.ts";
import {
  BudgetLedger,
  type Budgets,
  budgetsFromOptions,
  MAX_DIAL_TIMEOUT_MS,
  OPEN_RECEIVE_LIMIT,
  resolveBudgets,
  type SessionBudget,
} from "./budget.ts";
import { clampTimeout } from "./streams.ts";
import { TrafficManager } from "./server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const KiB = 1024;
const MiB = 1024 * KiB;

/** A dialer whose TCP connects never finish (a black-holed address) until aborted. */
class HangingDialer implements Dialer {
  inProgress = 0;
  most = 0;
  timeouts: number[] = [];
  readonly #udp = new DirectDialer();
  dialTcp(_dst: Endpoint, o: DialOptions): Promise<never> {
    this.inProgress++;
    this.most = Math.max(this.most, this.inProgress);
    this.timeouts.push(o.timeoutMs ?? -1);
    return new Promise((_, reject) => {
      const fail = () => {
        this.inProgress--;
        reject(new DialError("timeout", "connect timed out"));
      };
      if (o.signal.aborted) fail();
      else o.signal.addEventListener("abort", fail, { once: true });
    });
  }
  openUdp(dst: Endpoint, o: UdpOptions): Promise<DatagramFlow> {
    return this.#udp.openUdp(dst, o);
  }
}

async function start(budgets: Partial<Budgets>, dialer?: Dialer) {
  const tm = await TrafficManager.start({
    hostname: "127.0.0.1",
    port: 0,
    client: null,
    namespace: "kconnect",
    resolvConf: "nameserver 127.0.0.1\n",
    denied: ["169.254.0.0/16"],
    budgets,
    dialer,
  });
  const sessions: Session[] = [];
  return {
    tm,
    async connect(): Promise<Session> {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: tm.addr.port });
      const s = new Session(conn, { client: true });
      sessions.push(s);
      await s.ping(); // the manager has taken the connection
      return s;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(sessions.map((s) => s.close()));
      await tm.close();
    },
  };
}

function tcpRequest(host: string, port: number, data = 0, timeoutMs = 60_000): Uint8Array {
  const req = encodeOpenRequest({ kind: "tcp", host, port, timeoutMs });
  const out = new Uint8Array(req.length + data);
  out.set(req);
  return out;
}

/** How a stream's open went: its reply, or "reset". */
async function outcome(s: Stream): Promise<string> {
  try {
    const r = await readOpenReply(s);
    return `${r.status}${r.message ? `: ${r.message}` : ""}`;
  } catch (err) {
    return /reset/.test((err as Error).message) ? "reset" : `error: ${(err as Error).message}`;
  }
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test({
  name: "H2: 2x the stream budget of black-holed dials with data: buffered bytes stay in budget, " +
    "the data is reset, the excess streams are refused with the reason",
  ...opts,
  fn: async () => {
    const budget = 1 * MiB;
    const dialer = new HangingDialer();
    await using t = await start({
      sessionStreams: 64,
      streams: 64,
      sessionBufferedBytes: budget,
      bufferedBytes: budget,
    }, dialer);
    const c = await t.connect();
    // 128 streams, each a dial that never completes plus 200 KiB pushed before the reply: what
    // pinned 64 MiB per 256 streams before.
    const pushing = [];
    for (let i = 0; i < 128; i++) {
      pushing.push(await c.open({ initial: tcpRequest("10.1.2.3", 80, 200 * KiB) }));
    }
    const results = await Promise.all(pushing.map(outcome));
    assert.ok(t.tm.stats.bufferedBytes <= budget, `buffered ${t.tm.stats.bufferedBytes}`);
    assert.deepEqual([...new Set(results)], ["reset"], "data before the open reply resets");
    assert.ok(c.stats.bytesIn < 1 * MiB);
    // The same without the data: the first 64 wait for their dial, the rest are refused.
    const waiting = [];
    for (let i = 0; i < 128; i++) {
      waiting.push(await c.open({ initial: tcpRequest("10.1.2.3", 80) }));
    }
    const refused = await Promise.all(waiting.slice(64).map(outcome));
    for (const r of refused) {
      assert.match(
        r,
        /^error: traffic manager busy: this session has 64 streams open \(limit 64, --max-session-streams\)$/,
      );
    }
    assert.equal(t.tm.stats.streams, 64);
    assert.ok(t.tm.stats.refused.streams >= 64);
    assert.equal(t.tm.stats.bufferedBytes, 0);
    for (const s of waiting) s.reset();
    await waitFor(() => t.tm.stats.streams === 0, "the streams are given back");
    await waitFor(() => dialer.inProgress === 0, "reset streams stop their dials");
  },
});

Deno.test({
  name: "H2: streams to a destination that does not read: buffered bytes stay in the session's " +
    "budget (excess streams reset), and another session's flow still works",
  ...opts,
  fn: async () => {
    using sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const c of sink) held.push(c); // accepted, never read
    })();
    using echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of echo) {
        (async () => {
          const buf = new Uint8Array(64 * KiB);
          try {
            for (let n; (n = await c.read(buf)) !== null;) await c.write(buf.subarray(0, n));
            await c.closeWrite();
          } catch { /* reset */ }
        })();
      }
    })();
    const budget = 2 * MiB;
    await using t = await start({
      sessions: 4,
      sessionBufferedBytes: budget,
      bufferedBytes: budget,
    });
    const hostile = await t.connect();
    const dialer = new TunnelDialer(hostile);
    const chunk = new Uint8Array(256 * KiB);
    let most = 0;
    const sample = setInterval(() => most = Math.max(most, t.tm.stats.bufferedBytes), 1);
    const writers = [];
    for (let i = 0; i < 16; i++) {
      const s = await dialer.dialTcp({ address: "127.0.0.1", port: sink.addr.port }, {
        signal: new AbortController().signal,
      });
      writers.push((async () => {
        try {
          for (let sent = 0; sent < 32 * MiB; sent += chunk.length) await s.write(chunk);
          return "wrote all";
        } catch (err) {
          return /reset/.test((err as Error).message) ? "reset" : (err as Error).message;
        }
      })());
    }
    await waitFor(
      () => t.tm.stats.refused.bufferedBytes >= 4 && t.tm.stats.bufferedBytes > budget / 2,
      "the session fills its budget",
      20_000,
    );
    // The session is at its budget and so is the manager: another session still gets through,
    // as its bytes stay within its fair share.
    const other = new TunnelDialer(await t.connect());
    const e = await other.dialTcp({ address: "127.0.0.1", port: echo.addr.port }, {
      signal: new AbortController().signal,
    });
    const payload = crypto.getRandomValues(new Uint8Array(64 * KiB));
    await e.write(payload);
    await e.closeWrite();
    const back = new Uint8Array(payload.length);
    for (let got = 0; got < back.length;) {
      const n = await e.read(back.subarray(got));
      assert.notEqual(n, null, `echo ended after ${got} bytes`);
      got += n!;
    }
    assert.deepEqual(back, payload);
    clearInterval(sample);
    most = Math.max(most, t.tm.stats.bufferedBytes);
    // At most one frame (64 KiB) over: a frame is admitted whole or not at all.
    assert.ok(most <= budget, `buffered ${most} > ${budget}`);
    await hostile.close();
    const results = await Promise.all(writers);
    assert.ok(results.includes("reset"), results.join(","));
    for (const c of held) c.close();
  },
});

Deno.test({
  name: "H2: the session cap refuses further sessions' streams with the reason; a few are kept " +
    "to say so, the rest closed",
  ...opts,
  fn: async () => {
    using echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of echo) c.close();
    })();
    await using t = await start({ sessions: 2 });
    const ok1 = await t.connect();
    await t.connect();
    assert.equal(t.tm.stats.sessions, 2);
    const over = await t.connect();
    // A data stream: the error reply says why.
    const err = await new TunnelDialer(over).dialTcp(
      { address: "127.0.0.1", port: echo.addr.port },
      { signal: new AbortController().signal },
    ).then(() => null, (e: Error) => e);
    assert.match(
      err?.message ?? "",
      /traffic manager busy: 2 sessions are open \(limit 2, --max-sessions\)/,
    );
    // The control stream: an error message in place of the cluster info.
    const control = await over.open({ initial: encodeOpenRequest({ kind: "control" }) });
    const msg = JSON.parse(
      new TextDecoder().decode((await new FrameReader(control).readU32Frame(1 << 16))!),
    );
    assert.equal(msg.type, "error");
    assert.match(msg.message, /--max-sessions/);
    // Existing sessions keep working.
    await new TunnelDialer(ok1).dialTcp({ address: "127.0.0.1", port: echo.addr.port }, {
      signal: new AbortController().signal,
    }).then((s) => s.close());
    // Only a few refusing sessions are kept; more connections are closed at once.
    const extra = [];
    for (let i = 0; i < 8; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: t.tm.addr.port });
      // What a client sends first (a protocol-1 client's ping): the manager reads before it
      // decides anything.
      await c.write(encodeFrame(FrameType.Ping, Flag.SYN, 0, 1)).catch(() => 0);
      extra.push(c);
    }
    await waitFor(() => t.tm.stats.refused.sessions >= 9, "the connections are refused");
    assert.ok(t.tm.stats.refusingSessions <= 4, `${t.tm.stats.refusingSessions}`);
    for (const c of extra) c.close();
    assert.equal(t.tm.stats.sessions, 2);
  },
});

Deno.test({
  name: "H2: pending dials per session are capped; more wait their turn, time out in the queue " +
    "with the reason, and move on when earlier ones end",
  ...opts,
  fn: async () => {
    const dialer = new HangingDialer();
    await using t = await start({ sessionPendingDials: 4, pendingDials: 6 }, dialer);
    const a = await t.connect();
    const streams = [];
    for (let i = 0; i < 10; i++) {
      streams.push(await a.open({ initial: tcpRequest("10.1.2.3", 80) }));
    }
    await waitFor(() => t.tm.stats.queuedDials === 6, "6 dials queue");
    assert.equal(dialer.inProgress, 4);
    assert.equal(t.tm.stats.pendingDials, 4);
    // A second session gets the 2 turns left of the manager's 6.
    const b = await t.connect();
    for (let i = 0; i < 3; i++) b.open({ initial: tcpRequest("10.1.2.3", 80) });
    await waitFor(() => t.tm.stats.queuedDials === 7, "b's third dial queues");
    assert.equal(dialer.inProgress, 6);
    // One that waits longer than its own connect timeout is told why.
    const late = await b.open({ initial: tcpRequest("10.1.2.3", 80, 0, 200) });
    assert.match(
      await outcome(late),
      /^timeout: no turn to dial within 200 ms: this session has 2 connects in progress and 1 waiting/,
    );
    // Ending a's dials (the client gives up) lets the queue move, a's first.
    for (const s of streams.slice(0, 4)) s.reset();
    await waitFor(() => dialer.most === 6 && t.tm.stats.queuedDials === 3, "the queue moves");
    assert.equal(dialer.inProgress, 6);
    assert.ok(dialer.inProgress <= 6);
  },
});

Deno.test({
  name: "H2: UDP flows are capped per session; the next is refused with the reason",
  ...opts,
  fn: async () => {
    const udp = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    await using t = await start({ sessionUdpFlows: 3 });
    const d = new TunnelDialer(await t.connect());
    const dst = { address: "127.0.0.1", port: (udp.addr as Deno.NetAddr).port };
    const flows = [];
    for (let i = 0; i < 3; i++) {
      flows.push(await d.openUdp(dst, { signal: new AbortController().signal, onDatagram() {} }));
    }
    assert.equal(t.tm.stats.udpFlows, 3);
    const err = await d.openUdp(dst, { signal: new AbortController().signal, onDatagram() {} })
      .then(() => null, (e: Error) => e);
    assert.match(
      err?.message ?? "",
      /traffic manager busy: this session has 3 UDP flows \(limit 3, --max-session-udp-flows\)/,
    );
    for (const f of flows) f.close();
    await waitFor(() => t.tm.stats.udpFlows === 0, "closed flows are given back");
    udp.close();
  },
});

Deno.test({
  name: "L7: a client's connect timeout is clamped to 120 s (2^32-1 ms fired at once before)",
  ...opts,
  fn: async () => {
    assert.equal(clampTimeout(0xffffffff), MAX_DIAL_TIMEOUT_MS);
    assert.equal(clampTimeout(2 ** 31), 120_000);
    assert.equal(clampTimeout(0), 1);
    assert.equal(clampTimeout(5000), 5000);
    const dialer = new HangingDialer();
    await using t = await start({}, dialer);
    const c = await t.connect();
    const s = await c.open({ initial: tcpRequest("10.1.2.3", 80, 0, 0xffffffff) });
    await waitFor(() => dialer.timeouts.length === 1, "the dial starts");
    assert.ok(dialer.timeouts[0] <= MAX_DIAL_TIMEOUT_MS, `${dialer.timeouts[0]}`);
    assert.ok(dialer.timeouts[0] > 100_000, `${dialer.timeouts[0]}`);
    // It is still pending (an overflowing timer would have fired at once).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(dialer.inProgress, 1);
    s.reset();
  },
});

Deno.test("budgets: flags parse in MiB and counts; bad values name the flag", () => {
  const b = budgetsFromOptions({ maxSessions: "8", maxBufferMib: "32", maxSessionBufferMib: "4" });
  assert.equal(b.sessions, 8);
  assert.equal(b.bufferedBytes, 32 * MiB);
  assert.equal(b.sessionBufferedBytes, 4 * MiB);
  assert.throws(() => budgetsFromOptions({ maxStreams: "0" }), /--max-streams/);
  assert.throws(() => budgetsFromOptions({ maxStreams: "1e3" }), /--max-streams/);
  assert.throws(
    () => resolveBudgets({ sessionStreams: 10, streams: 5 }),
    /--max-session-streams \(10\) may not exceed --max-streams \(5\)/,
  );
  // A heavy user (500 connections and their DNS queries over two transports: about 300
  // streams a session) fits with room to spare, and so do three of them.
  const d = resolveBudgets();
  assert.ok(d.sessionStreams >= 3 * 300, `${d.sessionStreams}`);
  assert.ok(d.streams >= 3 * 600, `${d.streams}`);
  assert.ok(OPEN_RECEIVE_LIMIT < 6 * KiB);
});

Deno.test("budgets: receive windows and relay buffers grow only within the buffer budget", () => {
  const ledger = new BudgetLedger({
    sessions: 2,
    sessionBufferedBytes: 1 * MiB,
    bufferedBytes: 1 * MiB,
  });
  const a = ledger.openSession() as SessionBudget;
  const b = ledger.openSession() as SessionBudget;
  assert.equal(typeof ledger.openSession(), "string", "a third session is past the cap");
  const s = {} as Stream;
  // Window growth: up to the budget less the yamux window every stream has anyway.
  assert.ok(a.admitWindowGrowth(s, 512 * KiB));
  assert.ok(!a.admitWindowGrowth(s, 512 * KiB));
  assert.ok(b.admitWindowGrowth(s, 256 * KiB));
  assert.ok(!b.admitWindowGrowth(s, 1), "the manager's total is spent too");
  // Relay buffers: a's and the manager's are full; b's fair share (1 MiB / 4) is left.
  a.onBuffered(1 * MiB - 16 * KiB);
  const ra = a.relayBudget();
  assert.ok(ra.grow(16 * KiB));
  assert.ok(!ra.grow(1));
  assert.equal(a.relayBudget(), ra, "one for all the session's relays: none per stream");
  const rb = b.relayBudget();
  assert.ok(rb.grow(200 * KiB), "within b's share though the manager is full");
  assert.ok(!rb.grow(100 * KiB), "past b's share");
  ra.release(16 * KiB);
  rb.release(200 * KiB);
  a.onBuffered(-(1 * MiB - 16 * KiB));
  assert.equal(ledger.stats.relayBytes, 0);
  assert.equal(ledger.stats.bufferedBytes, 0);
  a.close();
  assert.equal(ledger.sessions, 1);
  assert.equal(typeof ledger.openSession(), "object", "a closed session makes room");
});

Deno.test("budgets: streamGone() aborts when the stream leaves or the session closes; a forgotten one does not", () => {
  const ledger = new BudgetLedger();
  const a = ledger.openSession() as SessionBudget;
  const stream = (n: number) => ({ id: n, released: false, windowGrowth: 0 }) as unknown as Stream;
  const [s1, s2, s3] = [stream(1), stream(3), stream(5)];
  for (const s of [s1, s2, s3]) assert.equal(a.admitStream(s, "tcp"), null);
  const g1 = a.streamGone(s1);
  assert.equal(a.streamGone(s1), g1, "one signal per stream");
  a.onRelease(s1);
  assert.ok(g1.aborted);
  assert.match(String(g1.reason), /stream finished/);
  assert.ok(a.streamGone(s1).aborted, "a stream that has left: aborted at once");
  // The dial is over: the stream keeps no signal, and still counts until it leaves.
  const g2 = a.streamGone(s2);
  a.forgetStreamGone(s2);
  assert.equal(a.stats.streams, 2);
  a.onRelease(s2);
  assert.ok(!g2.aborted);
  assert.equal(a.stats.streams, 1);
  const g3 = a.streamGone(s3);
  a.close();
  assert.ok(g3.aborted);
  assert.match(String(g3.reason), /session closed/);
  assert.equal(ledger.stats.streams, 0);
});

Deno.test("budgets: a turn to dial counts until given back, once however often", async () => {
  const ledger = new BudgetLedger({ sessionPendingDials: 1, pendingDials: 1 });
  const a = ledger.openSession() as SessionBudget;
  const never = new AbortController().signal;
  const done = await a.acquireDial(never, 60_000);
  assert.equal(ledger.stats.pendingDials, 1);
  const next = a.acquireDial(never, 60_000);
  assert.equal(a.stats.queuedDials, 1);
  done();
  done();
  const done2 = await next;
  assert.equal(ledger.stats.pendingDials, 1, "the waiting dial got the turn, and only it");
  assert.equal(a.stats.queuedDials, 0);
  done2();
  assert.equal(ledger.stats.pendingDials, 0);
  a.close();
});
