// The manager's side of resumption on its own: who may resume a session, and what detached
// sessions may hold.
import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { memoryPipe } from "../io/pipe.ts";
import { helloNew, helloResume, newSessionKey, RefuseCode, ResumeRefusedError } from "./hello.ts";
import { SessionRegistry } from "./registry.ts";
import { Session } from "./session.ts";
import { type FakeClock, simTest } from "./_test_util.ts";

function setup(clock: FakeClock, detachedCapBytes = 64 << 20) {
  const logs: string[] = [];
  const registry = new SessionRegistry({
    maxGraceSeconds: 60,
    retainLimit: 1 << 20,
    detachedCapBytes,
    clock,
    log: (_l, m) => logs.push(m),
  });
  const servers: Session[] = [];
  const create = (conn: Conn, grant: { retainLimit: number } | null) => {
    const s = new Session(conn, { client: false, clock, resumable: grant !== null });
    servers.push(s);
    return s;
  };
  return { registry, servers, create, logs };
}

simTest(
  "registry: another client that presents a session's id (with its own secret) gets nothing; the owner still resumes",
  async (clock) => {
    const { registry, create, servers, logs } = setup(clock);
    const [c, m] = memoryPipe({ clock });
    const key = newSessionKey();
    const handshake = registry.handshake(m, create);
    const welcome = await helloNew(c, key, 600);
    assert.equal(welcome.graceSeconds, 60, "capped at the manager's longest grace");
    assert.equal((await handshake).kind, "new");
    const client = new Session(c, { client: true, clock, resumable: true });
    const st = await client.open();
    await st.write(new TextEncoder().encode("held"));
    await clock.sleep(50);
    c.close();
    await clock.sleep(50);
    assert.equal(registry.stats.detached, 1);

    // The thief knows the id (say, from a log) but not the secret.
    const [t, tm] = memoryPipe({ clock });
    const thief = registry.handshake(tm, create);
    const e = await helloResume(t, { id: key.id, secret: newSessionKey().secret }, 0).catch((e) =>
      e
    );
    assert.ok(e instanceof ResumeRefusedError && e.code === RefuseCode.BadProof, String(e));
    assert.equal((await thief).kind, "refused");
    assert.ok(logs.some((l) => /wrong proof refused/.test(l)));
    assert.ok(!logs.some((l) => l.includes([...key.secret].join())), "no secret in the log");
    assert.equal(registry.stats.detached, 1, "the session is untouched");

    // A plain stranger with an unknown id.
    const [u, um] = memoryPipe({ clock });
    const stranger = registry.handshake(um, create);
    const e2 = await helloResume(u, newSessionKey(), 0).catch((e) => e);
    assert.ok(e2 instanceof ResumeRefusedError && e2.code === RefuseCode.Unknown);
    await stranger;

    // The owner.
    const [c2, m2] = memoryPipe({ clock });
    const again = registry.handshake(m2, create);
    const r = await helloResume(c2, key, client.receivedOffset);
    assert.equal((await again).kind, "resumed");
    client.attach(c2, r.peerReceived);
    const accepted = (await servers[0].accept())!;
    const buf = new Uint8Array(4);
    assert.equal(await accepted.read(buf), 4);
    assert.equal(new TextDecoder().decode(buf), "held");
    assert.equal(registry.stats.resumed, 1);
    await client.close();
    await registry.close();
    for (const x of [t, tm, u, um]) x.close();
  },
);

simTest(
  "registry: detached sessions over the cap are ended, oldest first; the grace period ends the rest",
  async (clock) => {
    // Each client leaves 300 KB unread on the manager: two detached sessions exceed a 500 KB cap.
    const { registry, create, logs } = setup(clock, 500_000);
    const clients: Session[] = [];
    for (let i = 0; i < 3; i++) {
      const [c, m] = memoryPipe({ clock });
      const h = registry.handshake(m, create);
      await helloNew(c, newSessionKey(), 30);
      await h;
      const client = new Session(c, { client: true, clock, resumable: true });
      clients.push(client);
      const st = await client.open();
      await st.write(new Uint8Array(200_000));
      await clock.sleep(100);
      c.close();
      await clock.sleep(100 + i * 1000);
    }
    assert.equal(registry.stats.expired, 1);
    assert.equal(registry.stats.detached, 2);
    assert.ok(registry.stats.detachedBytes <= 500_000, `${registry.stats.detachedBytes}`);
    assert.ok(logs.some((l) => /more than the cap of 500000 bytes/.test(l)), logs.join("\n"));
    await clock.sleep(31_000);
    assert.equal(registry.stats.sessions, 0);
    assert.ok(logs.some((l) => /not resumed within its 30 s grace period/.test(l)));
    await Promise.all(clients.map((c) => c.close()));
  },
);
