// deno-lint-ignore-file no-console -- a benchmark: its output is its interface
/**
 * A hostile client against a real traffic manager (security review H2): how much memory can one
 * client make the manager hold? The manager runs alone in a child process
 * (`manager_budget_child.ts`, loopback allowed, 10.255.255.1 a black hole); this process plays
 * the client, speaking yamux itself. Three attacks, each on a fresh manager:
 *
 * 1. **black-holed dials with data**: `S` sessions × `N` streams, each a TCP open request to the
 *    black hole followed by as much data as the yamux window lets a client send before any
 *    answer (256 KiB);
 * 2. **many sessions**: 200 port-forward connections, each pinging;
 * 3. **streams to a destination that does not read**: streams dialled to a local server that
 *    accepts and never reads, each written to until it blocks (at most 4 MiB each);
 * 4. **everything at once**: 40 sessions, each with 60 such streams and 4 UDP flows to a server
 *    that answers every datagram with 256 KiB the client never reads (with the budgets: every
 *    cap reached). Unbounded without budgets: run it only against code that has them.
 *
 * For each it prints the manager's resident memory now and at its peak (VmHWM), V8 heap and
 * external (ArrayBuffer) memory after a full GC, the bytes its sessions buffer, and its open
 * sessions and streams. The pod's limit is 320 MiB (`src/install/manifests.ts`); the manager
 * runs with the V8 flags the Deployment gives it.
 *
 * ```sh
 * deno run -A --unstable-net bench/manager_budget.ts [--sessions 4] [--streams 1024] \
 *   [--stalled 128] [--only 1,2,3,4]
 * ```
 *
 * @module
 */
import { DENO_RUN } from "../tests/_dataplane.ts";
import { managerCommand } from "../src/install/manifests.ts";
import { TunnelDialer } from "../src/dial/tunnel.ts";
import { encodeOpenRequest } from "../src/tunnel/open_request.ts";
import { Session } from "../src/tunnel/session.ts";
import type { Stream } from "../src/tunnel/stream.ts";

const BLACK_HOLE = "10.255.255.1";
const KiB = 1024;
const MiB = 1024 * KiB;

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/**
 * V8 flags for the manager: the Deployment's (from its command), or `--v8 a,b` (`--v8 ""` for
 * none).
 */
const v8Flags = Deno.args.includes("--v8")
  ? Deno.args[Deno.args.indexOf("--v8") + 1].split(",").filter((f) => f !== "")
  : (managerCommand(8081).find((a) => a.startsWith("--v8-flags="))?.slice(11).split(",") ?? []);

interface Measure {
  rss: number;
  peakRss: number;
  heapUsed: number;
  external: number;
  buffered: number;
  sessions: number;
  streams: number;
  refused: Record<string, number> | null;
}

/** A manager in a child process. */
async function manager() {
  const [deno, ...lead] = DENO_RUN;
  const child = new Deno.Command(deno, {
    args: [
      ...lead,
      "-A",
      "--unstable-net",
      `--v8-flags=${["--expose-gc", ...v8Flags].join(",")}`,
      new URL("./manager_budget_child.ts", import.meta.url).pathname,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const nextLine = async (): Promise<string> => {
    while (!buf.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the manager exited");
      buf += value;
    }
    const line = buf.slice(0, buf.indexOf("\n"));
    buf = buf.slice(buf.indexOf("\n") + 1);
    return line;
  };
  const { port } = JSON.parse(await nextLine()) as { port: number };
  const stdin = child.stdin.getWriter();
  return {
    port,
    async measure(): Promise<Measure> {
      await stdin.write(new TextEncoder().encode("measure\n"));
      return JSON.parse(await nextLine());
    },
    async close() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

async function connect(port: number): Promise<Session | null> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new Session(conn, { client: true, writeTimeoutMs: 60_000 });
  } catch {
    return null;
  }
}

/** Waits until the client sessions' bytes out stop growing (1 s unchanged), at most `ms`. */
async function settle(sessions: Session[], ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const out = sessions.reduce((n, s) => n + s.stats.bytesOut, 0);
    if (out !== last) {
      last = out;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > 1000) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

function report(name: string, m: Measure, extra: string): void {
  console.log(
    `${name}\n  rss ${mib(m.rss)} (peak ${mib(m.peakRss)}), heap ${mib(m.heapUsed)}, ` +
      `external ${mib(m.external)}, buffered ${mib(m.buffered)}, ${m.sessions} sessions, ` +
      `${m.streams} streams; ${extra}${
        m.refused ? `\n  refused ${JSON.stringify(m.refused)}` : ""
      }`,
  );
}

async function blackHoledDials(): Promise<void> {
  const nSessions = arg("sessions", 4);
  const nStreams = arg("streams", 1024);
  const m = await manager();
  try {
    const idle = await m.measure();
    report("idle manager", idle, "");
    const request = encodeOpenRequest({
      kind: "tcp",
      host: BLACK_HOLE,
      port: 80,
      timeoutMs: 60_000,
    });
    // One buffer for every stream (the session only reads it): the client holds little.
    const initial = new Uint8Array(256 * KiB);
    initial.set(request);
    const sessions: Session[] = [];
    let resets = 0;
    const opened: Stream[] = [];
    for (let i = 0; i < nSessions; i++) {
      const s = await connect(m.port);
      if (s === null) continue;
      sessions.push(s);
      for (let j = 0; j < nStreams; j++) {
        try {
          const st = await s.open({ initial });
          opened.push(st);
          st.read(new Uint8Array(1)).catch(() => resets++);
        } catch {
          break;
        }
      }
    }
    await settle(sessions);
    const after = await m.measure();
    const sent = sessions.reduce((n, s) => n + s.stats.bytesOut, 0);
    report(
      `1. ${nSessions} sessions x ${nStreams} black-holed dials, each with 256 KiB before the reply`,
      after,
      `client sent ${mib(sent)}, ${resets} of ${opened.length} streams reset`,
    );
    await Promise.all(sessions.map((s) => s.close()));
  } finally {
    await m.close();
  }
}

async function manySessions(): Promise<void> {
  const n = 200;
  const m = await manager();
  try {
    const sessions: Session[] = [];
    let answered = 0;
    for (let i = 0; i < n; i++) {
      const s = await connect(m.port);
      if (s === null) continue;
      sessions.push(s);
      s.ping().then(() => answered++, () => {});
    }
    await new Promise((r) => setTimeout(r, 1000));
    report(
      `2. ${n} sessions (port-forward connections)`,
      await m.measure(),
      `${answered} answered a ping, ${
        sessions.filter((s) => s.isClosed).length
      } closed by the manager`,
    );
    await Promise.all(sessions.map((s) => s.close()));
  } finally {
    await m.close();
  }
}

async function stalledStreams(): Promise<void> {
  const nSessions = 2;
  const nStreams = arg("stalled", 128);
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of sink) held.push(c); // accepted, never read
  })();
  const m = await manager();
  try {
    const sessions: Session[] = [];
    let resets = 0;
    let streams = 0;
    const chunk = new Uint8Array(256 * KiB);
    for (let i = 0; i < nSessions; i++) {
      const s = await connect(m.port);
      if (s === null) continue;
      sessions.push(s);
      const d = new TunnelDialer(s);
      for (let j = 0; j < nStreams; j++) {
        const st = await d.dialTcp({ address: "127.0.0.1", port: sink.addr.port }, {
          signal: new AbortController().signal,
        }).catch(() => null);
        if (st === null) continue;
        streams++;
        (async () => {
          try {
            for (let sent = 0; sent < 4 * MiB; sent += chunk.length) await st.write(chunk);
          } catch {
            resets++;
          }
        })();
      }
    }
    await settle(sessions);
    const sent = sessions.reduce((n, s) => n + s.stats.bytesOut, 0);
    report(
      `3. ${nSessions} sessions x ${nStreams} streams to a server that does not read`,
      await m.measure(),
      `client sent ${mib(sent)}, ${resets} of ${streams} streams reset`,
    );
    await Promise.all(sessions.map((s) => s.close()));
  } finally {
    await m.close();
    sink.close();
    for (const c of held) c.close();
  }
}

async function everything(): Promise<void> {
  const nSessions = 40;
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of sink) held.push(c);
  })();
  // Answers each datagram with 256 KiB of datagrams.
  const udp = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  (async () => {
    const reply = new Uint8Array(1400);
    for await (const [, addr] of udp) {
      for (let i = 0; i < 188; i++) await udp.send(reply, addr).catch(() => {});
    }
  })();
  const m = await manager();
  try {
    const sessions: Session[] = [];
    let resets = 0;
    let tcp = 0;
    let udpFlows = 0;
    const chunk = new Uint8Array(256 * KiB);
    for (let i = 0; i < nSessions; i++) {
      const s = await connect(m.port);
      if (s === null) continue;
      sessions.push(s);
      const d = new TunnelDialer(s);
      const udpDst = { address: "127.0.0.1", port: (udp.addr as Deno.NetAddr).port };
      for (let j = 0; j < 4; j++) {
        const f = await d.openUdp(udpDst, { signal: new AbortController().signal, onDatagram() {} })
          .catch(() => null);
        if (f === null) continue;
        udpFlows++;
        f.send(new Uint8Array(8));
      }
      for (let j = 0; j < 60; j++) {
        const st = await d.dialTcp({ address: "127.0.0.1", port: sink.addr.port }, {
          signal: new AbortController().signal,
        }).catch(() => null);
        if (st === null) continue;
        tcp++;
        (async () => {
          try {
            for (let sent = 0; sent < 4 * MiB; sent += chunk.length) await st.write(chunk);
          } catch {
            resets++;
          }
        })();
      }
    }
    await settle(sessions);
    const sent = sessions.reduce((n, s) => n + s.stats.bytesOut, 0);
    report(
      `4. ${nSessions} sessions x (60 streams to a server that does not read + 4 UDP flows ` +
        "flooded with replies)",
      await m.measure(),
      `client sent ${mib(sent)}, ${tcp} TCP streams and ${udpFlows} UDP flows opened, ` +
        `${resets} TCP streams reset`,
    );
    await Promise.all(sessions.map((s) => s.close()));
  } finally {
    await m.close();
    sink.close();
    udp.close();
    for (const c of held) c.close();
  }
}

const only = Deno.args.includes("--only")
  ? Deno.args[Deno.args.indexOf("--only") + 1].split(",")
  : ["1", "2", "3", "4"];
console.log("traffic manager under a hostile client (pod limit 320 MiB)");
if (only.includes("1")) await blackHoledDials();
if (only.includes("2")) await manySessions();
if (only.includes("3")) await stalledStreams();
if (only.includes("4")) await everything();
Deno.exit(0);
