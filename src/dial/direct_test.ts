import assert from "node:assert/strict";
import { DialError } from "../io/dialer.ts";
import { DirectDialer } from "./direct.ts";

/**
 * A signal whose abort listeners are tracked: the ones still on it are what it keeps alive (the
 * manager's is a stream's lifetime signal, so a listener left behind lives as long as the
 * stream: its closure, and whatever that holds).
 */
function trackedSignal(): {
  controller: AbortController;
  signal: AbortSignal;
  listeners: Set<unknown>;
} {
  const controller = new AbortController();
  const signal = controller.signal;
  const listeners = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, l: EventListener, o?: AddEventListenerOptions) => {
    if (type === "abort") listeners.add(l);
    add(type, l, o);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, l: EventListener, o?: EventListenerOptions) => {
    if (type === "abort") listeners.delete(l);
    remove(type, l, o);
  }) as typeof signal.removeEventListener;
  return { controller, signal, listeners };
}

Deno.test("DirectDialer.dialTcp() leaves no listener on the signal once connected", async () => {
  using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = server.accept();
  const { signal, listeners } = trackedSignal();
  const conn = await new DirectDialer().dialTcp(
    { address: "127.0.0.1", port: server.addr.port },
    { signal },
  );
  assert.equal(listeners.size, 0, "the abort listener outlived the dial");
  conn.close();
  (await accepted).close();
});

Deno.test("DirectDialer.dialTcp() leaves no listener on the signal when refused", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  const { signal, listeners } = trackedSignal();
  const err = await new DirectDialer().dialTcp({ address: "127.0.0.1", port }, { signal })
    .then(() => null, (e) => e);
  assert.ok(err instanceof DialError);
  assert.equal(err.reason, "refused");
  assert.equal(listeners.size, 0);
});

Deno.test("DirectDialer.dialTcp() gives up when the signal aborts, before or during", async () => {
  const dialer = new DirectDialer();
  const dst = { address: "127.0.0.1", port: 9 };
  const before = await dialer.dialTcp(dst, { signal: AbortSignal.abort() })
    .then(() => null, (e) => e);
  assert.ok(before instanceof DialError);
  assert.equal(before.reason, "timeout");
  assert.match(before.message, /aborted/);
  // 192.0.2.1 (TEST-NET-1): unroutable, or a connect that hangs; aborted at once either way.
  const { controller, signal, listeners } = trackedSignal();
  const dialing = dialer.dialTcp({ address: "192.0.2.1", port: 80 }, { signal, timeoutMs: 60_000 })
    .then(() => null, (e) => e);
  controller.abort();
  const during = await dialing;
  assert.ok(during instanceof DialError);
  assert.equal(listeners.size, 0);
});

Deno.test("DirectDialer.openUdp() closes the flow on abort, and close() takes its listener off", async () => {
  const server = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const dst = { address: "127.0.0.1", port: (server.addr as Deno.NetAddr).port };
  const dialer = new DirectDialer();
  const a = trackedSignal();
  const flow = await dialer.openUdp(dst, { signal: a.signal, onDatagram() {} });
  assert.equal(a.listeners.size, 1, "the flow closes when its signal aborts");
  flow.close();
  assert.equal(a.listeners.size, 0, "closed: nothing left on the signal");
  const b = trackedSignal();
  const aborted = await dialer.openUdp(dst, { signal: b.signal, onDatagram() {} });
  b.controller.abort();
  assert.equal(b.listeners.size, 0);
  aborted.send(new Uint8Array([1])); // a closed flow drops what it is given
  server.close();
});
