// deno-lint-ignore-file no-console -- a bench helper: its output is its interface
/**
 * Opens `n` TCP connections to `host:port` and holds them idle (bench/vs_portforward.ts
 * `--scale`, run in the laptop namespace so that every connection is a flow through kconnect).
 * Connects `concurrency` at a time; a connect that takes longer than `timeout` ms counts as
 * failed (and is closed if it completes later). Then it waits for commands on stdin, one per
 * line:
 *
 * - `echo`: every open connection sends one byte and waits (up to `timeout` ms) for it to come
 *   back; the connections stay open;
 * - `close`: closes them all and exits.
 *
 * Prints one JSON line per phase: `{"phase":"progress",…}` every 1000 attempts,
 * `{"phase":"opened","opened":…,"failed":{reason: count},"ms":…,"nofile":…}`, then
 * `{"phase":"echoed","answered":…,"wrong":…,"failed":{reason: count},"ms":…}` and
 * `{"phase":"closed"}`.
 *
 *   deno run -A bench/_conn_holder.ts host=10.244.0.12 port=7300 n=10000 concurrency=200 \
 *     timeout=30000
 *
 * @module
 */

const args = Object.fromEntries(Deno.args.map((a) => a.split("=", 2) as [string, string]));
const hostname = args.host;
const port = Number(args.port);
const n = Number(args.n ?? 10000);
const concurrency = Number(args.concurrency ?? 200);
const timeoutMs = Number(args.timeout ?? 30000);

const say = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

function reason(err: unknown): string {
  const e = err as Error;
  return `${e?.name ?? "Error"}: ${e?.message ?? String(err)}`;
}

function count(m: Record<string, number>, key: string): void {
  m[key] = (m[key] ?? 0) + 1;
}

/** Resolves with `p`'s value, or rejects with a timeout error after `ms` (then `late` gets it). */
function within<T>(p: Promise<T>, ms: number, late: (v: T) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        p.then(late, () => {});
        reject(new Error(`no answer within ${ms} ms`));
      }, ms);
    }),
  ]).catch((err) => {
    if (timedOut) (err as Error).name = "Timeout";
    throw err;
  });
}

const nofile = /Max open files\s+(\S+)\s+(\S+)/.exec(
  await Deno.readTextFile("/proc/self/limits"),
);

// ---- open ----------------------------------------------------------------------------------

const conns: Deno.TcpConn[] = [];
const openFailed: Record<string, number> = {};
let next = 0;
const t0 = performance.now();
async function opener(): Promise<void> {
  while (next < n) {
    next++;
    if (next % 1000 === 0) {
      say({ phase: "progress", attempted: next, opened: conns.length, ms: performance.now() - t0 });
    }
    try {
      conns.push(await within(Deno.connect({ hostname, port }), timeoutMs, (c) => c.close()));
    } catch (err) {
      count(openFailed, reason(err));
    }
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, n) }, opener));
say({
  phase: "opened",
  opened: conns.length,
  failed: openFailed,
  ms: Math.round(performance.now() - t0),
  nofile: nofile ? `${nofile[1]}/${nofile[2]}` : "?",
});

// ---- commands ------------------------------------------------------------------------------

async function echoAll(): Promise<void> {
  const t = performance.now();
  let answered = 0, wrong = 0;
  const failed: Record<string, number> = {};
  await Promise.all(conns.map(async (c, i) => {
    const byte = 1 + i % 251;
    try {
      await within(c.write(new Uint8Array([byte])), timeoutMs, () => {});
      const buf = new Uint8Array(1);
      const got = await within(c.read(buf), timeoutMs, () => {});
      if (got === null) count(failed, "closed by the peer");
      else if (buf[0] === byte) answered++;
      else wrong++;
    } catch (err) {
      count(failed, reason(err));
    }
  }));
  say({ phase: "echoed", answered, wrong, failed, ms: Math.round(performance.now() - t) });
}

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
for await (const chunk of lines) {
  pending += chunk;
  let nl: number;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const cmd = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (cmd === "echo") await echoAll();
    else if (cmd === "close") {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      say({ phase: "closed" });
      Deno.exit(0);
    }
  }
}
