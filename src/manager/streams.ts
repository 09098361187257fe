/**
 * What the traffic manager does with each stream a client opens: read its open-request, then
 * dial TCP, relay UDP, answer a DNS query, or serve session info.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { logger } from "../log.ts";
import { type Dialer, DialError } from "../stack/dialer.ts";
import { relay } from "../stack/relay.ts";
import { datagramSender, FrameReader, writeU16Frame, writeU32Frame } from "../tunnel/framing.ts";
import { readOpenRequest, writeOpenReply } from "../tunnel/open.ts";
import type { OpenStatus } from "../tunnel/open_request.ts";
import type { Stream } from "../tunnel/stream.ts";
import { forwardDns } from "../dns/forward.ts";
import { deniedReason } from "./policy.ts";
import type { Cidr } from "../wire/address.ts";
import type { SessionInfo } from "./session_info.ts";

const log = logger("manager");

/** What stream handlers need from the manager. */
export interface StreamContext {
  dialer: Dialer;
  /** The current session info. */
  info(): SessionInfo;
  /** Calls `cb` with each new session info; returns the unsubscribe function. */
  watchInfo(cb: (info: SessionInfo) => void): () => void;
  /** The cluster DNS servers. */
  dnsServers: string[];
  /** Close a UDP relay after this long without a datagram, ms. */
  udpIdleMs: number;
  /** Destinations never dialled. */
  denied: readonly Cidr[];
  /** Port of the DNS servers. */
  dnsPort: number;
}

function statusOf(err: unknown): OpenStatus {
  return err instanceof DialError ? err.reason : "error";
}

/** Serves one stream until it is done; never rejects. */
export async function serveStream(stream: Stream, ctx: StreamContext): Promise<void> {
  try {
    const req = await readOpenRequest(stream);
    switch (req.kind) {
      case "tcp":
        return await serveTcp(stream, ctx, req.host, req.port, req.timeoutMs);
      case "udp":
        return await serveUdp(stream, ctx, req.host, req.port);
      case "dns":
        return await serveDns(stream, ctx);
      case "control":
        return await serveControl(stream, ctx);
    }
  } catch (err) {
    log.debug(`stream ${stream.id}: ${(err as Error).message}`);
    stream.reset();
  }
}

async function serveTcp(
  stream: Stream,
  ctx: StreamContext,
  host: string,
  port: number,
  timeoutMs: number,
) {
  const denied = deniedReason(host, ctx.denied);
  if (denied !== null) {
    await writeOpenReply(stream, { status: "forbidden", message: denied });
    return stream.close();
  }
  let conn;
  try {
    conn = await ctx.dialer.dialTcp({ address: host, port }, {
      signal: AbortSignal.timeout(timeoutMs + 1000),
      timeoutMs,
    });
  } catch (err) {
    await writeOpenReply(stream, { status: statusOf(err), message: (err as Error).message });
    return stream.close();
  }
  try {
    await writeOpenReply(stream, { status: "ok" });
  } catch (err) {
    conn.close(); // the client gave up (reset) while we dialled
    throw err;
  }
  await relay(stream, conn);
}

async function serveUdp(stream: Stream, ctx: StreamContext, host: string, port: number) {
  const denied = deniedReason(host, ctx.denied);
  if (denied !== null) {
    await writeOpenReply(stream, { status: "forbidden", message: denied });
    return stream.close();
  }
  const abort = new AbortController();
  const sendFrame = datagramSender(stream, () => abort.abort());
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
  const enc = new TextEncoder();
  let chain = writeU32Frame(stream, enc.encode(JSON.stringify(ctx.info())));
  const stop = ctx.watchInfo((info) => {
    chain = chain.then(() => writeU32Frame(stream, enc.encode(JSON.stringify(info))));
  });
  try {
    const reader = new FrameReader(stream);
    // The client sends nothing yet; its end of stream ends the subscription.
    while ((await reader.readU32Frame(1 << 20)) !== null) { /* ignore */ }
  } finally {
    stop();
    await chain.catch(() => {});
    stream.close();
  }
}
