// The transport handshake of resumable sessions, both ends over an in-memory pipe.
import assert from "node:assert/strict";
import { memoryPipe } from "../io/pipe.ts";
import {
  challenge,
  checkProof,
  helloNew,
  helloResume,
  LegacyPeerError,
  newSessionKey,
  readHello,
  RefuseCode,
  resumeProof,
  ResumeRefusedError,
  writeRefused,
  writeResumed,
  writeWelcome,
} from "./hello.ts";
import { Session } from "./session.ts";
import { ProtocolError } from "./errors.ts";

Deno.test("hello: a new session carries id, secret and grace; the manager's welcome comes back", async () => {
  const [c, m] = memoryPipe();
  const key = newSessionKey();
  const client = helloNew(c, key, 180);
  const h = await readHello(m);
  assert.equal(h.kind, "new");
  if (h.kind !== "new") return;
  assert.deepEqual(h.key, key);
  assert.equal(h.graceSeconds, 180);
  await writeWelcome(m, { graceSeconds: 120, retainLimit: 8 << 20 });
  assert.deepEqual(await client, { graceSeconds: 120, retainLimit: 8 << 20 });
  c.close();
  m.close();
});

Deno.test("hello: a resume proves the secret over a fresh nonce; offsets cross both ways", async () => {
  const [c, m] = memoryPipe();
  const key = newSessionKey();
  const client = helloResume(c, key, 123_456_789_012);
  const h = await readHello(m);
  assert.equal(h.kind, "resume");
  if (h.kind !== "resume") return;
  assert.deepEqual(h.id, key.id);
  const { nonce, mac, received } = await challenge(m);
  assert.equal(received, 123_456_789_012);
  assert.ok(checkProof(key, nonce, mac));
  await writeResumed(m, 42, 90);
  assert.deepEqual(await client, { peerReceived: 42, graceSeconds: 90 });
  c.close();
  m.close();
});

Deno.test("hello: a proof from another secret, or for another nonce (a replay), does not check", () => {
  const key = newSessionKey();
  const thief = { id: key.id, secret: newSessionKey().secret };
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  assert.equal(checkProof(key, nonce, resumeProof(thief, nonce)), false);
  const old = crypto.getRandomValues(new Uint8Array(32));
  assert.equal(checkProof(key, nonce, resumeProof(key, old)), false);
  assert.equal(checkProof(key, nonce, new Uint8Array(31)), false);
  assert.equal(checkProof(key, nonce, resumeProof(key, nonce)), true);
});

Deno.test("hello: a refusal reaches the client with its code and reason", async () => {
  const [c, m] = memoryPipe();
  const client = helloResume(c, newSessionKey(), 0);
  await readHello(m);
  await writeRefused(m, RefuseCode.Unknown, "no such session (the traffic manager restarted?)");
  const e = await client.catch((e) => e);
  assert.ok(e instanceof ResumeRefusedError);
  assert.equal(e.code, RefuseCode.Unknown);
  assert.match(e.message, /resume refused: no such session/);
  c.close();
  m.close();
});

Deno.test("hello: a plain yamux manager (protocol 1) is recognised from its answer; a plain client from its first byte", async () => {
  // An old manager: a yamux session that reads the handshake as a bad frame and goes away.
  const [c, m] = memoryPipe();
  const old = new Session(m, { client: false });
  const e = await helloNew(c, newSessionKey(), 60).catch((e) => e);
  assert.ok(e instanceof LegacyPeerError, String(e));
  c.close();
  await old.close();

  // An old client: its first byte is a yamux header's (version 0).
  const [c2, m2] = memoryPipe();
  const plain = new Session(c2, { client: true });
  const h = await readHello(m2);
  assert.deepEqual(h, { kind: "legacy", first: 0 });
  await plain.close();
  m2.close();
});

Deno.test("hello: garbage after the magic is a protocol error, not a hang", async () => {
  const [c, m] = memoryPipe();
  await c.write(new Uint8Array([0x4b, 0x43, 0x4e, 0x58, 9, 1]));
  await assert.rejects(readHello(m), ProtocolError);
  const [c2, m2] = memoryPipe();
  await c2.write(new Uint8Array([0x4b, 0x43, 0x4e, 0x58, 2, 0x77]));
  await assert.rejects(readHello(m2), /unexpected message type/);
  const [c3, m3] = memoryPipe();
  await c3.write(new Uint8Array([0x4b, 0x43]));
  c3.close();
  await assert.rejects(readHello(m3), /ended after/);
  for (const x of [c, m, c2, m2, m3]) x.close();
});
