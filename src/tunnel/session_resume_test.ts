// Resumable sessions through the driver: transport writes kept without a copy until
// acknowledged, a transport cut in the middle of a bulk transfer both ways, and the session
// attached to a new transport: every byte arrives once, in order.
import assert from "node:assert/strict";
import { memoryPipe } from "../io/pipe.ts";
import { Session } from "./session.ts";
import { equalBytes, pseudoRandom, readExactly, simTest } from "./_test_util.ts";

simTest(
  "resumable Session: a bulk transfer both ways survives a cut transport and goes on over a new one",
  async (clock) => {
    const [a, b] = memoryPipe({ clock, delayMs: 2, bytesPerSecond: 200e6 });
    const client = new Session(a, { client: true, clock, resumable: true });
    const server = new Session(b, { client: false, clock, resumable: true });
    const detached: string[] = [];
    client.onDetached = (i) => detached.push(`client ${i.reason}`);
    server.onDetached = (i) => detached.push(`server ${i.reason}`);
    const up = pseudoRandom(6 << 20, 11);
    const down = pseudoRandom(5 << 20, 12);
    const s = await client.open();
    await s.write(up.subarray(0, 1));
    const t = (await server.accept())!;
    const sending = Promise.all([
      s.write(up.subarray(1)).then(() => s.closeWrite()),
      t.write(down).then(() => t.closeWrite()),
    ]);
    const gotUp = readExactly(t, up.length);
    const gotDown = readExactly(s, down.length);
    await clock.sleep(12); // part of each direction is across, part in flight
    assert.ok(client.retainedBytes > 0, "the client keeps what is unacknowledged");
    a.close();
    b.close();
    await clock.sleep(1);
    assert.ok(client.isDetached && server.isDetached, detached.join(", "));
    assert.ok(!client.isClosed && !server.isClosed);
    await clock.sleep(5_000);
    const [a2, b2] = memoryPipe({ clock, delayMs: 2, bytesPerSecond: 200e6 });
    const clientHas = client.receivedOffset;
    const serverHas = server.receivedOffset;
    server.attach(b2, clientHas);
    client.attach(a2, serverHas);
    await sending;
    assert.ok(equalBytes(await gotUp, up), "up: every byte once, in order");
    assert.ok(equalBytes(await gotDown, down), "down: every byte once, in order");
    await clock.sleep(1_000);
    assert.ok(
      client.retainedBytes < 64 * 1024,
      `acknowledged and released: ${client.retainedBytes}`,
    );
    assert.throws(() => client.attach(a2, 0), /resume: the peer has received 0 bytes/);
    await client.close();
    await server.close();
  },
);
