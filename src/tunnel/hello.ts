/**
 * The handshake at the start of every transport between a kconnect client and a traffic manager
 * that can resume sessions (protocol 2), before any yamux byte. The client speaks first:
 *
 * - a new session: `NEW(id, secret, grace)` → `WELCOME(grace, retainLimit)`;
 * - a session whose transport was lost: `RESUME(id)` → `CHALLENGE(nonce)` →
 *   `PROOF(HMAC-SHA256(secret, "kconnect-resume" ‖ id ‖ nonce), received)` →
 *   `RESUMED(received, grace)`, or `REFUSED(code, reason)` at any step.
 *
 * The id and the 32-byte secret are random, made by the client for each session; the secret
 * crosses the wire once, in `NEW`, and is never logged. A resume proves knowledge of it over a
 * fresh nonce, so a replayed `PROOF` is worth nothing, and a client that has only the id gets
 * `REFUSED`. The offsets are the bytes of the other side's stream each has received: each side
 * then sends again what the other lacks (`SessionCore.resume`).
 *
 * Every message starts with `KCNX`, the version (2) and a type byte. An old manager (protocol 1,
 * plain yamux) reads `K` as a bad yamux version and answers with a yamux frame, whose first byte
 * is 0: the client sees that and falls back ({@linkcode LegacyPeerError}); a new manager that reads
 * a first byte other than `K` serves plain yamux ({@linkcode readHello} says `legacy`).
 *
 * Reads take exactly the bytes of each message, so nothing after the handshake is consumed.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Conn } from "../io/conn.ts";
import { writeAll } from "../io/relay.ts";
import { ProtocolError } from "./errors.ts";

/** The protocol version that resumes sessions. */
export const RESUME_PROTOCOL = 2;
/** Bytes in a session id. */
export const SESSION_ID_LENGTH = 16;
/** Bytes in a session secret. */
export const SECRET_LENGTH = 32;
const NONCE_LENGTH = 32;
const MAC_LENGTH = 32;
const MAGIC = [0x4b, 0x43, 0x4e, 0x58]; // "KCNX"
const HEAD = 6;
const MAX_REASON = 512;
const PROOF_LABEL = new TextEncoder().encode("kconnect-resume");

const T = {
  New: 1,
  Resume: 2,
  Proof: 3,
  Welcome: 0x81,
  Challenge: 0x82,
  Resumed: 0x83,
  Refused: 0x84,
} as const;

/** Why a manager refused a resume (or a new session). */
export const RefuseCode = {
  /** No such session: the manager restarted or was replaced, or it already ended. */
  Unknown: 1,
  /** The grace period ran out and the session's flows were ended. */
  Expired: 2,
  /** The proof was wrong: not the client that opened the session. */
  BadProof: 3,
  /** The manager is at its limit of detached sessions or memory. */
  Busy: 4,
  /** The offsets do not fit what the manager kept (state lost on one side). */
  Offset: 5,
  /** A malformed or unexpected message, or a session id already in use. */
  Protocol: 6,
} as const;

/** A refusal code value. */
export type RefuseCode = typeof RefuseCode[keyof typeof RefuseCode];

/** The peer speaks protocol 1 (plain yamux) only: it cannot resume sessions. */
export class LegacyPeerError extends Error {
  override name = "LegacyPeerError";
}

/**
 * The transport opened but the handshake on it failed (the far end closed, answered garbage or
 * nothing): nothing at the pod's end speaks kconnect's protocol. `cause` says how.
 */
export class HandshakeError extends Error {
  override name = "HandshakeError";
}

/** The manager refused the session's resumption (or start), with a code and its reason. */
export class ResumeRefusedError extends Error {
  override name = "ResumeRefusedError";
  constructor(readonly code: number, readonly reason: string) {
    super(`resume refused: ${reason}`);
  }
}

/** What identifies a resumable session; the secret never leaves this process except in `NEW`. */
export interface SessionKey {
  id: Uint8Array<ArrayBuffer>;
  secret: Uint8Array<ArrayBuffer>;
}

/** A new random session key. */
export function newSessionKey(): SessionKey {
  return {
    id: crypto.getRandomValues(new Uint8Array(SESSION_ID_LENGTH)),
    secret: crypto.getRandomValues(new Uint8Array(SECRET_LENGTH)),
  };
}

/** A short, loggable name of a session id (its first 4 bytes, hex); never the secret. */
export function shortId(id: Uint8Array): string {
  return [...id.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function message(type: number, bodyLength: number): { buf: Uint8Array; view: DataView } {
  const buf = new Uint8Array(HEAD + bodyLength);
  buf.set(MAGIC);
  buf[4] = RESUME_PROTOCOL;
  buf[5] = type;
  return { buf, view: new DataView(buf.buffer) };
}

async function readExact(conn: Conn, n: number, what: string): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(buf.subarray(off));
    if (r === null) throw new ProtocolError(`${what}: the connection ended after ${off} bytes`);
    off += r;
  }
  return buf;
}

/** Reads a message head; checks magic and version. `first` is its first byte, if already read. */
async function readHead(conn: Conn, what: string, first?: number): Promise<number> {
  const rest = await readExact(conn, first === undefined ? HEAD : HEAD - 1, what);
  const head = first === undefined ? rest : Uint8Array.of(first, ...rest);
  for (let i = 0; i < MAGIC.length; i++) {
    if (head[i] !== MAGIC[i]) throw new ProtocolError(`${what}: not a kconnect handshake`);
  }
  if (head[4] !== RESUME_PROTOCOL) {
    throw new ProtocolError(`${what}: protocol ${head[4]}, expected ${RESUME_PROTOCOL}`);
  }
  return head[5];
}

async function readRefusal(conn: Conn, what: string): Promise<ResumeRefusedError> {
  const h = await readExact(conn, 3, what);
  const len = (h[1] << 8) | h[2];
  if (len > MAX_REASON) throw new ProtocolError(`${what}: refusal reason of ${len} bytes`);
  const text = new TextDecoder().decode(await readExact(conn, len, what));
  return new ResumeRefusedError(h[0], text);
}

/**
 * Reads the manager's answer head; a refusal throws, a plain yamux peer throws
 * {@linkcode LegacyPeerError}, anything but `expect` throws {@linkcode ProtocolError}.
 */
async function readAnswer(conn: Conn, expect: number, what: string): Promise<void> {
  const first = await readExact(conn, 1, what);
  if (first[0] === 0) {
    throw new LegacyPeerError("the traffic manager speaks protocol 1 (no session resumption)");
  }
  const type = await readHead(conn, what, first[0]);
  if (type === T.Refused) throw await readRefusal(conn, what);
  if (type !== expect) throw new ProtocolError(`${what}: unexpected message type ${type}`);
}

/** What the manager granted a new session. */
export interface Welcome {
  /** Seconds the manager holds the session's flows after its transport is lost. */
  graceSeconds: number;
  /** The most bytes it keeps unacknowledged per session (what a detached session holds). */
  retainLimit: number;
}

/** Client: starts a new resumable session on `conn`. */
export async function helloNew(
  conn: Conn,
  key: SessionKey,
  graceSeconds: number,
): Promise<Welcome> {
  const { buf, view } = message(T.New, SESSION_ID_LENGTH + SECRET_LENGTH + 4);
  buf.set(key.id, HEAD);
  buf.set(key.secret, HEAD + SESSION_ID_LENGTH);
  view.setUint32(HEAD + SESSION_ID_LENGTH + SECRET_LENGTH, graceSeconds);
  await writeAll(conn, buf);
  await readAnswer(conn, T.Welcome, "session handshake");
  const body = new DataView((await readExact(conn, 8, "session handshake")).buffer);
  return { graceSeconds: body.getUint32(0), retainLimit: body.getUint32(4) };
}

/** What a resume agreed on. */
export interface Resumed {
  /** Bytes of this side's stream the manager has: send again from there. */
  peerReceived: number;
  graceSeconds: number;
}

/**
 * Client: resumes the session `key` names on `conn`, telling the manager that `received` bytes
 * of its stream arrived. Throws {@linkcode ResumeRefusedError} when the manager refuses.
 */
export async function helloResume(
  conn: Conn,
  key: SessionKey,
  received: number,
): Promise<Resumed> {
  const { buf } = message(T.Resume, SESSION_ID_LENGTH);
  buf.set(key.id, HEAD);
  await writeAll(conn, buf);
  await readAnswer(conn, T.Challenge, "resume handshake");
  const nonce = await readExact(conn, NONCE_LENGTH, "resume handshake");
  const proof = message(T.Proof, MAC_LENGTH + 8);
  proof.buf.set(resumeProof(key, nonce), HEAD);
  proof.view.setBigUint64(HEAD + MAC_LENGTH, BigInt(received));
  await writeAll(conn, proof.buf);
  await readAnswer(conn, T.Resumed, "resume handshake");
  const body = new DataView((await readExact(conn, 12, "resume handshake")).buffer);
  return { peerReceived: Number(body.getBigUint64(0)), graceSeconds: body.getUint32(8) };
}

/** HMAC-SHA256 over the label, the session id and the nonce, keyed with the secret. */
export function resumeProof(key: SessionKey, nonce: Uint8Array): Uint8Array {
  const h = createHmac("sha256", key.secret);
  h.update(PROOF_LABEL);
  h.update(key.id);
  h.update(nonce);
  return new Uint8Array(h.digest());
}

/** Whether `mac` proves `key` over `nonce` (compared in constant time). */
export function checkProof(key: SessionKey, nonce: Uint8Array, mac: Uint8Array): boolean {
  const want = resumeProof(key, nonce);
  return mac.length === want.length && timingSafeEqual(mac, want);
}

/** What a client's first message asked for (manager side). */
export type Hello =
  /** Not a handshake: a protocol-1 client; `first` is the yamux byte already read. */
  | { kind: "legacy"; first: number }
  | { kind: "new"; key: SessionKey; graceSeconds: number }
  | { kind: "resume"; id: Uint8Array };

/** Manager: reads the client's first message. Throws {@linkcode ProtocolError} on garbage. */
export async function readHello(conn: Conn): Promise<Hello> {
  const first = (await readExact(conn, 1, "handshake"))[0];
  if (first !== MAGIC[0]) return { kind: "legacy", first };
  const type = await readHead(conn, "handshake", first);
  if (type === T.New) {
    const b = await readExact(conn, SESSION_ID_LENGTH + SECRET_LENGTH + 4, "handshake");
    return {
      kind: "new",
      key: {
        id: b.slice(0, SESSION_ID_LENGTH),
        secret: b.slice(SESSION_ID_LENGTH, SESSION_ID_LENGTH + SECRET_LENGTH),
      },
      graceSeconds: new DataView(b.buffer).getUint32(SESSION_ID_LENGTH + SECRET_LENGTH),
    };
  }
  if (type === T.Resume) {
    return { kind: "resume", id: await readExact(conn, SESSION_ID_LENGTH, "handshake") };
  }
  throw new ProtocolError(`handshake: unexpected message type ${type}`);
}

/** Manager: accepts a new session. */
export async function writeWelcome(conn: Conn, w: Welcome): Promise<void> {
  const { buf, view } = message(T.Welcome, 8);
  view.setUint32(HEAD, w.graceSeconds);
  view.setUint32(HEAD + 4, w.retainLimit);
  await writeAll(conn, buf);
}

/**
 * Manager: challenges a resume; resolves with the client's proof and its received offset once
 * they arrive.
 */
export async function challenge(
  conn: Conn,
): Promise<{ nonce: Uint8Array; mac: Uint8Array; received: number }> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  const { buf } = message(T.Challenge, NONCE_LENGTH);
  buf.set(nonce, HEAD);
  await writeAll(conn, buf);
  const type = await readHead(conn, "resume handshake");
  if (type !== T.Proof) throw new ProtocolError(`resume handshake: unexpected type ${type}`);
  const b = await readExact(conn, MAC_LENGTH + 8, "resume handshake");
  const received = new DataView(b.buffer).getBigUint64(MAC_LENGTH);
  if (received > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(`resume handshake: received offset ${received} out of range`);
  }
  return { nonce, mac: b.slice(0, MAC_LENGTH), received: Number(received) };
}

/** Manager: the session goes on; `received` bytes of the client's stream arrived here. */
export async function writeResumed(
  conn: Conn,
  received: number,
  graceSeconds: number,
): Promise<void> {
  const { buf, view } = message(T.Resumed, 12);
  view.setBigUint64(HEAD, BigInt(received));
  view.setUint32(HEAD + 8, graceSeconds);
  await writeAll(conn, buf);
}

/** Manager: refuses, with a code and a reason the client shows (no secret in it). */
export async function writeRefused(conn: Conn, code: RefuseCode, reason: string): Promise<void> {
  const text = new TextEncoder().encode(reason).subarray(0, MAX_REASON);
  const { buf } = message(T.Refused, 3 + text.length);
  buf[HEAD] = code;
  buf[HEAD + 1] = text.length >> 8;
  buf[HEAD + 2] = text.length & 0xff;
  buf.set(text, HEAD + 3);
  await writeAll(conn, buf);
}
