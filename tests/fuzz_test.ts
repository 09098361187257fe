// deno-lint-ignore-file no-console
/**
 * The parsers' fuzzing from the security review, kept in the suite (issue 11, "Keep it safe"):
 * every parser that reads bytes or JSON from another party gets random and mutated input, and
 * may only answer with its documented errors — never another exception, never an unhandled
 * rejection (which would kill a Deno process), never a malformed packet of its own.
 *
 * | target                    | input from                          | documented errors           |
 * | ------------------------- | ----------------------------------- | --------------------------- |
 * | wire views, `viewIp`      | any program on the laptop (TUN)     | none: null for bad packets  |
 * | addresses, CIDRs          | flags, config, the manager          | none: null for bad text     |
 * | `TcpNat.handle`           | the TUN                             | none                        |
 * | `UdpFlows.handle`         | the TUN                             | none                        |
 * | yamux `Decoder`           | the manager / a client              | `ProtocolError`             |
 * | open request and reply    | the manager / a client              | `ProtocolError`             |
 * | `PortForwardDemux`        | the API server                      | `TypeError`                 |
 * | `DnsServer.handle`        | programs (queries), the cluster     | none: FORMERR/SERVFAIL      |
 * | `parseRequest`→settings   | another user (daemon socket)        | `TypeError`, `SettingsError`|
 * | `parseConfig`             | the user's config file              | `SettingsError`, `TypeError`|
 * | `parseMaterial`           | the credentials child               | `TypeError`, `SettingsError`|
 * | yamux `Session` + manager | a hostile client of the manager     | none: the session just ends |
 *
 * Seeded and bounded: each target runs at most its iteration count and at most its time
 * budget (about 20 s in all), from a seed printed with each target's result. A failure names
 * the target, seed, iteration and the input; replay it with `KCONNECT_FUZZ_SEED=<seed>` (the
 * inputs depend on the seed only, so the same iteration comes back, if the time budget reaches
 * it: add `KCONNECT_FUZZ_SCALE=10`, which multiplies iterations and time, to be sure; it also
 * makes a longer run). `KCONNECT_FUZZ_VERBOSE=1` counts the documented errors by message.
 */
import assert from "node:assert/strict";
import { SettingsError } from "../src/config/config.ts";
import { checkSettings, parseConfig, resolveSettings } from "../src/config/config.ts";
import { parseRequest } from "../src/daemon/protocol.ts";
import { decode, encode, type Message } from "../src/dns/message.ts";
import { DnsServer, type DnsServerOptions } from "../src/dns/server.ts";
import { parseMaterial } from "../src/k8s/material.ts";
import { PortForwardDemux } from "../src/k8s/portforward.ts";
import { TrafficManager, type TrafficManagerOptions } from "../src/manager/server.ts";
import { tcpPacket, udpPacket } from "../src/stack/_test_packets.ts";
import type { Conn } from "../src/io/conn.ts";
import { type DatagramFlow, DialError, type DialFailure } from "../src/io/dialer.ts";
import { viewIp } from "../src/stack/ip_info.ts";
import { type TcpFlow, TcpNat } from "../src/stack/tcp_nat.ts";
import { type UdpFlow, UdpFlows } from "../src/stack/udp_flows.ts";
import { Decoder } from "../src/tunnel/decoder.ts";
import { ProtocolError } from "../src/tunnel/errors.ts";
import { wholeFrames } from "../src/tunnel/_test_util.ts";
import { sampleMaterial } from "../src/k8s/_test_material.ts";
import { encodeFrame, Flag, type Frame, FrameType } from "../src/tunnel/frame.ts";
import {
  decodeOpenReply,
  decodeOpenRequest,
  encodeOpenReply,
  encodeOpenRequest,
  openBodyLength,
  type OpenRequest,
  type OpenStatus,
} from "../src/tunnel/open_request.ts";
import { Cidr, formatAddress, parseAddress } from "../src/wire/address.ts";
import { Icmpv4Message, parseIcmpv4Echo } from "../src/wire/icmpv4.ts";
import { Icmpv6Message, parseIcmpv6Echo } from "../src/wire/icmpv6.ts";
import { Ipv4Packet, parseIpv4 } from "../src/wire/ipv4.ts";
import { Ipv6Packet, parseIpv6 } from "../src/wire/ipv6.ts";
import {
  parseTcp,
  parseTcpOptions,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  type TcpOptions,
} from "../src/wire/tcp.ts";
import { TcpSegment } from "../src/wire/tcp.ts";
import { UdpDatagram } from "../src/wire/udp.ts";
import { reverseZones } from "../src/dns/names.ts";
import { setLogWriter } from "../src/log.ts";

// --- Seeds, budgets and the loop -----------------------------------------------------------

const SEED_ENV = Deno.env.get("KCONNECT_FUZZ_SEED");
const SEED = SEED_ENV !== undefined && SEED_ENV !== ""
  ? Number(SEED_ENV) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
/** `KCONNECT_FUZZ_VERBOSE=1`: count documented errors by message, to see what the inputs reach. */
const VERBOSE = Deno.env.get("KCONNECT_FUZZ_VERBOSE") === "1";
const SCALE = Math.max(0.01, Number(Deno.env.get("KCONNECT_FUZZ_SCALE") ?? "1") || 1);

/** A small fast PRNG (sfc32): the same seed gives the same inputs everywhere. */
class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
  /** 0 ≤ n < max. */
  int(max: number): number {
    return max <= 0 ? 0 : Math.floor((this.u32() / 0x100000000) * max);
  }
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

function targetSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h ^ SEED) >>> 0;
}

type ErrorClass = abstract new (...args: never[]) => Error;

function hex(b: Uint8Array, max = 512): string {
  const s = Array.from(b.subarray(0, max), (x) => x.toString(16).padStart(2, "0")).join("");
  return b.length > max ? `${s}… (${b.length} bytes)` : s;
}

function show(input: unknown): string {
  if (input instanceof Uint8Array) return hex(input);
  const s = typeof input === "string" ? JSON.stringify(input) : String(input);
  return s.length > 1500 ? `${s.slice(0, 1500)}…` : s;
}

/** Unhandled rejections while a fuzz test runs: each one fails it. */
const rejections: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  rejections.push(e.reason);
});

interface Budget {
  iterations: number;
  ms: number;
}

/**
 * Runs `body` with a seeded generator until the iteration count or the time budget is reached.
 * `body` sets `input.value` to what it fed, for the failure message. Errors of the `allowed`
 * classes are the parser's documented answers; anything else fails the test.
 */
async function fuzz(
  name: string,
  budget: Budget,
  allowed: readonly ErrorClass[],
  body: (rng: Rng, input: { value: unknown }) => void | Promise<void>,
): Promise<void> {
  const seed = targetSeed(name);
  const rng = new Rng(seed);
  const iterations = Math.ceil(budget.iterations * SCALE);
  const deadline = performance.now() + budget.ms * SCALE;
  const before = rejections.length;
  const start = performance.now();
  const input: { value: unknown } = { value: undefined };
  const documented = new Map<string, number>();
  let i = 0;
  for (; i < iterations && performance.now() < deadline; i++) {
    try {
      await body(rng, input);
    } catch (err) {
      if (allowed.some((c) => err instanceof c)) {
        const e = err as Error;
        const n = VERBOSE ? `${e.name}: ${e.message.replace(/\d+/g, "N").slice(0, 90)}` : e.name;
        documented.set(n, (documented.get(n) ?? 0) + 1);
        continue;
      }
      throw new Error(
        `fuzz ${name}: KCONNECT_FUZZ_SEED=${SEED} (target seed ${seed}), iteration ${i}: ` +
          `${err instanceof Error ? err.stack : String(err)}\ninput: ${show(input.value)}`,
      );
    }
  }
  // Let stray promises settle so their rejections are seen here.
  await new Promise((r) => setTimeout(r, 0));
  const ms = Math.round(performance.now() - start);
  const errs = [...documented].map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const accepted = i - [...documented.values()].reduce((a, b) => a + b, 0);
  console.log(
    `fuzz ${name}: KCONNECT_FUZZ_SEED=${SEED} iterations=${i} in ${ms} ms; ` +
      `accepted ${accepted}, documented errors: ${errs}`,
  );
  assert.equal(
    rejections.length,
    before,
    `fuzz ${name}: unhandled rejections (KCONNECT_FUZZ_SEED=${SEED}): ${
      rejections.slice(before).map((r) => r instanceof Error ? r.stack : String(r)).join("\n")
    }`,
  );
  assert.ok(i > 0, `fuzz ${name}: no iteration ran`);
}

// --- Mutation --------------------------------------------------------------------------------

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x45, 0x60, 0x06, 0x11, 0x3a, 0x2c];
const INTERESTING_16 = [0, 1, 7, 8, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** A copy of `buf` with one to four random changes: bits, bytes, lengths, cuts and splices. */
function mutate(rng: Rng, buf: Uint8Array): Uint8Array {
  let b = buf.slice();
  const ops = 1 + rng.int(4);
  for (let k = 0; k < ops; k++) {
    const at = rng.int(Math.max(1, b.length));
    switch (rng.int(9)) {
      case 0:
        if (b.length) b[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (b.length) b[at] = rng.pick(INTERESTING_8);
        break;
      case 2:
        if (b.length) b[at] = rng.int(256);
        break;
      case 3:
        if (b.length > 1) {
          const v = rng.pick(INTERESTING_16);
          b[Math.min(at, b.length - 2)] = v >> 8;
          b[Math.min(at, b.length - 2) + 1] = v & 0xff;
        }
        break;
      case 4:
        b = b.subarray(0, rng.int(b.length + 1)).slice();
        break;
      case 5: {
        const extra = rng.bytes(1 + rng.int(64));
        const out = new Uint8Array(b.length + extra.length);
        out.set(b.subarray(0, at));
        out.set(extra, at);
        out.set(b.subarray(at), at + extra.length);
        b = out;
        break;
      }
      case 6: {
        const len = rng.int(Math.min(32, b.length - at) + 1);
        const out = new Uint8Array(b.length - len);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + len), at);
        b = out;
        break;
      }
      case 7: {
        const len = rng.int(Math.min(32, b.length - at) + 1);
        const out = new Uint8Array(b.length + len);
        out.set(b.subarray(0, at + len));
        out.set(b.subarray(at, at + len), at + len);
        out.set(b.subarray(at + len), at + 2 * len);
        b = out;
        break;
      }
      default: {
        const tail = rng.bytes(rng.int(16));
        const out = new Uint8Array(b.length + tail.length);
        out.set(b);
        out.set(tail, b.length);
        b = out;
      }
    }
  }
  return b;
}

/** A copy of `text` with one to three random character-level changes. */
function mutateText(rng: Rng, text: string): string {
  let t = text;
  const alphabet = '{}[]":,0123456789-.eE truefalsnul\\/\n\u0000\u00e9\u{1f600}xyz';
  for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
    const at = rng.int(t.length + 1);
    switch (rng.int(4)) {
      case 0:
        t = t.slice(0, at) + rng.pick([...alphabet]) + t.slice(at + 1);
        break;
      case 1:
        t = t.slice(0, at) + rng.pick([...alphabet]) + t.slice(at);
        break;
      case 2:
        t = t.slice(0, at) + t.slice(at + 1 + rng.int(8));
        break;
      default:
        t = t.slice(0, at);
    }
  }
  return t;
}

// --- Wire views ------------------------------------------------------------------------------

/** Reads every getter of `view` (whatever the class has today). */
function touchGetters(view: object): void {
  let proto = Object.getPrototypeOf(view);
  while (proto !== null && proto !== Object.prototype) {
    for (const d of Object.values(Object.getOwnPropertyDescriptors(proto))) {
      if (d.get) void d.get.call(view);
    }
    proto = Object.getPrototypeOf(proto);
  }
}

const V4 = ["10.96.0.10", "10.255.0.1", "10.255.0.2", "127.0.0.1", "192.0.2.7", "0.0.0.0"];
const V6 = ["fd00:96::10", "fd00:ff::1", "fd00:ff::2", "::1", "2001:db8::7", "::"];

function randomPacket(rng: Rng): Uint8Array {
  const v6 = rng.chance(0.4);
  const addrs = v6 ? V6 : V4;
  const src = rng.pick(addrs), dst = rng.pick(addrs);
  const sport = rng.pick([0, 1, 53, 443, 40000, 65535, rng.int(65536)]);
  const dport = rng.pick([0, 53, 80, 443, 8080, rng.int(65536)]);
  const payload = rng.bytes(rng.pick([0, 0, 1, 20, 100, 1400]));
  let p: Uint8Array;
  if (rng.chance(0.6)) {
    p = tcpPacket(src, sport, dst, dport, {
      flags: rng.int(256),
      seq: rng.u32(),
      ack: rng.u32(),
      window: rng.int(65536),
      payload,
      ...(rng.chance(0.3) ? { options: TCP_OPTIONS(rng) } : {}),
    });
  } else {
    p = udpPacket(src, sport, dst, dport, payload);
  }
  if (v6 && rng.chance(0.2)) {
    // Put a Hop-by-Hop or Destination Options header in front of the upper layer.
    const ext = new Uint8Array(8);
    ext[0] = p[6];
    ext[1] = 0;
    const out = new Uint8Array(p.length + 8);
    out.set(p.subarray(0, 40));
    out.set(ext, 40);
    out.set(p.subarray(40), 48);
    out[6] = rng.pick([0, 60, 43]);
    const pl = ((p[4] << 8) | p[5]) + 8;
    out[4] = pl >> 8;
    out[5] = pl & 0xff;
    p = out;
  }
  return p;
}

function TCP_OPTIONS(rng: Rng): TcpOptions {
  return {
    ...(rng.chance(0.5) ? { mss: rng.int(65536) } : {}),
    ...(rng.chance(0.5) ? { windowScale: rng.int(15) } : {}),
    ...(rng.chance(0.5) ? { sackPermitted: true } : {}),
    ...(rng.chance(0.5) ? { timestamp: { value: rng.u32(), echo: rng.u32() } } : {}),
  } as TcpOptions;
}

function wireInput(rng: Rng): Uint8Array {
  switch (rng.int(5)) {
    case 0: {
      const b = rng.bytes(rng.int(120));
      if (b.length) b[0] = (rng.pick([4, 6, rng.int(16)]) << 4) | (b[0] & 0x0f);
      return b;
    }
    case 1:
      return randomPacket(rng);
    default:
      return mutate(rng, randomPacket(rng));
  }
}

const Z4 = new Uint8Array(4), Z16 = new Uint8Array(16);

function touchTransport(b: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  const t = TcpSegment.view(b);
  if (t !== null) {
    touchGetters(t);
    assert.ok(t.headerLength <= t.bytes.length, "TCP header inside the segment");
    t.verifyChecksum(src, dst);
    parseTcp(t);
    parseTcpOptions(t.options);
  }
  const u = UdpDatagram.view(b);
  if (u !== null) {
    touchGetters(u);
    u.verifyChecksum(src, dst);
  }
  const i4 = Icmpv4Message.view(b);
  if (i4 !== null) {
    touchGetters(i4);
    i4.verifyChecksum();
    parseIcmpv4Echo(i4);
  }
  const i6 = Icmpv6Message.view(b);
  if (i6 !== null && src.length === 16) {
    touchGetters(i6);
    i6.verifyChecksum(src, dst);
    parseIcmpv6Echo(i6);
  }
}

Deno.test("fuzz: wire views (IPv4, IPv6 and extension headers, TCP and options, UDP, ICMP) never throw", async () => {
  await fuzz("wire", { iterations: 20_000, ms: 2_000 }, [], (rng, input) => {
    const b = wireInput(rng);
    input.value = b;
    const p4 = Ipv4Packet.view(b);
    if (p4 !== null) {
      touchGetters(p4);
      p4.verifyChecksum();
      parseIpv4(p4);
      assert.equal(p4.payload.length, p4.totalLength - p4.headerLength);
      touchTransport(p4.payload, p4.src, p4.dst);
    }
    const p6 = Ipv6Packet.view(b);
    if (p6 !== null) {
      touchGetters(p6);
      parseIpv6(p6);
      const ul = p6.upperLayer();
      if (ul !== null) {
        assert.ok(ul.offset <= p6.bytes.length, "upper layer inside the packet");
        touchTransport(p6.bytes.subarray(ul.offset), p6.src, p6.dst);
      }
    }
    const ip = viewIp(b);
    if (ip !== null) assert.ok(ip.l4 <= ip.bytes.length, "viewIp: l4 inside the packet");
    touchTransport(b, Z4, Z4);
    touchTransport(b, Z16, Z16);
  });
});

Deno.test("fuzz: addresses and CIDRs parse strictly and format back to themselves", async () => {
  const alphabet = [..."0123456789abcdefABCDEF:.:.::/%x "];
  await fuzz("address", { iterations: 20_000, ms: 1_000 }, [], (rng, input) => {
    let text: string;
    if (rng.chance(0.5)) {
      const a = rng.chance(0.5) ? rng.bytes(4) : rng.bytes(16);
      if (a.length === 16 && rng.chance(0.5)) a.fill(0, 0, 2 * rng.int(8));
      text = formatAddress(a);
      if (rng.chance(0.5)) text += `/${rng.int(140)}`;
      if (rng.chance(0.5)) text = mutateText(rng, text);
    } else {
      text = Array.from({ length: rng.int(45) }, () => rng.pick(alphabet)).join("");
    }
    input.value = text;
    const a = parseAddress(text);
    if (a !== null) {
      assert.ok(a.length === 4 || a.length === 16);
      assert.deepEqual(parseAddress(formatAddress(a)), a, "format/parse round trip");
    }
    const c = Cidr.parse(text);
    if (c !== null) {
      const again = Cidr.parse(c.toString());
      assert.ok(again !== null && again.toString() === c.toString(), "CIDR round trip");
      assert.ok(reverseZones(c).length <= 256);
    }
  });
});

// --- The flow engine's NAT and UDP table ------------------------------------------------------

const FAKE_CONN = {
  read: () => Promise.resolve(null),
  write: (p: Uint8Array) => Promise.resolve(p.length),
  closeWrite: () => Promise.resolve(),
  close: () => {},
} satisfies Conn;

const REASONS: readonly DialFailure[] = ["refused", "unreachable", "timeout", "forbidden"];

/** Checks a packet the engine made up itself: well-formed, with correct checksums. */
function checkEmitted(p: Uint8Array): void {
  const ip = viewIp(p);
  assert.ok(ip !== null, `an emitted packet is well-formed IP: ${hex(p)}`);
  if (ip.v4 !== null) assert.ok(ip.v4.verifyChecksum(), "emitted IPv4 header checksum");
  const l4 = ip.bytes.subarray(ip.l4);
  if (ip.protocol === 6) {
    const t = TcpSegment.view(l4);
    assert.ok(t !== null && t.verifyChecksum(ip.src, ip.dst), "emitted TCP checksum");
  } else if (ip.protocol === 17) {
    const u = UdpDatagram.view(l4);
    assert.ok(u !== null && u.verifyChecksum(ip.src, ip.dst), "emitted UDP checksum");
  }
}

function tcpOk(ip: NonNullable<ReturnType<typeof viewIp>>): boolean {
  const t = TcpSegment.view(ip.bytes.subarray(ip.l4));
  return t !== null && t.verifyChecksum(ip.src, ip.dst) &&
    (ip.v4 === null || ip.v4.verifyChecksum());
}

Deno.test("fuzz: TcpNat.handle keeps checksums right and emits only well-formed packets", async () => {
  const addrs = {
    v4: {
      tunAddr: parseAddress("10.255.0.1")!,
      peerAddr: parseAddress("10.255.0.2")!,
      listenPort: 40000,
    },
    v6: {
      tunAddr: parseAddress("fd00:ff::1")!,
      peerAddr: parseAddress("fd00:ff::2")!,
      listenPort: 40000,
    },
  };
  let dialing: TcpFlow[] = [];
  const nat = new TcpNat(addrs, {
    dial: (flow) => dialing.push(flow),
    released: () => {},
  }, { maxFlows: 64, synHoldMs: 5_000, acceptTimeoutMs: 2_000, lingerMs: 3_000 });
  let now = 0;
  await fuzz("tcp-nat", { iterations: 20_000, ms: 2_000 }, [], (rng, input) => {
    now += rng.int(200);
    const out: Uint8Array[] = [];
    const emit = (p: Uint8Array) => out.push(p.slice());
    const action = rng.int(20);
    const flows = [...nat.flows.values()];
    if (action === 0 && dialing.length > 0) {
      const flow = dialing.splice(rng.int(dialing.length), 1)[0];
      input.value = flow.syn;
      if (rng.chance(0.5)) {
        // The held SYN goes out rewritten: its checksum is as right (or wrong) as it came in.
        const held = flow.syn === null ? null : viewIp(flow.syn);
        const valid = held !== null && tcpOk(held);
        nat.dialSucceeded(flow, FAKE_CONN, now, (p) => {
          const ip = viewIp(p);
          assert.ok(ip !== null, "the injected SYN is IP");
          assert.equal(tcpOk(ip), valid, "rewriting the held SYN keeps its checksum right");
        });
      } else {
        nat.dialFailed(flow, rng.pick(REASONS), emit);
      }
    } else if (action === 1 && flows.length > 0) {
      const f = rng.pick(flows);
      nat.accepted(f.family, rng.chance(0.8) ? f.natPort : rng.int(65536));
    } else if (action === 2 && flows.length > 0) {
      nat.finished(rng.pick(flows), now);
    } else if (action === 3) {
      now += rng.int(10_000);
      nat.sweep(now);
      dialing = dialing.filter((f) => f.state === "dialing");
    } else {
      let b: Uint8Array;
      if (flows.length > 0 && rng.chance(0.3)) {
        // The listener's side of a flow, as the kernel would send it back.
        const f = rng.pick(flows);
        const a = f.family === 4 ? addrs.v4 : addrs.v6;
        b = tcpPacket(
          formatAddress(a.tunAddr),
          a.listenPort,
          formatAddress(a.peerAddr),
          f.natPort,
          {
            flags: rng.pick([TCP_ACK, TCP_ACK | TCP_SYN, TCP_ACK | TCP_FIN, TCP_RST, rng.int(256)]),
            seq: rng.u32(),
            ack: rng.u32(),
            payload: rng.bytes(rng.int(40)),
          },
        );
      } else {
        const v6 = rng.chance(0.3);
        const pool = v6
          ? ["fd00:96::1", "fd00:96::2", "::1"]
          : ["10.96.0.1", "10.96.0.2", "127.0.0.1"];
        b = tcpPacket(rng.pick(pool), 30000 + rng.int(4), rng.pick(pool), rng.pick([80, 443]), {
          flags: rng.pick([TCP_SYN, TCP_SYN, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, rng.int(256)]),
          seq: rng.int(4),
          ack: rng.u32(),
          payload: rng.bytes(rng.int(40)),
        });
      }
      if (rng.chance(0.3)) b = mutate(rng, b);
      input.value = b;
      const ip = viewIp(b);
      if (ip === null || ip.fragment || ip.protocol !== 6) return;
      const valid = tcpOk(ip);
      if (nat.handle(ip, now, emit)) {
        const again = viewIp(ip.bytes);
        assert.ok(again !== null, "a rewritten packet is still IP");
        assert.equal(tcpOk(again), valid, "rewriting keeps a checksum right (or wrong)");
      }
    }
    for (const p of out) checkEmitted(p);
    assert.ok(nat.flows.size <= 64, "maxFlows holds");
  });
  nat.clear();
});

Deno.test("fuzz: UdpFlows.handle and its replies emit only well-formed packets", async () => {
  let opening: UdpFlow[] = [];
  const sent: number[] = [];
  const udp = new UdpFlows({ open: (f) => opening.push(f) }, {
    maxFlows: 32,
    idleMs: 2_000,
    maxPendingBytes: 4096,
  });
  let now = 0;
  const dflow: DatagramFlow = { send: (p) => void sent.push(p.length), close: () => {} };
  await fuzz("udp-flows", { iterations: 20_000, ms: 1_500 }, [], (rng, input) => {
    now += rng.int(100);
    const out: Uint8Array[] = [];
    const flows = [...udp.flows.values()];
    const action = rng.int(12);
    if (action === 0 && opening.length > 0) {
      const f = opening.splice(rng.int(opening.length), 1)[0];
      if (rng.chance(0.6)) udp.opened(f, dflow);
      else udp.failed(f, rng.pick(REASONS), (p) => out.push(p.slice()));
    } else if (action === 1 && flows.length > 0) {
      const f = rng.pick(flows);
      const payload = rng.bytes(rng.pick([0, 1, 100, 1400]));
      input.value = payload;
      const p = udp.reply(f, payload, now);
      if (p !== null) out.push(p);
    } else if (action === 2) {
      now += rng.int(5_000);
      udp.sweep(now);
      opening = opening.filter((f) => f.state === "opening");
    } else if (action === 3 && flows.length > 0) {
      udp.forget(rng.pick(flows));
    } else {
      const v6 = rng.chance(0.3);
      const pool = v6
        ? ["fd00:96::1", "fd00:96::2", "::1"]
        : ["10.96.0.1", "10.96.0.2", "127.0.0.1"];
      let b = udpPacket(
        rng.pick(pool),
        5000 + rng.int(40),
        rng.pick(pool),
        rng.pick([53, 7000]),
        rng.bytes(rng.pick([0, 1, 100, 1400, 3000])),
      );
      if (rng.chance(0.3)) b = mutate(rng, b);
      input.value = b;
      const ip = viewIp(b);
      if (ip === null || ip.fragment || ip.protocol !== 17) return;
      udp.handle(ip, now);
    }
    for (const p of out) checkEmitted(p);
    assert.ok(udp.flows.size <= 32, "maxFlows holds");
    for (const f of udp.flows.values()) assert.ok(f.pendingBytes <= 4096, "pending cap holds");
  });
  udp.clear();
});

// --- The tunnel ------------------------------------------------------------------------------

function randomFrame(rng: Rng): Uint8Array {
  const type = rng.chance(0.9) ? rng.int(4) as FrameType : rng.int(256) as FrameType;
  const flags = rng.chance(0.8)
    ? rng.pick([
      0,
      Flag.SYN,
      Flag.ACK,
      Flag.FIN,
      Flag.RST,
      Flag.SYN | Flag.FIN,
      Flag.ACK | Flag.FIN,
    ])
    : rng.int(65536);
  const id = rng.pick([0, 1, 2, 3, 5, rng.u32()]);
  if (type === FrameType.Data && rng.chance(0.8)) {
    return encodeFrame(type, flags, id, rng.bytes(rng.pick([0, 1, 12, 300, 5000])));
  }
  return encodeFrame(type, flags, id, rng.pick([0, 1, 256 * 1024, 0x7fffffff, rng.u32()]));
}

/** A frame the protocol allows, and what it should decode to. */
function validFrame(rng: Rng): { bytes: Uint8Array; frame: Omit<Frame, "owned"> } {
  const type = rng.int(4) as FrameType;
  const streamFlags = [0, Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST, Flag.SYN | Flag.FIN];
  let flags: number, id: number, data: Uint8Array = new Uint8Array(0), length: number;
  if (type === FrameType.Data || type === FrameType.WindowUpdate) {
    flags = rng.pick(streamFlags);
    id = 1 + rng.int(0xfffffffe);
  } else {
    flags = type === FrameType.Ping ? rng.pick([Flag.SYN, Flag.ACK]) : 0;
    id = 0;
  }
  if (type === FrameType.Data) {
    data = rng.bytes(rng.pick([0, 1, 12, 300, 5000]));
    length = data.length;
  } else {
    length = rng.u32();
  }
  const bytes = type === FrameType.Data
    ? encodeFrame(type, flags, id, data)
    : encodeFrame(type, flags, id, length);
  return { bytes, frame: { type, flags, streamId: id, length, data } };
}

function splitChunks(rng: Rng, b: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let o = 0; o < b.length;) {
    const n = 1 + rng.int(rng.chance(0.5) ? 16 : 4096);
    chunks.push(b.subarray(o, o + n));
    o += n;
  }
  return chunks;
}

Deno.test("fuzz: the yamux decoder throws only ProtocolError, and stays failed", async () => {
  await fuzz("yamux-decoder", { iterations: 20_000, ms: 2_000 }, [ProtocolError], (rng, input) => {
    if (rng.chance(0.4)) {
      // Well-formed frames, split anywhere: each comes out as it went in.
      const want = Array.from({ length: 1 + rng.int(8) }, () => validFrame(rng));
      const all = new Uint8Array(want.reduce((s, f) => s + f.bytes.length, 0));
      let at = 0;
      for (const f of want) {
        all.set(f.bytes, at);
        at += f.bytes.length;
      }
      input.value = all;
      const d = new Decoder();
      const carry = { frame: null };
      const got: Omit<Frame, "owned">[] = [];
      for (const c of splitChunks(rng, all)) {
        d.push(c);
        for (const f of wholeFrames(d, carry)) {
          got.push({
            type: f.type,
            flags: f.flags,
            streamId: f.streamId,
            length: f.length,
            data: f.data.slice(),
          });
        }
      }
      assert.deepEqual(got, want.map((f) => f.frame));
      return;
    }
    const frames = Array.from({ length: 1 + rng.int(8) }, () => randomFrame(rng));
    let stream: Uint8Array = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
    let o = 0;
    for (const f of frames) {
      stream.set(f, o);
      o += f.length;
    }
    if (rng.chance(0.5)) stream = mutate(rng, stream);
    input.value = stream;
    const d = new Decoder({ maxFrameSize: rng.pick([1024, 1024 * 1024]) });
    const got: Frame[] = [];
    try {
      for (const c of splitChunks(rng, stream)) {
        d.push(c);
        for (const f of d) {
          if (f.type === FrameType.Data) assert.equal(f.data.length, f.length, "data length");
          got.push({ ...f, data: f.data.slice() });
        }
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      assert.throws(() => d.next(), (e) => e === err, "a failed decoder keeps failing");
      throw err;
    }
  });
});

function randomHost(rng: Rng): string {
  return rng.pick([
    "127.0.0.1",
    "::ffff:127.0.0.1",
    "169.254.169.254",
    "web.default.svc.cluster.local",
    "ünïcödé.example",
    "x".repeat(1 + rng.int(200)),
    Array.from({ length: 1 + rng.int(30) }, () => String.fromCodePoint(1 + rng.int(0x2fff))).join(
      "",
    ),
  ]);
}

function randomOpenRequest(rng: Rng): OpenRequest {
  switch (rng.int(4)) {
    case 0:
      return { kind: "tcp", host: randomHost(rng), port: 1 + rng.int(65535), timeoutMs: rng.u32() };
    case 1:
      return { kind: "udp", host: randomHost(rng), port: 1 + rng.int(65535) };
    case 2:
      return { kind: "dns" };
    default:
      return { kind: "control" };
  }
}

const STATUSES: readonly OpenStatus[] = [
  "ok",
  "refused",
  "unreachable",
  "timeout",
  "forbidden",
  "error",
];

Deno.test("fuzz: open requests and replies round-trip, and bad ones throw only ProtocolError", async () => {
  await fuzz("open-request", { iterations: 20_000, ms: 1_000 }, [ProtocolError], (rng, input) => {
    if (rng.chance(0.3)) {
      const r = randomOpenRequest(rng);
      input.value = JSON.stringify(r);
      let enc: Uint8Array;
      try {
        enc = encodeOpenRequest(r);
      } catch (err) {
        // A host over 255 bytes of UTF-8 is refused by the encoder, not sent.
        if (err instanceof RangeError) return;
        throw err;
      }
      assert.deepEqual(decodeOpenRequest(enc), { request: r, consumed: enc.length });
      const reply = {
        status: rng.pick(STATUSES),
        ...(rng.chance(0.5) ? { message: randomHost(rng) } : {}),
      };
      const er = encodeOpenReply(reply);
      assert.equal(decodeOpenReply(er)?.reply.status, reply.status);
      return;
    }
    const base = rng.chance(0.5)
      ? (() => {
        try {
          return encodeOpenRequest(randomOpenRequest(rng));
        } catch {
          return new Uint8Array([1, 1, 0, 0]);
        }
      })()
      : encodeOpenReply({ status: rng.pick(STATUSES), message: randomHost(rng) });
    const b = rng.chance(0.2) ? rng.bytes(rng.int(40)) : mutate(rng, base);
    input.value = b;
    const which = rng.int(3);
    if (which === 0) {
      const d = decodeOpenRequest(b);
      if (d !== null) assert.ok(d.consumed <= b.length);
    } else if (which === 1) {
      const d = decodeOpenReply(b);
      if (d !== null) assert.ok(d.consumed <= b.length);
    } else {
      const n = openBodyLength(b);
      if (n !== null) assert.ok(n <= 1024);
    }
  });
});

Deno.test("fuzz: the port-forward demux throws only TypeError and passes every data byte", async () => {
  await fuzz("portforward-demux", { iterations: 20_000, ms: 1_000 }, [TypeError], (rng, input) => {
    const demux = new PortForwardDemux();
    const msgs = Array.from({ length: 1 + rng.int(10) }, () => {
      const m = rng.bytes(rng.int(rng.chance(0.2) ? 3 : 200));
      if (m.length > 0) m[0] = rng.chance(0.95) ? rng.int(2) : rng.int(256);
      return m;
    });
    input.value = msgs.map((m) => hex(m, 16)).join(" ");
    let headerLeft = 2, expected = 0, got = 0;
    for (const m of msgs) {
      const ev = demux.message(m);
      if (m.length > 0 && m[0] === 0) {
        const skip = Math.min(headerLeft, m.length - 1);
        headerLeft -= skip;
        expected += m.length - 1 - skip;
      }
      if (ev.type === "data") got += ev.data.length;
    }
    assert.equal(got, expected, "data bytes after the port header");
  });
});

// --- DNS -------------------------------------------------------------------------------------

const NAMES = [
  "web.default.svc.cluster.local",
  "web.default.svc",
  "web.default",
  "web",
  "db.kube-system.svc.cluster.local",
  "_http._tcp.web.default.svc.cluster.local",
  "10-244-0-5.default.pod.cluster.local",
  "a.example.com.cluster.local",
  "www.bank.example",
  "example.com",
  "20.0.96.10.in-addr.arpa",
  "1.1.1.1.in-addr.arpa",
  "cluster.local",
  ".",
];

function randomName(rng: Rng): string {
  if (rng.chance(0.7)) return rng.pick(NAMES);
  const labels = Array.from(
    { length: 1 + rng.int(6) },
    () =>
      Array.from(
        { length: 1 + rng.int(rng.chance(0.05) ? 70 : 12) },
        () => rng.pick([..."abcxyz019-_*\\. "]),
      ).join(""),
  );
  return labels.join(".");
}

const TYPES = ["A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "ANY", "NS", "SOA", "MX"] as const;

function randomRecord(rng: Rng, owner: string): Record<string, unknown> {
  const type = rng.pick(["A", "AAAA", "CNAME", "PTR", "TXT", "SRV"] as const);
  const name = rng.chance(0.6) ? owner : randomName(rng);
  const data = type === "A"
    ? `10.96.${rng.int(256)}.${rng.int(256)}`
    : type === "AAAA"
    ? "fd00:96::1"
    : type === "TXT"
    ? ["x".repeat(rng.int(300))]
    : type === "SRV"
    ? { priority: 0, weight: 0, port: rng.int(65536), target: randomName(rng) }
    : randomName(rng);
  return { type, name, ttl: rng.pick([0, 5, 30, 2 ** 31 - 1]), class: "IN", data };
}

function dnsAnswer(rng: Rng, raw: Uint8Array): Uint8Array {
  const q = decode(raw);
  const question = q?.questions?.[0];
  const owner = question?.name ?? randomName(rng);
  const answers = Array.from({ length: rng.int(6) }, () => randomRecord(rng, owner));
  const authorities = rng.chance(0.3)
    ? [{ type: "NS", name: rng.pick(["cluster.local", "bank.example"]), ttl: 5, data: "ns.x" }]
    : [];
  let resp: Uint8Array;
  try {
    resp = encode({
      id: q?.id ?? 0,
      type: "response",
      flags: (1 << 8) | (1 << 7) | rng.pick([0, 0, 0, 2, 3, 5]),
      questions: q?.questions ?? [],
      answers,
      authorities,
    } as unknown as Message);
  } catch {
    resp = rng.bytes(rng.int(100));
  }
  return rng.chance(0.2) ? mutate(rng, resp) : resp;
}

function bareName(n: string): string {
  return n.toLowerCase().replace(/\.$/, "");
}

Deno.test("fuzz: DnsServer.handle answers or drops every query and relays only the cluster's own records", async () => {
  let step: Rng | null = null;
  const next = () => step!;
  const cluster: DnsServerOptions["cluster"] = (raw) => {
    const rng = next();
    if (rng.chance(0.05)) return Promise.reject(new Error("tunnel down"));
    return Promise.resolve(rng.chance(0.05) ? rng.bytes(rng.int(64)) : dnsAnswer(rng, raw));
  };
  const upstream: NonNullable<DnsServerOptions["upstream"]> = (raw) => {
    const rng = next();
    if (rng.chance(0.05)) return Promise.reject(new Error("no upstream"));
    return Promise.resolve(dnsAnswer(rng, raw));
  };
  const scope = () => ({
    clusterDomain: "cluster.local",
    namespaces: new Set(["default", "kube-system"]),
    namespace: "default",
    cidrs: [Cidr.parse("10.96.0.0/12")!, Cidr.parse("fd00:96::/108")!],
  });
  const split = new DnsServer({ scope, cluster, upstream: null });
  const forwarding = new DnsServer({ scope, cluster, upstream });
  await fuzz("dns-server", { iterations: 20_000, ms: 2_500 }, [], async (rng, input) => {
    step = rng;
    const name = randomName(rng);
    const type = rng.pick(TYPES);
    let q: Uint8Array;
    try {
      q = encode({
        id: rng.int(65536),
        type: "query",
        flags: rng.chance(0.9) ? 1 << 8 : rng.int(65536),
        questions: rng.chance(0.95)
          ? [{ name, type, class: "IN" }]
          : [{ name, type, class: "IN" }, { name, type, class: "IN" }],
        additionals: rng.chance(0.3)
          ? [{ type: "OPT", name: ".", udpPayloadSize: rng.pick([0, 512, 1232, 4096, 65535]) }]
          : [],
      } as Message);
    } catch {
      q = rng.bytes(12 + rng.int(40));
    }
    if (rng.chance(0.3)) q = mutate(rng, q);
    input.value = q;
    const transport = rng.chance(0.8) ? "udp" : "tcp";
    const useSplit = rng.chance(0.5);
    const server = useSplit ? split : forwarding;
    const r = await server.handle(q, transport);
    if (r === null) return;
    assert.ok(r instanceof Uint8Array);
    if (transport === "udp") assert.ok(r.length <= 4096, `UDP answer of ${r.length} bytes`);
    const m = decode(r);
    if (m === null || !useSplit) return;
    // Split DNS: every answer came from the cluster, so each must be the cluster's own.
    const asked = bareName(m.questions?.[0]?.name ?? "");
    for (const a of m.answers ?? []) {
      const owner = bareName(a.name);
      assert.ok(
        owner === asked || owner === "cluster.local" || owner.endsWith(".cluster.local") ||
          owner.endsWith(".arpa"),
        `answer for ${owner} to a question about ${asked}`,
      );
    }
  });
});

// --- Daemon requests, config file and credential material -----------------------------------

/** Mostly well-formed values per setting, to get past the first checks. */
const SETTING_VALUES: Record<string, (rng: Rng) => unknown> = {
  namespace: (rng) => rng.pick(["default", "kube-system", "../x", "a\nb", "com.", ""]),
  alsoProxy: (rng) => rng.pick([[], ["10.0.0.0/8"], ["0.0.0.0/0", "fd00::/8"], ["x"]]),
  neverProxy: (rng) => rng.pick([[], ["10.1.0.0/16"], ["::/0"]]),
  transports: (rng) => rng.pick([0, 1, 2, 16, 17, 2.5]),
  mtu: (rng) => rng.pick([576, 1280, 1500, 9000, 65535, 65536]),
  dns: (rng) => rng.pick(["auto", "resolved", "resolv.conf", "macos", "off", "x"]),
  tunName: (rng) => rng.pick(["kconnect0", "-x", "a".repeat(16), "tun/0", ""]),
  tunNet4: (rng) => rng.pick(["100.64.0.0/30", "0.0.0.0/0", "10.0.0.1/32", "x"]),
  tunNet6: (rng) => rng.pick(["fd00:ff::/126", "::/0", "fd00::"]),
  managerImage: (rng) => rng.pick([null, "denoland/deno:2", "x y", "a@sha256:00"]),
  clusterDomain: (rng) => rng.pick(["cluster.local", "com", "example.com", "", "x\ny"]),
  allowRouteConflicts: (rng) => rng.chance(0.5),
  installManager: (rng) => rng.chance(0.5),
  upgradeManager: (rng) => rng.chance(0.5),
  managerNamespace: (rng) => rng.pick(["kconnect", "kube-system", "../x", "A", ""]),
  group: (rng) => rng.pick(["kconnect", 1000, 0, -1, "no such group", "a b"]),
};

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, 1, -1, 1.5, 16, 1280, 9000, 65536, 1e300, -0]);
    case 3:
      return rng.pick([
        "",
        "x",
        "default",
        "10.96.0.0/12",
        "0.0.0.0/0",
        "fd00::/8",
        "../x",
        "a\nb",
        "-x",
        "kconnect0",
        "resolv.conf",
        "macos",
        "auto",
        "off",
        "cluster.local",
        "x".repeat(300),
      ]);
    case 4:
      return randomName(rng);
    case 5:
      return [...Array(rng.int(4))].map(() => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) put(o, randomKey(rng), randomValue(rng, depth + 1));
      return o;
    }
  }
}

const SETTING_KEYS = [
  "namespace",
  "alsoProxy",
  "neverProxy",
  "allowRouteConflicts",
  "managerNamespace",
  "transports",
  "mtu",
  "dns",
  "tunName",
  "tunNet4",
  "tunNet6",
  "installManager",
  "upgradeManager",
  "managerImage",
  "group",
  "clusterDomain",
];

function randomKey(rng: Rng): string {
  return rng.chance(0.9) ? rng.pick(SETTING_KEYS) : rng.pick(["__proto__", "constructor", "x", ""]);
}

/** Sets an own property, also one named `__proto__` (as JSON.parse would make it). */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function randomSettings(rng: Rng): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = rng.int(6); i > 0; i--) {
    const k = randomKey(rng);
    const gen = SETTING_VALUES[k];
    put(o, k, gen !== undefined && rng.chance(0.8) ? gen(rng) : randomValue(rng, 1));
  }
  return o;
}

function randomConfig(rng: Rng): unknown {
  if (rng.chance(0.05)) return randomValue(rng);
  const c: Record<string, unknown> = {};
  if (rng.chance(0.7)) c.defaults = randomSettings(rng);
  if (rng.chance(0.7)) {
    const contexts: Record<string, unknown> = {};
    for (let i = rng.int(3); i > 0; i--) {
      contexts[rng.pick(["prod", "dev", "", "x y"])] = randomSettings(rng);
    }
    c.contexts = rng.chance(0.9) ? contexts : randomValue(rng);
  }
  if (rng.chance(0.2)) c.group = randomValue(rng);
  if (rng.chance(0.1)) put(c, randomKey(rng), randomValue(rng));
  return c;
}

Deno.test("fuzz: daemon requests through parseRequest and checkSettings throw only TypeError or SettingsError", async () => {
  await fuzz(
    "daemon-request",
    { iterations: 20_000, ms: 2_000 },
    [TypeError, SettingsError],
    (rng, input) => {
      const o: Record<string, unknown> = {
        v: rng.chance(0.95) ? 1 : randomValue(rng),
        auth: rng.chance(0.95) ? "0123abcd" : randomValue(rng),
        type: rng.chance(0.97) ? rng.pick(["up", "up", "up", "up", "status", "down"]) : "x",
      };
      if (o.type === "up") {
        o.kubeconfig = rng.pick([null, "/home/u/.kube/config", randomValue(rng)]);
        o.context = rng.pick([null, "prod", randomValue(rng)]);
        o.env = rng.chance(0.97) ? { HOME: "/home/u", PATH: "/usr/bin" } : randomValue(rng);
        o.cwd = rng.chance(0.97) ? "/home/u" : randomValue(rng);
        if (rng.chance(0.5)) o.switch = rng.chance(0.9) ? rng.chance(0.5) : randomValue(rng);
        o.flags = rng.chance(0.9) ? randomSettings(rng) : randomValue(rng);
        const config = rng.chance(0.5) ? null : randomConfig(rng);
        if (config !== null && typeof config === "object" && rng.chance(0.9)) {
          put(config as Record<string, unknown>, "path", "/home/u/.config/kconnect/config.json");
        }
        o.config = config;
      }
      if (rng.chance(0.05)) put(o, rng.pick(["extra", "__proto__", "uid"]), randomValue(rng));
      let line = JSON.stringify(o);
      if (rng.chance(0.15)) line = mutateText(rng, line);
      input.value = line;
      const r = parseRequest(line);
      if (r.type === "up") {
        const settings = resolveSettings(r.flags, r.config, r.context ?? "prod");
        checkSettings(settings, "request");
      }
    },
  );
});

Deno.test("fuzz: parseConfig throws only SettingsError (or TypeError)", async () => {
  await fuzz(
    "config",
    { iterations: 20_000, ms: 1_000 },
    [SettingsError, TypeError],
    (rng, input) => {
      let text = JSON.stringify(randomConfig(rng)) ?? "";
      if (rng.chance(0.3)) text = mutateText(rng, text);
      input.value = text;
      const c = parseConfig(text, "/fuzz/config.json");
      resolveSettings({}, c, "prod");
    },
  );
});

Deno.test("fuzz: parseMaterial throws only TypeError (or SettingsError)", async () => {
  const valid = sampleMaterial();

  const keys = Object.keys(valid);
  await fuzz(
    "material",
    { iterations: 20_000, ms: 1_000 },
    [TypeError, SettingsError],
    (rng, input) => {
      const m: Record<string, unknown> = { ...valid };
      for (let i = rng.int(4); i > 0; i--) {
        const k = rng.pick(keys);
        if (rng.chance(0.1)) delete m[k];
        else {
          m[k] = rng.pick([
            randomValue(rng),
            "http://127.0.0.1:1",
            "2030-01-01T00:00:00Z",
            "not a time",
            "../x",
            { "X-Api-Key": "k", bad: 1 },
          ]);
        }
      }
      let text = JSON.stringify(m);
      if (rng.chance(0.3)) text = mutateText(rng, text);
      input.value = text;
      parseMaterial(text);
    },
  );
});

// --- Hostile clients against the traffic manager ------------------------------------------

Deno.test({
  name:
    "fuzz: hostile yamux clients of the traffic manager: every session ends, none is leaked, no unhandled rejection",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const refuse = () => Promise.reject(new DialError("refused"));
    const options = {
      hostname: "127.0.0.1",
      port: 0,
      client: null,
      namespace: "kconnect",
      resolvConf: "",
      udpIdleMs: 200,
      // Nothing is dialled for real (loopback and metadata are denied anyway).
      dialer: { dialTcp: refuse, openUdp: refuse },
    };
    // Each hostile session is logged as a warning: keep them out of the test output.
    const previous = setLogWriter(() => {});
    await using tm = await TrafficManager.start(options as TrafficManagerOptions);
    using _restore = { [Symbol.dispose]: () => void setLogWriter(previous) };
    const port = tm.addr.port;
    let unended = 0;
    await fuzz("manager-session", { iterations: 2_000, ms: 3_000 }, [], async (rng, input) => {
      const frames: Uint8Array[] = [];
      let id = 1;
      for (let n = 1 + rng.int(20); n > 0; n--) {
        if (rng.chance(0.4)) {
          // An open: SYN with an open request (tcp, udp, dns, control), maybe data, FIN, RST.
          let req: Uint8Array;
          try {
            req = encodeOpenRequest(randomOpenRequest(rng));
          } catch {
            req = rng.bytes(8);
          }
          if (rng.chance(0.2)) req = mutate(rng, req);
          frames.push(encodeFrame(FrameType.Data, Flag.SYN, id, req));
          if (rng.chance(0.5)) {
            frames.push(
              encodeFrame(FrameType.Data, rng.pick([0, Flag.FIN]), id, rng.bytes(rng.int(2000))),
            );
          }
          if (rng.chance(0.3)) {
            frames.push(
              encodeFrame(FrameType.WindowUpdate, rng.pick([0, Flag.RST, Flag.FIN]), id, rng.u32()),
            );
          }
          id += rng.chance(0.9) ? 2 : rng.int(5);
        } else if (rng.chance(0.7)) {
          frames.push(randomFrame(rng));
        } else {
          frames.push(rng.bytes(1 + rng.int(30)));
        }
      }
      const all = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
      let o = 0;
      for (const f of frames) {
        all.set(f, o);
        o += f.length;
      }
      input.value = all;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      // Read what the manager answers, so its writes never block; resolves at its close.
      const ended = (async () => {
        const buf = new Uint8Array(65536);
        try {
          while ((await conn.read(buf)) !== null) { /* discard */ }
        } catch { /* reset */ }
      })();
      try {
        for (const c of splitChunks(rng, all)) await conn.write(c);
        if (rng.chance(0.8)) await conn.closeWrite();
      } catch { /* the manager hung up first: fine */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const byManager = await Promise.race([
        ended.then(() => true),
        new Promise<false>((r) => timer = setTimeout(() => r(false), 200)),
      ]);
      clearTimeout(timer);
      if (!byManager) unended++;
      try {
        conn.close();
      } catch { /* closed */ }
      await ended;
    });
    // Every session ends once its client is gone: none is left holding memory.
    for (let i = 0; i < 50 && tm.sessionCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(tm.sessionCount, 0, "sessions left open after their clients hung up");
    console.log(
      `fuzz manager-session: ${unended} sessions still open after 200 ms (client hung up)`,
    );
  },
});
