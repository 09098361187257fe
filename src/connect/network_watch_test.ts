import assert from "node:assert/strict";
import { defaultRoutes, describeChange, watchNetwork } from "./network_watch.ts";

Deno.test("watchNetwork: a wall-clock jump past the monotonic clock is a wake; an address change is a network change; nothing else fires", () => {
  let wall = 1_000_000;
  let mono = 5_000;
  let addrs = ["eth0 10.0.0.5"];
  const seen: string[] = [];
  const w = watchNetwork({
    onChange: (why) => seen.push(why),
    addresses: () => addrs,
    wall: () => wall,
    monotonic: () => mono,
    intervalMs: 3_600_000,
  });
  try {
    wall += 1000;
    mono += 1000;
    w.check();
    assert.deepEqual(seen, [], "a second passed on both clocks: nothing");
    wall += 61_000; // asleep for a minute: the monotonic clock stood still
    mono += 1000;
    w.check();
    assert.deepEqual(seen, ["woke from sleep (about 60 s)"]);
    addrs = ["wlan0 192.168.1.7"];
    wall += 1000;
    mono += 1000;
    w.check();
    assert.equal(seen[1], "network changed: wlan0 192.168.1.7 added, eth0 10.0.0.5 gone");
    w.check();
    assert.equal(seen.length, 2, "no change, no call");
  } finally {
    w.stop();
  }
});

Deno.test("describeChange: null when the lists hold the same addresses", () => {
  assert.equal(describeChange(["a 1"], ["a 1"]), null);
  assert.equal(describeChange([], ["a 1"]), "network changed: a 1 added");
});

Deno.test("defaultRoutes(): the default routes of /proc/net/route, other routes and garbage left out", () => {
  const text = "Iface\tDestination\tGateway \tFlags\n" +
    "eth0\t00000000\t010200C0\t0003\n" + // default via 192.0.2.1
    "eth0\t000200C0\t00000000\t0001\n" + // 192.0.2.0/24, not a default
    "wlan0\t00000000\t0101A8C0\t0003\n" + // default via 192.168.1.1
    "bad\t00000000\tzz\n";
  assert.deepEqual(defaultRoutes(text), [
    "default via 192.0.2.1 dev eth0",
    "default via 192.168.1.1 dev wlan0",
  ]);
  assert.deepEqual(defaultRoutes(""), []);
});
