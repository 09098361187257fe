// deno-lint-ignore-file no-console
/**
 * The floor of a relay hop in Deno: prints numbers, asserts nothing. The traffic manager is one
 * more hop per byte (read from the port-forward connection, write to the pod's socket), so its
 * CPU per GB cannot go below what the plainest relay costs. This measures that relay: a loop of
 * `read` into one 64 KiB buffer and `write` of what was read, per direction, between two
 * loopback TCP connections, with iperf3 through it. Baseline, same run: iperf3 straight to its
 * server (no relay). Each at full speed and at 1.5 Gbit/s (`-b`, about what the whole tunnel
 * moves on these two cores), each direction; the relay's own CPU seconds per GB come from
 * `/proc/self/stat` (the kernel's work for its reads and writes included). Needs root; all
 * traffic stays inside a network namespace the benchmark makes and deletes.
 *
 * Usage: `sudo deno run -A bench/relay_floor.ts [seconds-per-run]` (default 5).
 *
 * @module
 */
import { DENO_RUN } from "../tests/_dataplane.ts";
import { run } from "../tests/_netns.ts";
import { CLK_TCK, ticks } from "./_cluster_lib.ts";

const SECONDS = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 5);
const SERVER_PORT = 5201, RELAY_PORT = 9000;

/** User + system CPU seconds of this process so far. */
const ownCpuSeconds = async () => (await ticks("/proc/self/stat")) / CLK_TCK;

/** Copies `from` to `to` until EOF, then half-closes `to`. */
async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite();
  } catch { /* the other side went away */ }
}

async function relay(listener: Deno.Listener): Promise<void> {
  for await (const client of listener) {
    const server = await Deno.connect({ hostname: "127.0.0.1", port: SERVER_PORT });
    void Promise.all([pipe(client, server), pipe(server, client)]).finally(() => {
      client.close();
      server.close();
    });
  }
}

async function iperf(port: number, extra: string[]): Promise<{ gbps: number; bytes: number }> {
  const args = ["-c", "127.0.0.1", "-p", String(port), "-t", String(SECONDS), "-J", ...extra];
  const received = JSON.parse((await run(["iperf3", ...args])).stdout).end.sum_received;
  return { gbps: received.bits_per_second / 1e9, bytes: received.bytes };
}

async function inside(): Promise<void> {
  await run(["ip", "link", "set", "lo", "up"]);
  const server = new Deno.Command("iperf3", {
    args: ["-s", "-p", String(SERVER_PORT)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: RELAY_PORT });
  const relaying = relay(listener).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  try {
    console.log(`iperf3 one stream over loopback, ${SECONDS} s each:`);
    console.log("| path | direction | rate cap | Gbit/s | relay CPU s/GB |");
    console.log("|---|---|---|---|---|");
    for (const cap of [[], ["-b", "1.5G"]]) {
      for (const reverse of [[], ["-R"]]) {
        const extra = [...cap, ...reverse];
        const direct = await iperf(SERVER_PORT, extra);
        const before = await ownCpuSeconds();
        const relayed = await iperf(RELAY_PORT, extra);
        const perGb = ((await ownCpuSeconds()) - before) / (relayed.bytes / 1e9);
        const dir = reverse.length > 0 ? "server → client" : "client → server";
        const rate = cap.length > 0 ? cap[1] : "none";
        console.log(`| direct (baseline) | ${dir} | ${rate} | ${direct.gbps.toFixed(2)} | – |`);
        console.log(
          `| Deno relay | ${dir} | ${rate} | ${relayed.gbps.toFixed(2)} | ${perGb.toFixed(2)} |`,
        );
      }
    }
  } finally {
    listener.close();
    await relaying;
    server.kill();
    await server.status;
  }
}

if (Deno.args.includes("--inside")) {
  await inside();
} else {
  if (Deno.uid() !== 0) throw new Error("bench/relay_floor.ts needs root (it makes a netns)");
  const ns = `kc-bench-relay-${Deno.pid}`;
  await run(["ip", "netns", "add", ns]);
  try {
    const here = new URL("./relay_floor.ts", import.meta.url).pathname;
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...DENO_RUN, "-A", here, "--inside", String(SECONDS)],
    }).spawn();
    if (!(await child.status).success) Deno.exitCode = 1;
  } finally {
    await run(["ip", "netns", "delete", ns]);
  }
}
