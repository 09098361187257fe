// deno-lint-ignore-file no-console -- a bench helper: its output is its interface
/**
 * The traffic manager under test for `bench/manager_budget.ts`: a real TrafficManager in its own
 * process (so its memory is measured alone), with loopback allowed as a destination and
 * 10.255.255.1 a black hole (connects to it never finish, as to an address that drops SYNs).
 * Prints `{"port": N}` once listening; then for each line on stdin prints its memory (after a
 * full GC), the buffered bytes of every session, and the open sessions and streams, as JSON.
 *
 * Written against APIs that the code before the budgets had too (it patches prototypes rather
 * than using the manager's newer options), so the same bench measures both.
 *
 * @module
 */
import { DirectDialer } from "../src/dial/direct.ts";
import { TrafficManager } from "../src/manager/server.ts";
import type { DialOptions, Endpoint } from "../src/io/dialer.ts";
import { Session } from "../src/tunnel/session.ts";

export const BLACK_HOLE = "10.255.255.1";

const sessions = new Set<Session>();
const accept = Session.prototype.accept;
Session.prototype.accept = function (this: Session) {
  sessions.add(this);
  return accept.call(this);
};
const dial = DirectDialer.prototype.dialTcp;
DirectDialer.prototype.dialTcp = function (this: DirectDialer, dst: Endpoint, o: DialOptions) {
  if (dst.address !== BLACK_HOLE) return dial.call(this, dst, o);
  return new Promise((_, reject) => {
    o.signal.addEventListener("abort", () => reject(new Error("connect timed out")), {
      once: true,
    });
  });
};

const tm = await TrafficManager.start({
  hostname: "127.0.0.1",
  port: 0,
  client: null,
  namespace: "kconnect",
  resolvConf: "nameserver 127.0.0.1\n",
  denied: ["169.254.0.0/16"],
});
console.log(JSON.stringify({ port: tm.addr.port }));

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : 0;
}

const decoder = new TextDecoderStream();
let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(decoder)) {
  pending += chunk;
  while (pending.includes("\n")) {
    pending = pending.slice(pending.indexOf("\n") + 1);
    (globalThis as { gc?: () => void }).gc?.();
    const m = Deno.memoryUsage();
    let buffered = 0;
    let open = 0;
    let streams = 0;
    for (const s of sessions) {
      if (s.isClosed) continue;
      open++;
      buffered += s.stats.bufferedBytes;
      streams += s.numStreams;
    }
    const stats = (tm as unknown as { stats?: Record<string, unknown> }).stats;
    console.log(JSON.stringify({
      rss: m.rss,
      peakRss: peakRss(),
      heapUsed: m.heapUsed,
      external: m.external,
      buffered,
      sessions: open,
      streams,
      refused: (stats?.refused as Record<string, number> | undefined) ?? null,
    }));
  }
}
await tm.close();
