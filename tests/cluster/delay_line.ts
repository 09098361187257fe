// deno-lint-ignore-file no-console
/**
 * A packet delay line: every IPv4 packet between a peer (the laptop) and this namespace (the API
 * server's) waits `--delay` ms each way, as on a distant path. `tc netem` is not in this kernel,
 * and neither is a qdisc that honours a departure time (fq, etf), so the packets take a detour
 * through a TUN device and this process holds them. Unlike a relay in user space, nothing is
 * terminated: the TCP connections run end to end and their congestion control sees the round
 * trip (slow start on a fresh connection, and again after idle).
 *
 * How packets get here (policy routing in this namespace, set up at start):
 * - from the peer: `iif <iface>` (TCP, UDP and ICMP: not ARP, which must still be answered here)
 *   looks up table 100, whose only route is `default dev dl0`, so a
 *   packet for this namespace is forwarded into the TUN instead of delivered (the `local` table's
 *   rule moves behind it, from 0 to 1000);
 * - to the peer: locally made packets for `<peer>` (`iif lo`) look up table 100 too;
 * - written back into the TUN after the delay, a packet matches neither rule and is delivered or
 *   forwarded to the peer as usual (`accept_local` lets this namespace's own source address in,
 *   `rp_filter` is off).
 *
 * The TUN runs with `IFF_VNET_HDR` and TSO offloads, so TCP segments pass as GSO packets of up to
 * 64 KiB: the per-packet cost stays small at gigabit rates. The routes go with the TUN when this
 * process ends (however it ends); the rules then find an empty table and traffic flows directly.
 *
 *   deno run -A tests/cluster/delay_line.ts --iface laptop0 --peer 100.64.0.2 --delay 10
 *
 * Prints `ready` once packets flow through it.
 *
 * @module
 */
import { openLinuxTun } from "../../src/tun/linux.ts";
import { Errno, errno, libc } from "../../src/tun/libc.ts";

function arg(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const iface = arg("iface");
const peer = arg("peer");
const delay = Number(arg("delay", "10"));
const TUN = "dl0";
const TABLE = "100";
/** What the line delays: everything a test sends between the two, not ARP. */
const PROTOCOLS = ["tcp", "udp", "icmp"];
/** Bytes held at most; a packet beyond is dropped, as a full router queue would. */
const LIMIT_BYTES = 64 << 20;
/** The virtio_net_hdr in front of each packet, then up to a 64 KiB GSO packet. */
const HEADER = 10;
const BUF = HEADER + 65536;

async function ip(...a: string[]): Promise<void> {
  const r = await new Deno.Command("ip", { args: a, stdout: "null", stderr: "piped" }).output();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success && !/File exists|No such file/.test(err)) {
    throw new Error(`ip ${a.join(" ")}: ${err.trim()}`);
  }
}

function sysctl(path: string, value: string): void {
  Deno.writeTextFileSync(`/proc/sys/net/ipv4/${path}`, value);
}

const tun = await openLinuxTun({ name: TUN, mtu: 1500, vnetHdr: true });
sysctl("ip_forward", "1");
for (const dev of ["all", "default", iface, TUN]) sysctl(`conf/${dev}/rp_filter`, "0");
sysctl(`conf/${TUN}/accept_local`, "1");
// Early demux would hand a packet from the peer straight to its socket here (or, for a
// connection still in SYN-RECV, mark it so that forwarding drops it): every packet must be routed.
sysctl("tcp_early_demux", "0");
sysctl("udp_early_demux", "0");
await ip("route", "replace", "default", "dev", TUN, "table", TABLE);
await ip("rule", "add", "pref", "1000", "lookup", "local");
await ip("rule", "del", "pref", "0", "lookup", "local");
// Only IP protocols: the kernel answers an ARP request only for an address whose route (these
// rules included) says local, and ARP's lookup has no protocol.
for (const proto of PROTOCOLS) {
  await ip("rule", "add", "pref", "10", "iif", iface, "ipproto", proto, "lookup", TABLE);
  await ip("rule", "add", "pref", "11", "iif", "lo", "to", peer, "ipproto", proto, "lookup", TABLE);
}

/** The tick asked for, ms (Deno's timers give about 2). */
const TICK_MS = 1;
/**
 * The tick measured (moving average), ms. A packet waits on average half a tick to be read and
 * half a tick past its due time to be written, so its due time is one tick short of the delay.
 */
let period = 2;
let lastTick = performance.now();
/** Held packets in arrival order: each is its buffer (header and packet) and its due time. */
const queue: { at: number; buf: Uint8Array; size: number }[] = [];
let head = 0;
let held = 0;
let dropped = 0;
/** Buffers of written packets, for the next reads (so a packet is read in place, never copied). */
const spare: Uint8Array[] = [];
const read = libc().read;
const write = libc().write;
const fd = tun.fd;

/**
 * One tick: takes every packet the kernel has for the TUN (synchronous reads until EAGAIN), then
 * writes back every packet that has waited long enough. Ticking instead of waiting in poll(2) for
 * each packet keeps the line cheap (no thread hop per packet: 0.76 CPU s/GB here, against 1.7);
 * each packet's delay is off by up to a tick either way, its average is the delay (a ping through
 * a 10 ms line: 19.2–21.1 ms).
 */
function tick(): void {
  const now = performance.now();
  period += (now - lastTick - period) / 64;
  lastTick = now;
  for (;;) {
    const buf = spare.pop() ?? new Uint8Array(BUF);
    const r = Number(read(fd, buf, BigInt(BUF)));
    if (r < 0) {
      spare.push(buf);
      const e = errno();
      if (e === Errno.EAGAIN) break;
      if (e === Errno.EINTR) continue;
      throw new Error(`read from ${TUN}: errno ${e}`);
    }
    if (held + r > LIMIT_BYTES) {
      dropped++;
      spare.push(buf);
      continue;
    }
    held += r;
    queue.push({ at: now + delay - period, buf, size: r });
  }
  while (head < queue.length && queue[head].at <= now) {
    const { buf, size } = queue[head++];
    held -= size;
    if (Number(write(fd, buf, BigInt(size))) < 0) dropped++;
    spare.push(buf);
  }
  if (head > 1024 && head * 2 > queue.length) {
    queue.splice(0, head);
    head = 0;
  }
}

const timer = setInterval(tick, TICK_MS);
const stop = async () => {
  clearInterval(timer);
  await tun.close();
  for (const _ of PROTOCOLS) {
    await ip("rule", "del", "pref", "10");
    await ip("rule", "del", "pref", "11");
  }
  console.log(`stopped; dropped ${dropped}`);
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
console.log("ready");
