import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { memoryPipe } from "../io/pipe.ts";
import { Session } from "./session.ts";
import { simTest } from "./_test_util.ts";

simTest(
  "Session.open({ initial }) sends the SYN and the first bytes in one transport write",
  async (clock) => {
    const [a, b] = memoryPipe({ clock });
    const writes: Uint8Array[] = [];
    const recording: Conn = {
      read: (p) => a.read(p),
      write: (p) => {
        writes.push(p.slice());
        return a.write(p);
      },
      closeWrite: () => a.closeWrite(),
      close: () => a.close(),
    };
    const client = new Session(recording, { client: true, clock });
    const server = new Session(b, { client: false, clock });
    await client.ping(); // let the start-up ping go by
    writes.length = 0;
    const hello = new TextEncoder().encode("open request");
    await client.open({ initial: hello });
    const incoming = (await server.accept())!;
    const got = new Uint8Array(64);
    const n = (await incoming.read(got))!;
    assert.equal(new TextDecoder().decode(got.subarray(0, n)), "open request");
    assert.equal(writes.length, 1, `the SYN and the data went out in ${writes.length} writes`);
    assert.equal(writes[0].length, 12 + 12 + hello.length);
    await client.close();
    await server.close();
  },
);
