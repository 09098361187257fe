// deno-lint-ignore-file no-console
/**
 * The client's send path at the transport boundary: one yamux stream pushes `--gib` GiB (default
 * 1) through a {@linkcode Session} over a port-forward connection ({@linkcode openPortForward}) to a
 * loopback TLS WebSocket server in a child process, which runs the far Session and discards the
 * bytes. Prints the client process's CPU seconds per GB and its throughput, `--runs` times.
 *
 * ```sh
 * deno run -A --frozen --cached-only bench/transport_copies.ts --runs 3 [--chunk 65536] [--verify]
 *   [--resumable]
 * ```
 *
 * `--resumable` makes both sessions resumable (Ack frames, and every transport write kept until
 * acknowledged): what resumption costs on the send path.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { makePki } from "../tests/cluster/pki.ts";
import { DENO_RUN } from "../tests/_dataplane.ts";
import type { ClusterAccess } from "../src/k8s/access.ts";
import { openPortForward } from "../src/k8s/portforward.ts";
import type { Conn } from "../src/io/conn.ts";
import { Session } from "../src/tunnel/session.ts";

/** Whether the sessions are resumable (`--resumable`, passed to the server in the environment). */
const RESUMABLE = () => Deno.env.get("KCONNECT_BENCH_RESUMABLE") === "1";

/** A server-side WebSocket as a port-forward Conn: channel byte 0 in front of each send. */
function serverConn(ws: WebSocket): Conn {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => {
    const m = new Uint8Array(e.data as ArrayBuffer);
    if (m.length > 1 && m[0] === 0) chunks.push(m.subarray(1));
    notify();
  };
  ws.onclose = () => {
    ended = true;
    notify();
  };
  return {
    async read(p) {
      while (chunks.length === 0) {
        if (ended) return null;
        await new Promise<void>((r) => wake = r);
      }
      const head = chunks[0];
      const n = Math.min(p.length, head.length);
      p.set(head.subarray(0, n));
      if (n === head.length) chunks.shift();
      else chunks[0] = head.subarray(n);
      return n;
    },
    write(p) {
      const f = new Uint8Array(p.length + 1);
      f.set(p, 1);
      ws.send(f);
      return Promise.resolve(p.length);
    },
    closeWrite: () => Promise.resolve(),
    close: () => ws.close(),
  };
}

async function server(cert: string, key: string, verify: boolean): Promise<void> {
  const srv = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(cert),
    key: await Deno.readTextFile(key),
    onListen: ({ port }) => console.log(port),
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "v4.channel.k8s.io" });
    socket.onopen = () => {
      socket.send(new Uint8Array([0, 0x91, 0x1f]));
      socket.send(new Uint8Array([1, 0x91, 0x1f]));
      const s = new Session(serverConn(socket), { client: false, resumable: RESUMABLE() });
      (async () => {
        for (let st; (st = await s.accept()) !== null;) {
          const stream = st;
          (async () => {
            const buf = new Uint8Array(256 * 1024);
            let pos = 0, bad = 0;
            for (let n; (n = await stream.read(buf)) !== null;) {
              if (verify) {
                for (let i = 0; i < n; i++) if (buf[i] !== (pos + i) % 251) bad++;
              }
              pos += n;
            }
            await stream.write(new Uint8Array([bad === 0 ? 1 : 0]));
            await stream.closeWrite();
          })();
        }
      })();
    };
    return response;
  });
  await srv.finished;
}

async function client(gib: number, runs: number, chunk: number, verify: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kc-tcopies-" });
  const pki = await makePki(dir, { serverIps: ["127.0.0.1"] });
  const child = new Deno.Command(DENO_RUN[0], {
    args: [
      ...DENO_RUN.slice(1),
      "-A",
      new URL(import.meta.url).pathname,
      "--server",
      pki.serverCertFile,
      pki.serverKeyFile,
      ...(verify ? ["--verify"] : []),
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  const port = Number(text.trim());
  const httpClient = Deno.createHttpClient({ caCerts: [pki.caPem] });
  const access: ClusterAccess = {
    server: `https://127.0.0.1:${port}`,
    context: "b",
    clusterName: "b",
    userName: "b",
    namespace: "default",
    source: "bench",
    headers: () => Promise.resolve({}),
    httpClient,
  };
  const total = gib * 2 ** 30;
  // Byte i of the stream is i % 251, so the server can check every byte with --verify.
  const pattern = new Uint8Array(chunk + 251).map((_, i) => i % 251);
  for (let r = 0; r < runs; r++) {
    const pf = await openPortForward(access, { namespace: "ns", pod: "p", port: 8081 });
    const session = new Session(pf, { client: true, resumable: RESUMABLE() });
    const st = await session.open();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += chunk) {
      await st.write(pattern.subarray(sent % 251, sent % 251 + chunk));
    }
    await st.closeWrite();
    const ok = new Uint8Array(1);
    if (await st.read(ok) !== 1 || ok[0] !== 1) throw new Error("the server got wrong bytes");
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const gb = total / 1e9;
    console.log(
      `run ${r + 1}: ${(cpuS / gb).toFixed(3)} CPU s/GB (user ${(cpu.user / 1e6 / gb).toFixed(3)}` +
        ` sys ${(cpu.system / 1e6 / gb).toFixed(3)}), ${(gb * 8 / secs).toFixed(2)} Gbit/s`,
    );
    await session.close();
    pf.close();
  }
  child.kill();
  await child.status;
  httpClient.close();
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      server: { type: "boolean" },
      verify: { type: "boolean" },
      gib: { type: "string", default: "1" },
      runs: { type: "string", default: "3" },
      chunk: { type: "string", default: "65536" },
      resumable: { type: "boolean" },
    },
    allowPositionals: true,
  });
  if (args.values.resumable) Deno.env.set("KCONNECT_BENCH_RESUMABLE", "1");
  if (args.values.server) {
    await server(args.positionals[0], args.positionals[1], args.values.verify ?? false);
  } else {
    await client(
      Number(args.values.gib),
      Number(args.values.runs),
      Number(args.values.chunk),
      args.values.verify ?? false,
    );
  }
}
