/**
 * tests/cluster/delay_line.ts, the benches' distant path: packets between two namespaces wait the
 * delay each way, TCP runs end to end through it (a connection in SYN-RECV included, which early
 * demux would otherwise break), and stopping it restores the direct path.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Netns } from "../_netns.ts";
import { DelayLine } from "./delay_line_process.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;
const ONE_WAY_MS = 30;

/** Downloads `url` in `ns` with curl: the connect time (ms) and the bytes received. */
async function fetchTimes(ns: Netns, url: string): Promise<{ connect: number; bytes: number }> {
  const r = await ns.exec([
    "curl",
    "-sS",
    "-o",
    "/dev/null",
    "-w",
    "%{time_connect} %{size_download}",
    url,
  ], { signal: AbortSignal.timeout(20_000) });
  const [connect, bytes] = r.stdout.trim().split(" ").map(Number);
  return { connect: connect * 1000, bytes };
}

Deno.test({
  name: "delay line: both directions wait, TCP works end to end, stopping restores the path",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using near = await Netns.create("dlnear");
  await using far = await Netns.create("dlfar");
  await far.veth(near, {
    name: "laptop0",
    peerName: "eth0",
    address: "100.64.0.1/30",
    peerAddress: "100.64.0.2/30",
  });
  const dir = await Deno.makeTempDir({ prefix: "kc-delay-line-" });
  try {
    await Deno.writeFile(`${dir}/blob`, new Uint8Array(4 << 20).fill(7));
    far.spawn(["python3", "-m", "http.server", "8000", "--bind", "100.64.0.1", "--directory", dir]);
    const url = "http://100.64.0.1:8000/blob";
    let direct = { connect: Infinity, bytes: 0 };
    for (let i = 0; i < 50 && direct.bytes === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      direct = await fetchTimes(near, url).catch(() => direct);
    }
    assert.equal(direct.bytes, 4 << 20);

    const line = new DelayLine(far, { iface: "laptop0", peer: "100.64.0.2" });
    await line.start(ONE_WAY_MS);

    // The handshake is one round trip: the SYN and the SYN-ACK each wait once.
    const delayed = await fetchTimes(near, url);
    assert.equal(delayed.bytes, 4 << 20, "the download went through the line whole");
    assert.ok(
      delayed.connect >= 2 * ONE_WAY_MS - 5,
      `connect took ${delayed.connect} ms through a ${ONE_WAY_MS} ms line`,
    );
    // The peer's neighbour entry expires while the line runs: ARP must still be answered.
    await near.exec(["ip", "neigh", "flush", "all"]);
    assert.equal((await fetchTimes(near, url)).bytes, 4 << 20, "after an ARP round");
    const ping = await near.exec(["ping", "-c", "3", "-i", "0.2", "100.64.0.1"]);
    const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1]);
    assert.ok(avg >= 2 * ONE_WAY_MS - 5, `ping took ${avg} ms`);

    await line.stop();
    assert.equal(line.lastExit, 0);
    // The TUN and its route went with the process: packets take the direct path again.
    const table = await far.exec(["ip", "route", "show", "table", "100"]);
    assert.equal(table.stdout.trim(), "");
    assert.equal((await fetchTimes(near, url)).bytes, 4 << 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
