import assert from "node:assert/strict";
import {
  checkSettings,
  DEFAULT_SETTINGS,
  loadConfig,
  parseConfig,
  resolveSettings,
} from "./config.ts";

Deno.test("resolveSettings() takes flags over the context's entry over defaults over built-ins", () => {
  const file = parseConfig(
    JSON.stringify({
      defaults: { dns: "off", transports: 4, neverProxy: ["10.0.0.0/8"] },
      contexts: { prod: { namespace: "shop", transports: 6, alsoProxy: ["192.0.2.0/24"] } },
    }),
    "/c.json",
  );
  const prod = resolveSettings({ transports: 8 }, file, "prod");
  assert.equal(prod.transports, 8);
  assert.equal(prod.namespace, "shop");
  assert.equal(prod.dns, "off");
  assert.deepEqual(prod.alsoProxy, ["192.0.2.0/24"]);
  assert.deepEqual(prod.neverProxy, ["10.0.0.0/8"]);
  assert.equal(prod.mtu, 65000);
  const dev = resolveSettings({}, file, "dev");
  assert.equal(dev.transports, 4);
  assert.equal(dev.namespace, null);
  // The built-in defaults, written out (README: transports 2, TUN kconnect0 with mtu 65000, ...).
  assert.deepEqual(resolveSettings({}, null, "x"), {
    namespace: null,
    alsoProxy: [],
    neverProxy: [],
    dns: "auto",
    managerNamespace: "kconnect",
    transports: 2,
    mtu: 65000,
    resumeGrace: 300, // README: open flows held 5 minutes while the tunnel is down
    allowRouteConflicts: false,
    tunName: "kconnect0",
    tunNet4: "198.18.0.0/29",
    tunNet6: "fd00:6b63::/125",
    installManager: false,
    upgradeManager: true,
    managerImage: null,
  });
});

Deno.test("parseConfig() names the file and the field that is wrong", () => {
  const cases: [unknown, RegExp][] = [
    [
      { contexts: { prod: { transports: 0 } } },
      /\/c\.json: contexts\.prod\.transports: expected an integer from 1 to 16, got 0/,
    ],
    [{ defaults: { dns: "sometimes" } }, /defaults\.dns: expected one of auto, .*got "sometimes"/],
    [{ defaults: { alsoProxy: ["10.0.0.0/33"] } }, /defaults\.alsoProxy\[0\]: expected a CIDR/],
    [{ defaults: { namespace: "Not_A_Name" } }, /defaults\.namespace: expected a namespace name/],
    [{ defaults: { colour: "blue" } }, /defaults\.colour: unknown setting/],
    [{ context: {} }, /\/c\.json: context: unknown key/],
    [{ contexts: [] }, /contexts: expected an object/],
  ];
  for (const [o, re] of cases) assert.throws(() => parseConfig(JSON.stringify(o), "/c.json"), re);
  assert.throws(
    () => parseConfig("{ nope", "/c.json"),
    /Invalid config file \/c\.json: \(file\): not valid JSON/,
  );
});

Deno.test("loadConfig() is null for a missing default file, an error for a named one", async () => {
  assert.equal(await loadConfig("/nonexistent/kconnect.json"), null);
  await assert.rejects(
    () => loadConfig("/nonexistent/kconnect.json", true),
    /Cannot read config file/,
  );
});

Deno.test("checkSettings() refuses bad values arriving in a request", () => {
  assert.throws(() => checkSettings({ ...DEFAULT_SETTINGS, mtu: 70000 }, "request"), /mtu/);
  assert.throws(() => checkSettings({ ...DEFAULT_SETTINGS, tunName: "a b" }, "request"), /tunName/);
  assert.deepEqual(checkSettings(DEFAULT_SETTINGS), DEFAULT_SETTINGS);
});
