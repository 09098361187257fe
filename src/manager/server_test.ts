import assert from "node:assert/strict";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { openControl } from "../connect/control.ts";
import { TunnelDialer } from "../dial/tunnel.ts";
import type { Conn } from "../io/conn.ts";
import type { Dialer, DialError } from "../io/dialer.ts";
import { DirectDialer } from "../dial/direct.ts";
import { Session } from "../tunnel/session.ts";
import { TrafficManager, type TrafficManagerOptions } from "./server.ts";

// The manager and a client session over real loopback TCP; no root, no API server. Loopback is
// allowed here (the manager denies it by default) so local servers stand in for pods.
async function setup(extra: Partial<TrafficManagerOptions> = {}) {
  const tm = await TrafficManager.start({
    hostname: "127.0.0.1",
    port: 0,
    client: null,
    namespace: "kconnect",
    resolvConf: "nameserver 127.0.0.1\nsearch default.svc.example.org svc.example.org\n",
    denied: ["169.254.0.0/16"],
    ...extra,
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: tm.addr.port });
  const session = new Session(conn, { client: true });
  return {
    tm,
    session,
    dialer: new TunnelDialer(session),
    async [Symbol.asyncDispose]() {
      await session.close();
      await tm.close();
    },
  };
}

const opts = { sanitizeOps: false, sanitizeResources: false };
const never = () => new AbortController().signal;

async function readAll(c: Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let out = "";
  for (let n; (n = await c.read(buf)) !== null;) {
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  return out;
}

Deno.test({
  name: "TrafficManager dials TCP and relays both ways, passing on the client's half-close",
  ...opts,
  fn: async () => {
    await using t = await setup();
    using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      const c = await server.accept();
      const got = await readAll(c); // until the client's FIN
      await c.write(new TextEncoder().encode(`echo:${got}`));
      c.close();
    })();
    const s = await t.dialer.dialTcp({ address: "127.0.0.1", port: server.addr.port }, {
      signal: never(),
    });
    await s.write(new TextEncoder().encode("hello"));
    await s.closeWrite();
    assert.equal(await readAll(s), "echo:hello");
    s.close();
    await served;
  },
});

Deno.test({
  name: "TrafficManager: a connected TCP stream leaves nothing on its dial's signal",
  ...opts,
  fn: async () => {
    // The signal lives as long as the stream; whatever stays on it stays for hours when the
    // connection idles (it kept a closure, a promise and a timer per connection).
    const direct = new DirectDialer();
    const signals: { signal: AbortSignal; listeners: Set<unknown> }[] = [];
    const dialer: Dialer = {
      dialTcp(dst, o) {
        const listeners = new Set<unknown>();
        const { signal } = o;
        const add = signal.addEventListener.bind(signal);
        const remove = signal.removeEventListener.bind(signal);
        signal.addEventListener = ((t: string, l: EventListener, x?: AddEventListenerOptions) => {
          listeners.add(l);
          add(t, l, x);
        }) as typeof signal.addEventListener;
        signal.removeEventListener = ((t: string, l: EventListener, x?: EventListenerOptions) => {
          listeners.delete(l);
          remove(t, l, x);
        }) as typeof signal.removeEventListener;
        signals.push({ signal, listeners });
        return direct.dialTcp(dst, o);
      },
      openUdp: (dst, o) => direct.openUdp(dst, o),
    };
    await using t = await setup({ dialer });
    using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = server.accept();
    const s = await t.dialer.dialTcp({ address: "127.0.0.1", port: server.addr.port }, {
      signal: never(),
    });
    const peer = await accepted;
    await s.write(new TextEncoder().encode("x"));
    const b = new Uint8Array(1);
    assert.equal(await peer.read(b), 1, "relayed");
    assert.equal(signals.length, 1);
    assert.equal(signals[0].listeners.size, 0, "listeners left on the stream's signal");
    s.close();
    peer.close();
  },
});

Deno.test({
  name: "TrafficManager reports refused, forbidden and timed-out dials with their reasons",
  ...opts,
  fn: async () => {
    await using t = await setup();
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    const errOf = (p: Promise<unknown>) => p.then(() => null, (e) => e as DialError);
    const refused = await errOf(
      t.dialer.dialTcp({ address: "127.0.0.1", port }, { signal: never() }),
    );
    assert.equal(refused?.reason, "refused");
    const denied = await errOf(
      t.dialer.dialTcp({ address: "169.254.169.254", port: 80 }, { signal: never() }),
    );
    assert.equal(denied?.reason, "forbidden");
    assert.match(denied!.message, /169\.254\.0\.0\/16/);
    // A destination that never answers the SYN. The client's own signal is long, so a
    // "timeout" can only be the manager's connect timeout coming back as the reply.
    await using hole = await blackHole();
    const start = performance.now();
    const timedOut = await errOf(
      t.dialer.dialTcp({ address: "127.0.0.1", port: hole.port }, {
        signal: AbortSignal.timeout(30_000),
        timeoutMs: 300,
      }),
    );
    const took = performance.now() - start;
    assert.equal(timedOut?.reason, "timeout", `${timedOut}`);
    assert.match(timedOut!.message, /timed out/);
    assert.ok(took >= 290, `gave up after ${took} ms, before the 300 ms connect timeout`);
  },
});

/**
 * A local port whose connects hang: a listener that never accepts, with its accept queue
 * filled, so Linux drops further SYNs (the client retries for seconds). Found by connecting
 * until a connect does not complete within 200 ms.
 */
async function blackHole(): Promise<{ port: number } & AsyncDisposable> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const held: Deno.Conn[] = [];
  const stuck: Promise<unknown>[] = [];
  for (let i = 0; stuck.length === 0; i++) {
    if (i > 70_000) throw new Error("black hole: the accept queue never filled");
    const connecting = Deno.connect({ hostname: "127.0.0.1", port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      connecting,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 200)),
    ]);
    clearTimeout(timer);
    if (r !== null) {
      held.push(r);
      continue;
    }
    // Slow, or really stuck? A connect to a listener with room completes in well under a
    // millisecond; give it another half second before believing it is dropped.
    const settled = connecting.then((c) => c, () => null);
    const again = await Promise.race([
      settled,
      new Promise<"pending">((resolve) => timer = setTimeout(() => resolve("pending"), 500)),
    ]);
    clearTimeout(timer);
    if (again === "pending") stuck.push(settled.then((c) => c?.close()));
    else if (again !== null) held.push(again);
  }
  return {
    port,
    async [Symbol.asyncDispose]() {
      for (const c of held) c.close();
      listener.close(); // the hanging connect's next SYN retry gets a reset
      await Promise.all(stuck);
    },
  };
}

Deno.test({
  name: "TrafficManager relays UDP datagrams both ways",
  ...opts,
  fn: async () => {
    await using t = await setup();
    const echo = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    (async () => {
      for (;;) {
        const [msg, from] = await echo.receive();
        await echo.send(msg.reverse(), from);
      }
    })().catch(() => {});
    const replies: string[] = [];
    let gotAll!: () => void;
    const all = new Promise<void>((r) => gotAll = r);
    const flow = await t.dialer.openUdp({
      address: "127.0.0.1",
      port: (echo.addr as Deno.NetAddr).port,
    }, {
      signal: never(),
      onDatagram: (p) => {
        replies.push(new TextDecoder().decode(p));
        if (replies.length === 3) gotAll();
      },
    });
    for (const m of ["abc", "de", "f"]) flow.send(new TextEncoder().encode(m));
    await all;
    assert.deepEqual(replies.sort(), ["cba", "ed", "f"]);
    flow.close();
    echo.close();
  },
});

Deno.test({
  name:
    "TrafficManager forwards DNS to its resolv.conf server, and answers SERVFAIL when it is silent",
  ...opts,
  fn: async () => {
    const dns = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    (async () => {
      const [msg, from] = await dns.receive();
      const q = dnsPacket.decode(Buffer.from(msg));
      const answer = dnsPacket.encode({
        id: q.id,
        type: "response",
        flags: dnsPacket.RECURSION_DESIRED,
        questions: q.questions,
        answers: [{ type: "A", name: q.questions![0].name, ttl: 30, data: "10.96.0.20" }],
      });
      await dns.send(new Uint8Array(answer), from);
    })();
    const query = (id: number) =>
      new Uint8Array(dnsPacket.encode({
        id,
        type: "query",
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: "A", name: "web.default.svc.cluster.local" }],
      }));
    {
      await using t = await setup({ dnsPort: (dns.addr as Deno.NetAddr).port });
      const ok = dnsPacket.decode(
        Buffer.from(await t.dialer.queryDns(query(7), AbortSignal.timeout(5000))),
      );
      assert.equal(ok.id, 7);
      assert.deepEqual(ok.answers?.map((a) => (a as { data?: unknown }).data), ["10.96.0.20"]);
    }
    dns.close();
    {
      await using t = await setup({ dnsPort: (dns.addr as Deno.NetAddr).port });
      const raw = await t.dialer.queryDns(query(4242), AbortSignal.timeout(10000));
      const failed = dnsPacket.decode(Buffer.from(raw));
      assert.equal(failed.id, 4242);
      assert.equal(raw[3] & 0x0f, 2, "RCODE SERVFAIL");
      assert.equal(failed.questions?.[0].name, "web.default.svc.cluster.local");
    }
  },
});

Deno.test({
  name: "TrafficManager sends the cluster info on the control stream",
  ...opts,
  fn: async () => {
    await using t = await setup();
    const control = await openControl(t.session, () => {});
    assert.equal(control.info.type, "info");
    assert.equal(control.info.clusterDomain, "example.org");
    assert.equal(control.info.dnsServer, "127.0.0.1");
    control.close();
  },
});

Deno.test({
  name:
    "TrafficManager: streams that never send their open request count against the global cap and are reset after the timeout",
  ...opts,
  fn: async () => {
    // One session parks streams (a byte of a request, never the rest); past the global cap
    // plus headroom (2 + 64 here) another session's new stream is reset at once, instead of
    // the parked ones piling up across sessions until the pod runs out of memory.
    await using t = await setup({
      budgets: { streams: 2, sessionStreams: 2 },
      openRequestTimeoutMs: 300,
    });
    const parker = new Session(
      await Deno.connect({ hostname: "127.0.0.1", port: t.tm.addr.port }),
      { client: true },
    );
    try {
      const parked = [];
      for (let i = 0; i < 66; i++) parked.push(await parker.open({ initial: new Uint8Array([0]) }));
      const ended = parked.map((s) => s.read(new Uint8Array(1)).then(() => "ended", () => "reset"));
      await parker.ping(); // the manager has read every SYN
      using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const to = { address: "127.0.0.1", port: server.addr.port };
      await assert.rejects(t.dialer.dialTcp(to, { signal: never() }), /reset/);
      // The parked streams are reset when their request does not come in time...
      assert.deepEqual(new Set(await Promise.all(ended)), new Set(["reset"]));
      // ...and then there is room again.
      const accepted = server.accept();
      const s = await t.dialer.dialTcp(to, { signal: never() });
      (await accepted).close();
      s.close();
    } finally {
      await parker.close();
    }
  },
});
