/** Daemon requests are checked against an allow-list (review M3). */
import assert from "node:assert/strict";
import { parseRequest, PROTOCOL_VERSION } from "./protocol.ts";

const up = (extra: Record<string, unknown> = {}, flags: Record<string, unknown> = {}) =>
  JSON.stringify({
    v: PROTOCOL_VERSION,
    auth: "ab",
    type: "up",
    kubeconfig: null,
    context: null,
    env: {},
    cwd: "/",
    switch: false,
    flags,
    config: null,
    ...extra,
  });

Deno.test("parseRequest() refuses an unknown flag (bad request)", () => {
  assert.throws(
    () => parseRequest(up({}, { extra: 1 })),
    /^TypeError: Bad request: .*flags\.extra: unknown setting/,
  );
  assert.throws(
    () => parseRequest(up({}, { stateDir: "/tmp/x" })),
    /flags\.stateDir: unknown setting/,
  );
});

Deno.test("parseRequest() refuses the review's flags: tunNet4 0.0.0.0/1, tunNet6 ::/1, tunName eth0 or -x", () => {
  assert.throws(() => parseRequest(up({}, { tunNet4: "0.0.0.0/1" })), /Bad request: .*tunNet4/);
  assert.throws(() => parseRequest(up({}, { tunNet6: "::/1" })), /Bad request: .*tunNet6/);
  assert.throws(() => parseRequest(up({}, { tunName: "-x" })), /Bad request: .*tunName/);
  assert.throws(() => parseRequest(up({}, { tunName: "eth0 " })), /Bad request: .*tunName/);
  assert.throws(() => parseRequest(up({}, { namespace: "../x" })), /Bad request: .*namespace/);
  assert.throws(() => parseRequest(up({}, { transports: "2" })), /Bad request: .*transports/);
});

Deno.test("parseRequest() refuses unknown keys in the request and in its config", () => {
  assert.throws(() => parseRequest(up({ stateDir: "/tmp/x" })), /unknown key "stateDir"/);
  assert.throws(
    () => parseRequest(JSON.stringify({ v: PROTOCOL_VERSION, auth: "a", type: "status", x: 1 })),
    /unknown key "x"/,
  );
  assert.throws(
    () => parseRequest(up({ config: { path: "/c", defaults: { extra: 1 }, contexts: {} } })),
    /Bad request: .*defaults\.extra: unknown setting/,
  );
  assert.throws(() => parseRequest(up({ switch: "yes" })), /"switch" must be true or false/);
});

Deno.test("parseRequest() keeps a good up request as sent", () => {
  const r = parseRequest(up({ switch: true }, { transports: 3, alsoProxy: ["192.0.2.0/24"] }));
  assert.equal(r.type, "up");
  if (r.type === "up") {
    assert.deepEqual(r.flags, { transports: 3, alsoProxy: ["192.0.2.0/24"] });
    assert.equal(r.switch, true);
  }
});
