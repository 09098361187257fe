// deno-lint-ignore-file no-console
/**
 * TUN I/O benchmark: prints numbers, asserts nothing. Needs root; all traffic stays inside a
 * network namespace the benchmark makes and deletes.
 *
 * 1. Read rate at MTU 1500: a UDP flood (bench/tun_udp_flood.ts, another process) is routed
 *    into the TUN; the reader counts packets for a fixed time, reading
 *    (a) one packet per `nonblocking: true` FFI `read` on a blocking fd,
 *    (b) `TunDevice.read` with one buffer (burst of 1, poll only when empty),
 *    (c) `TunDevice.read` with 64 buffers (burst until EAGAIN, then poll).
 * 2. Write rate at MTU 1500: prebuilt IPv4/UDP packets to the TUN's own address, where a UDP
 *    socket takes (and, unread, soon drops) them.
 * 3. TCP through the TUN twice (iperf3): a reflector swaps source and destination addresses of
 *    every packet it reads and writes it back (checksums stay valid), so iperf3's client talking
 *    to 198.18.0.2 reaches its server on 198.18.0.1; at MTU 1500 and at MTU 65000, each plain
 *    and with IFF_VNET_HDR and TSO offloads. Also the reflector's own CPU seconds per GB (the
 *    kernel's work for its reads and writes included).
 * 4. Close with a read pending: how long `close()` takes, and the pending `read` to resolve 0,
 *    while the reader sits in its `poll` (close wakes it through an eventfd; without that it
 *    would wait out the poll's 200 ms timeout). tests/tun_linux_test.ts only checks that it
 *    happens.
 *
 * Usage: `deno run -A --unstable-net bench/tun_io.ts [seconds-per-run]` (default 3).
 *
 * @module
 */

import { openLinuxTun } from "../src/tun/linux.ts";
import { libc } from "../src/tun/libc.ts";
import { DENO_RUN } from "../tests/_dataplane.ts";
import { CLK_TCK, ticks } from "./_cluster_lib.ts";

const SECONDS = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 3);
const TUN_ADDR = "198.18.0.1";
const PEER = "198.18.0.2";
const here = (path: string) => new URL(path, import.meta.url).pathname;

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

function openBenchTun(mtu = 1500, vnetHdr = false) {
  return openLinuxTun({
    name: "kcbench0",
    mtu,
    vnetHdr,
    addresses: [{ address: TUN_ADDR, prefixLength: 30 }],
  });
}

function startFlood(seconds: number) {
  const [deno, ...lead] = DENO_RUN;
  const args = [...lead, "-A", here("./tun_udp_flood.ts"), PEER, "9", "1472", String(seconds)];
  return new Deno.Command(deno, { args, stdout: "piped" }).spawn();
}

async function readBench(mode: "async" | "burst1" | "burst64"): Promise<void> {
  const tun = await openBenchTun();
  const flood = startFlood(SECONDS + 2);
  let count = 0;
  let seconds = 0;
  let perCall = "";
  if (mode === "async") {
    // The naive path: the fd in blocking mode, one worker-thread `read` per packet.
    const { read } = Deno.dlopen("libc.so.6", {
      read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
    }).symbols;
    const c = libc();
    c.fcntl(tun.fd, 4, /* F_SETFL */ c.fcntl(tun.fd, 3, /* F_GETFL */ 0) & ~0o4000);
    const buf = new Uint8Array(1500);
    await read(tun.fd, buf, 1500n); // first packet: the flood has started
    const start = performance.now();
    const end = start + SECONDS * 1000;
    while (performance.now() < end) {
      if ((await read(tun.fd, buf, 1500n)) > 0n) count++;
    }
    seconds = (performance.now() - start) / 1000;
  } else {
    const batch = mode === "burst1" ? 1 : 64;
    const bufs = Array.from({ length: batch }, () => new Uint8Array(1500));
    const sizes = new Array<number>(batch).fill(0);
    await tun.read(bufs, sizes, 0);
    const start = performance.now();
    const end = start + SECONDS * 1000;
    let calls = 0;
    while (performance.now() < end) {
      count += await tun.read(bufs, sizes, 0);
      calls++;
    }
    seconds = (performance.now() - start) / 1000;
    perCall = `, ${(count / calls).toFixed(1)} packets a call`;
  }
  const sender = JSON.parse(new TextDecoder().decode((await flood.output()).stdout));
  await tun.close();
  const label = {
    async: "per-packet async FFI read",
    burst1: "TunDevice.read, 1 buffer",
    burst64: "TunDevice.read, 64 buffers",
  }[mode];
  console.log(
    `  ${label.padEnd(28)} ${fmt(count / seconds)}pps read` +
      `  (sender ${fmt(sender.sent / sender.seconds)}pps${perCall})`,
  );
}

/** A 1500-byte IPv4/UDP packet from the peer to the TUN's address, header checksum set. */
function udpPacket(dstPort: number): Uint8Array {
  const p = new Uint8Array(1500);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, 1500);
  p[8] = 64;
  p[9] = 17;
  p.set([198, 18, 0, 2], 12);
  p.set([198, 18, 0, 1], 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, 40000);
  v.setUint16(22, dstPort);
  v.setUint16(24, 1480); // UDP checksum 0: none
  return p;
}

async function writeBench(): Promise<void> {
  const tun = await openBenchTun();
  const sink = Deno.listenDatagram({ transport: "udp", hostname: TUN_ADDR, port: 0 });
  const port = (sink.addr as Deno.NetAddr).port;
  const packets = Array.from({ length: 64 }, () => udpPacket(port));
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let accepted = 0;
  while (performance.now() < end) accepted += tun.write(packets, 0);
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `  ${"TunDevice.write, 64 a call".padEnd(28)} ${fmt(accepted / seconds)}pps written` +
      `  (${((accepted * 1500 * 8) / seconds / 1e9).toFixed(2)} Gbit/s, ` +
      `${tun.stats.writeErrors} refused)`,
  );
  sink.close();
  await tun.close();
}

/** User + system CPU seconds of this process so far. */
const ownCpuSeconds = async () => (await ticks("/proc/self/stat")) / CLK_TCK;

async function tcpBench(label: string, mtu: number, vnetHdr: boolean): Promise<void> {
  const tun = await openBenchTun(mtu, vnetHdr);
  const offset = vnetHdr ? 10 : 0;
  const room = vnetHdr ? 65535 : mtu;
  const bufs = Array.from({ length: 64 }, () => new Uint8Array(offset + room));
  const sizes = new Array<number>(64).fill(0);
  const reflector = (async () => {
    const out: Uint8Array[] = [];
    for (;;) {
      const n = await tun.read(bufs, sizes, offset);
      if (n === 0) return;
      out.length = n;
      for (let i = 0; i < n; i++) {
        const p = bufs[i];
        if (p[offset] >> 4 !== 4) {
          out[i] = p.subarray(0, 0); // not IPv4 (e.g. IPv6 chatter): drop
          continue;
        }
        // Swap source and destination: the ones-complement sums do not change.
        for (let j = 0; j < 4; j++) {
          const t = p[offset + 12 + j];
          p[offset + 12 + j] = p[offset + 16 + j];
          p[offset + 16 + j] = t;
        }
        out[i] = p.subarray(0, offset + sizes[i]);
      }
      tun.write(out, offset);
    }
  })();
  const server = new Deno.Command("iperf3", {
    args: ["-s", "-1", "-B", TUN_ADDR, "-p", "5201"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  const cpuBefore = await ownCpuSeconds();
  try {
    const json = JSON.parse(
      await run("iperf3", ["-c", PEER, "-p", "5201", "-t", String(SECONDS), "-J"]),
    );
    const cpu = (await ownCpuSeconds()) - cpuBefore;
    const bps = json.end.sum_received.bits_per_second as number;
    const packets = tun.stats.readPackets;
    console.log(
      `  ${label.padEnd(28)} ${(bps / 1e9).toFixed(2)} Gbit/s` +
        `  (${fmt(packets / SECONDS)}pps through the reflector, ` +
        `${Math.round(tun.stats.readBytes / Math.max(1, packets))} B average, ` +
        `reflector ${(cpu / (json.end.sum_received.bytes / 1e9)).toFixed(2)} CPU s/GB)`,
    );
  } finally {
    await server.status;
    await tun.close();
    await reflector;
  }
}

async function closeBench(): Promise<void> {
  const closeMs: number[] = [];
  const readMs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const tun = await openBenchTun();
    const bufs = [new Uint8Array(1500)];
    const sizes = [0];
    let n = -1;
    const reading = (async () => {
      for (;;) {
        n = await tun.read(bufs, sizes, 0);
        if (n === 0) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100)); // inside a poll by now
    const t0 = performance.now();
    await tun.close();
    closeMs.push(performance.now() - t0);
    await reading;
    readMs.push(performance.now() - t0);
    if (n !== 0) throw new Error(`read returned ${n} after close`);
  }
  const line = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return `p50 ${s[Math.floor(s.length / 2)].toFixed(2)} ms, max ${s[s.length - 1].toFixed(2)} ms`;
  };
  console.log(`  ${"close()".padEnd(28)} ${line(closeMs)}`);
  console.log(`  ${"pending read resolves 0".padEnd(28)} ${line(readMs)}`);
}

async function inside(): Promise<void> {
  await run("ip", ["link", "set", "lo", "up"]);
  console.log(`Read, MTU 1500, UDP flood from another process (${SECONDS} s each):`);
  for (const mode of ["async", "burst1", "burst64"] as const) await readBench(mode);
  console.log("Write, MTU 1500:");
  await writeBench();
  console.log("TCP via an address-swapping reflector (iperf3, one stream):");
  await tcpBench("MTU 1500", 1500, false);
  await tcpBench("MTU 1500, vnet_hdr + TSO", 1500, true);
  await tcpBench("MTU 65000", 65000, false);
  await tcpBench("MTU 65000, vnet_hdr + TSO", 65000, true);
  console.log("Close with a read pending (20 times):");
  await closeBench();
}

if (Deno.args.includes("--inside")) {
  await inside();
} else {
  if (Deno.uid() !== 0) throw new Error("bench/tun_io.ts needs root (it makes a netns)");
  const ns = `kc-bench-${Deno.pid}`;
  await run("ip", ["netns", "add", ns]);
  try {
    const args = ["netns", "exec", ns, ...DENO_RUN, "-A", "--unstable-net"];
    const child = new Deno.Command("ip", {
      args: [...args, here("./tun_io.ts"), "--inside", String(SECONDS)],
    }).spawn();
    const status = await child.status;
    if (!status.success) Deno.exitCode = 1;
  } finally {
    await run("ip", ["netns", "delete", ns]);
  }
}
