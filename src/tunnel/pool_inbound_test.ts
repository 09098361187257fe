// Security review H2, the client half: a manager (or anyone who can pose as one) must not be
// able to make the laptop's daemon buffer streams it never asked for.
import assert from "node:assert/strict";
import { StreamResetError } from "./errors.ts";
import { memoryPipe } from "../io/pipe.ts";
import { SessionPool } from "./pool.ts";
import { Session } from "./session.ts";
import { simTest } from "./_test_util.ts";

simTest(
  "SessionPool sessions answer an inbound SYN with RST and buffer none of its data",
  async (clock) => {
    const servers: Session[] = [];
    await using pool = new SessionPool({
      size: 1,
      session: {},
      clock,
      connect: () => {
        const [a, b] = memoryPipe({ clock });
        servers.push(new Session(b, { client: false, clock }));
        return Promise.resolve(a);
      },
    });
    await pool.start();
    const server = servers[0];
    // The far end opens streams toward the client, each with as much data as the window allows.
    const pushed = [];
    for (let i = 0; i < 8; i++) {
      pushed.push(await server.open({ initial: new Uint8Array(256 * 1024) }));
    }
    for (const s of pushed) {
      await assert.rejects(s.read(new Uint8Array(16)), StreamResetError);
    }
    const client = pool.sessions[0];
    assert.equal(client.stats.bufferedBytes, 0);
    assert.equal(client.numStreams, 0);
    assert.equal(client.stats.streamsAccepted, 0);
    // The pool's own streams still work.
    const mine = await pool.open();
    await mine.write(new TextEncoder().encode("hi"));
    const t = (await server.accept())!;
    const buf = new Uint8Array(2);
    assert.equal(await t.read(buf), 2);
    await Promise.all(servers.map((s) => s.close()));
  },
);
