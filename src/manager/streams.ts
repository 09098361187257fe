/**
 * What the traffic manager does with each stream a client opens: read its open-request, then
 * dial TCP, relay UDP, answer a DNS query, or serve cluster info.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { logger } from "../log.ts";
import type { Conn } from "../io/conn.ts";
import { type Dialer, DialError } from "../io/dialer.ts";
import { relay } from "../io/relay.ts";
import { FrameReader, writeU16Frame, writeU32Frame } from "../tunnel/length_prefixed.ts";
import { readOpenRequest, writeOpenReply } from "../tunnel/open.ts";
import type { OpenReply, OpenRequest, OpenStatus } from "../tunnel/open_request.ts";
import type { Stream } from "../tunnel/stream.ts";
import { forwardDns } from "../dns/forward.ts";
import { deniedReason } from "./policy.ts";
import type { Cidr } from "../wire/address.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import {
  MAX_CONTROL_MESSAGE,
  MAX_DIAL_TIMEOUT_MS,
  MAX_DNS_FRAME,
  OPEN_REQUEST_TIMEOUT_MS,
  type SessionBudget,
} from "./budget.ts";

const log = logger("manager");

/** What stream handlers need from the manager. */
export interface StreamContext {
  dialer: Dialer;
  /** The current cluster info. */
  info(): ClusterInfo;
  /** Calls `cb` with each new cluster info; returns the unsubscribe function. */
  watchInfo(cb: (info: ClusterInfo) => void): () => void;
  /** The cluster DNS servers. */
  dnsServers: string[];
  /** Close a UDP relay after this long without a datagram, ms. */
  udpIdleMs: number;
  /** Destinations never dialled. */
  denied: readonly Cidr[];
  /** Port of the DNS servers. */
  dnsPort: number;
  /** Told why a stream was refused (a budget), for a rate-limited log line. */
  onRefused?: (reason: string) => void;
  /** How long a stream may take to send its open request, ms. Default {@linkcode OPEN_REQUEST_TIMEOUT_MS}. */
  openRequestTimeoutMs?: number;
}

/** A client's connect timeout, clamped to 1 ms .. {@linkcode MAX_DIAL_TIMEOUT_MS}. */
export function clampTimeout(ms: number): number {
  if (!Number.isFinite(ms)) return MAX_DIAL_TIMEOUT_MS;
  return Math.min(Math.max(Math.trunc(ms), 1), MAX_DIAL_TIMEOUT_MS);
}

function statusOf(err: unknown): OpenStatus {
  return err instanceof DialError ? err.reason : "error";
}

/**
 * Serves one stream; never rejects. `budget` is its session's: the stream is served only if it
 * fits (else refused with the reason, in the form its kind expects). Resolves once the stream is
 * done, or for a TCP stream that was connected, once its relay has started: the relay runs on
 * by itself until both sides have ended, and nothing else is kept meanwhile (no promise to
 * resolve, no frame of this module's), as a connection may stay idle for hours.
 */
export async function serveStream(
  stream: Stream,
  ctx: StreamContext,
  budget: SessionBudget,
): Promise<void> {
  let conn: Conn | null;
  try {
    conn = await serveRequest(stream, ctx, budget);
  } catch (err) {
    log.debug(`stream ${stream.id}: ${(err as Error).message}`);
    stream.reset();
    return;
  }
  // relay() never rejects, and closes both sides and gives the budget back before it resolves.
  if (conn !== null) void relay(stream, conn, { budget: budget.relayBudget() });
}

/**
 * Reads the open request and answers it: resolves with the connection to relay a TCP stream
 * to, or null once the stream has been served (or refused). Rejects when the stream failed.
 */
async function serveRequest(
  stream: Stream,
  ctx: StreamContext,
  budget: SessionBudget,
): Promise<Conn | null> {
  const req = await readOpenRequestWithin(
    stream,
    ctx.openRequestTimeoutMs ?? OPEN_REQUEST_TIMEOUT_MS,
  );
  // Until the reply, nothing may follow the request but a DNS query (the session accepted up
  // to the longest request and query; a dial that hangs holds no more than that).
  stream.limitReceive(req.kind === "dns" ? MAX_DNS_FRAME : 0);
  if (stream.released) return null; // reset: more came than that
  const refused = budget.admitStream(stream, req.kind);
  if (refused !== null) {
    ctx.onRefused?.(refused);
    await refuse(stream, ctx, req, refused);
    return null;
  }
  switch (req.kind) {
    case "tcp":
      return await connectTcp(stream, ctx, budget, req.host, req.port, req.timeoutMs);
    case "udp":
      await serveUdp(stream, ctx, budget, req.host, req.port);
      return null;
    case "dns":
      await serveDns(stream, ctx);
      return null;
    case "control":
      await serveControl(stream, ctx);
      return null;
  }
}

/** The stream's open request; the stream is reset when none has come within `ms`. */
async function readOpenRequestWithin(stream: Stream, ms: number): Promise<OpenRequest> {
  const timer = setTimeout(() => {
    log.debug(`stream ${stream.id}: no open request within ${ms} ms`);
    stream.reset();
  }, ms);
  try {
    return await readOpenRequest(stream);
  } finally {
    clearTimeout(timer);
  }
}

/** Says no to a request, the way its kind is answered: error reply, SERVFAIL, error message. */
export async function refuse(
  stream: Stream,
  ctx: StreamContext,
  req: OpenRequest,
  reason: string,
): Promise<void> {
  switch (req.kind) {
    case "tcp":
    case "udp":
      await writeOpenReply(stream, { status: "error", message: reason });
      break;
    case "dns": {
      const query = await new FrameReader(stream).readU16Frame();
      if (query !== null) await writeU16Frame(stream, servfail(query));
      break;
    }
    case "control": {
      const msg = { type: "error", managerVersion: ctx.info().managerVersion, message: reason };
      await writeU32Frame(stream, new TextEncoder().encode(JSON.stringify(msg)));
      break;
    }
  }
  stream.close();
}

/**
 * Dials for a TCP stream and answers it: the connection once the client has been told "ok", or
 * null when it has been told why not.
 */
async function connectTcp(
  stream: Stream,
  ctx: StreamContext,
  budget: SessionBudget,
  host: string,
  port: number,
  requestedTimeoutMs: number,
): Promise<Conn | null> {
  const denied = deniedReason(host, ctx.denied);
  if (denied !== null) {
    await writeOpenReply(stream, { status: "forbidden", message: denied });
    stream.close();
    return null;
  }
  // The client gave up (reset) or the session ended: stop waiting and dialling.
  const gone = budget.streamGone(stream);
  let conn: Conn | OpenReply;
  try {
    conn = await dialInTurn(ctx, budget, gone, host, port, clampTimeout(requestedTimeoutMs));
  } finally {
    budget.forgetStreamGone(stream); // the dial is over: the stream keeps no signal
  }
  if ("status" in conn) {
    await writeOpenReply(stream, conn);
    stream.close();
    return null;
  }
  try {
    stream.limitReceive(null);
    await writeOpenReply(stream, { status: "ok" });
  } catch (err) {
    conn.close(); // the client gave up (reset) while we dialled
    throw err;
  }
  return conn;
}

/**
 * Waits for a turn to dial (the session's pending-dial budget), then dials: the connection, or
 * the reply that tells the client why not. Rejects once `gone` has aborted.
 */
async function dialInTurn(
  ctx: StreamContext,
  budget: SessionBudget,
  gone: AbortSignal,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Conn | OpenReply> {
  const start = performance.now();
  let done: () => void;
  try {
    done = await budget.acquireDial(gone, timeoutMs);
  } catch (err) {
    if (gone.aborted) throw err;
    const s = budget.stats;
    return {
      status: "timeout",
      message: `no turn to dial within ${timeoutMs} ms: this session has ${s.pendingDials} ` +
        `connects in progress and ${s.queuedDials} waiting (--max-session-pending-dials, ` +
        "--max-pending-dials)",
    };
  }
  try {
    const left = Math.max(1, Math.round(timeoutMs - (performance.now() - start)));
    // The dialer gives up after `left` itself; `gone` stops it when the client does.
    return await ctx.dialer.dialTcp({ address: host, port }, { signal: gone, timeoutMs: left });
  } catch (err) {
    if (gone.aborted) throw err;
    return { status: statusOf(err), message: (err as Error).message };
  } finally {
    done();
  }
}

async function serveUdp(
  stream: Stream,
  ctx: StreamContext,
  budget: SessionBudget,
  host: string,
  port: number,
) {
  const denied = deniedReason(host, ctx.denied);
  if (denied !== null) {
    await writeOpenReply(stream, { status: "forbidden", message: denied });
    return stream.close();
  }
  const done = budget.openUdpFlow();
  if (typeof done === "string") {
    ctx.onRefused?.(done);
    await writeOpenReply(stream, { status: "error", message: done });
    return stream.close();
  }
  try {
    await relayUdp(stream, ctx, host, port);
  } finally {
    done();
  }
}

async function relayUdp(stream: Stream, ctx: StreamContext, host: string, port: number) {
  const abort = new AbortController();
  const sendFrame = boundedSender(stream, () => abort.abort());
  let idle: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort.abort(), ctx.udpIdleMs);
  };
  let flow;
  try {
    flow = await ctx.dialer.openUdp({ address: host, port }, {
      signal: abort.signal,
      onDatagram: (payload) => {
        touch();
        sendFrame(payload);
      },
    });
  } catch (err) {
    await writeOpenReply(stream, { status: statusOf(err), message: (err as Error).message });
    return stream.close();
  }
  try {
    stream.limitReceive(null);
    await writeOpenReply(stream, { status: "ok" });
  } catch (err) {
    flow.close();
    abort.abort();
    throw err;
  }
  touch();
  abort.signal.addEventListener("abort", () => stream.close(), { once: true });
  const reader = new FrameReader(stream);
  try {
    for (;;) {
      const d = await reader.readU16Frame();
      if (d === null) break;
      touch();
      flow.send(d);
    }
  } finally {
    clearTimeout(idle);
    flow.close();
    abort.abort();
    stream.close();
  }
}

/** Reply datagrams a UDP flow holds for a client that does not read: bytes, and count. */
export const UDP_QUEUE_BYTES = 32 * 1024;
const UDP_QUEUE_DATAGRAMS = 256;

/**
 * Sends datagrams on a stream as u16-framed messages without waiting, like a socket buffer:
 * past {@linkcode UDP_QUEUE_BYTES} (or 256 datagrams) waiting, further ones are dropped. The
 * stream's send window (256 KiB and up) takes bursts first; this holds only what a client that
 * stopped reading leaves. (A count alone let one flow hold 256 datagrams of 64 KiB.)
 */
function boundedSender(stream: Stream, onError: () => void): (payload: Uint8Array) => void {
  let bytes = 0;
  let count = 0;
  let chain = Promise.resolve();
  return (payload) => {
    if (count >= UDP_QUEUE_DATAGRAMS || bytes + payload.length > UDP_QUEUE_BYTES) return;
    count++;
    bytes += payload.length;
    chain = chain.then(() => writeU16Frame(stream, payload)).catch(onError).finally(() => {
      count--;
      bytes -= payload.length;
    });
  };
}

function servfail(query: Uint8Array): Uint8Array {
  try {
    const q = dnsPacket.decode(Buffer.from(query));
    return new Uint8Array(dnsPacket.encode({
      id: q.id,
      type: "response",
      // dns-packet takes the RCODE from the low bits of the flags: 2 is SERVFAIL.
      flags: ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | 2,
      questions: q.questions,
    } as dnsPacket.Packet));
  } catch {
    const r = query.slice(0, 12);
    r[2] |= 0x80; // QR
    r[3] = (r[3] & 0xf0) | 2; // SERVFAIL
    r.fill(0, 4, 12); // no records
    return r;
  }
}

async function serveDns(stream: Stream, ctx: StreamContext) {
  const reader = new FrameReader(stream);
  const query = await reader.readU16Frame();
  if (query === null) return stream.close();
  let answer: Uint8Array;
  try {
    answer = await forwardDns(query, ctx.dnsServers, { port: ctx.dnsPort });
  } catch (err) {
    log.warn((err as Error).message);
    answer = servfail(query);
  }
  await writeU16Frame(stream, answer);
  stream.close();
}

async function serveControl(stream: Stream, ctx: StreamContext) {
  // The reader below takes messages as they come (each at most MAX_CONTROL_MESSAGE bytes).
  stream.limitReceive(null);
  const enc = new TextEncoder();
  let chain = writeU32Frame(stream, enc.encode(JSON.stringify(ctx.info())));
  const stop = ctx.watchInfo((info) => {
    chain = chain.then(() => writeU32Frame(stream, enc.encode(JSON.stringify(info))));
  });
  try {
    const reader = new FrameReader(stream);
    // The client sends nothing yet; its end of stream ends the subscription.
    while ((await reader.readU32Frame(MAX_CONTROL_MESSAGE)) !== null) { /* ignore */ }
  } finally {
    stop();
    await chain.catch(() => {});
    stream.close();
  }
}
