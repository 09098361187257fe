/** Settings that arrive from elsewhere (review C1, M3, L10). */
import assert from "node:assert/strict";
import {
  checkConfigObject,
  checkFlags,
  checkSettings,
  DEFAULT_SETTINGS,
  defaultNamespace,
  parseConfig,
  SettingsError,
  type UpSettings,
} from "./config.ts";

const check = (s: Partial<UpSettings>, os = "linux") =>
  checkSettings({ ...DEFAULT_SETTINGS, ...s } as UpSettings, "request", os);

Deno.test("checkSettings() refuses dns: macos off macOS (C1), and takes it on macOS", () => {
  assert.throws(
    () => check({ dns: "macos" }, "linux"),
    (e) => e instanceof SettingsError && e.field === "dns" && /macOS only/.test(e.message),
  );
  assert.throws(() => check({ dns: "macos" }, "windows"), SettingsError);
  assert.equal(check({ dns: "macos" }, "darwin").dns, "macos");
  assert.equal(check({ dns: "auto" }, "linux").dns, "auto");
});

Deno.test("checkSettings() keeps tunNet4 in 198.18.0.0/15 (/24–/29) and tunNet6 in fd00::/8 (/64–/125) (M3)", () => {
  for (
    const bad of [
      "0.0.0.0/1",
      "0.0.0.0/0",
      "198.18.0.0/15",
      "198.18.0.0/23",
      "198.18.0.0/30",
      "10.0.0.0/29",
      "198.18.0.1",
      "x",
    ]
  ) {
    assert.throws(
      () => check({ tunNet4: bad }),
      (e) => e instanceof SettingsError && e.field === "tunNet4",
      bad,
    );
  }
  for (
    const bad of [
      "::/1",
      "::/0",
      "fd00::/8",
      "fd00::/63",
      "fd00::/126",
      "2001:db8::/64",
      "fc00::/125",
    ]
  ) {
    assert.throws(
      () => check({ tunNet6: bad }),
      (e) => e instanceof SettingsError && e.field === "tunNet6",
      bad,
    );
  }
  assert.equal(
    check({ tunNet4: "198.19.255.0/24", tunNet6: "fd12::/64" }).tunNet4,
    "198.19.255.0/24",
  );
});

Deno.test("checkSettings() refuses a tunName that starts with '-' or is no interface name (L10)", () => {
  for (
    const bad of [
      "-x",
      "--help",
      "-",
      "a b",
      "eth0:1",
      "a/b",
      "kconnect-tun-long",
      "Kc0",
      "",
      "a\nb",
    ]
  ) {
    assert.throws(
      () => check({ tunName: bad }),
      (e) => e instanceof SettingsError && e.field === "tunName",
      bad,
    );
  }
  assert.equal(check({ tunName: "kc0" }).tunName, "kc0");
});

Deno.test("checkSettings() refuses unknown keys and a namespace that is not a label", () => {
  assert.throws(() => check({ extra: 1 } as Partial<UpSettings>), /extra: unknown setting/);
  for (const ns of ["../x", "a/b", "com.", ""]) {
    assert.throws(
      () => check({ namespace: ns }),
      (e) => e instanceof SettingsError && e.field === "namespace",
      ns,
    );
  }
});

Deno.test("defaultNamespace() checks the kubeconfig context's namespace when none was given (C1)", () => {
  assert.equal(defaultNamespace(null, "prod", "shop"), "shop");
  assert.equal(defaultNamespace("web", "prod", "../x"), "web");
  for (const ns of ["../x", "../sudoers.d/x\nALL ALL=(ALL) NOPASSWD:ALL", "", 7, null]) {
    assert.throws(
      () => defaultNamespace(null, "prod", ns),
      /^SettingsError: Invalid kubeconfig context "prod": namespace: /,
      String(ns),
    );
  }
});

Deno.test("checkFlags() takes only settings, each checked (M3)", () => {
  assert.deepEqual(checkFlags({ transports: 3, namespace: "shop" }), {
    transports: 3,
    namespace: "shop",
  });
  assert.throws(() => checkFlags({ extra: 1 }), /flags\.extra: unknown setting/);
  assert.throws(() => checkFlags({ stateDir: "/tmp" }), /flags\.stateDir: unknown setting/);
  assert.throws(() => checkFlags({ tunNet4: "0.0.0.0/1" }), /tunNet4/);
  assert.throws(() => checkFlags({ tunName: "-x" }), /tunName/);
  assert.throws(() => checkFlags({ namespace: "../x" }), /flags\.namespace/);
  assert.throws(() => checkFlags([]), /flags/);
});

Deno.test("checkConfigObject() checks a config file sent in a request as strictly as the file", () => {
  const file = parseConfig(
    '{"defaults":{"transports":4},"contexts":{"p":{"namespace":"shop"}}}',
    "/c.json",
  );
  assert.deepEqual(checkConfigObject(JSON.parse(JSON.stringify(file))), file);
  assert.equal(checkConfigObject(null), null);
  assert.throws(
    () => checkConfigObject({ path: "/c.json", defaults: { colour: 1 }, contexts: {} }),
    /colour/,
  );
  assert.throws(
    () => checkConfigObject({ path: "/c.json", defaults: {}, contexts: {}, x: 1 }),
    /x: unknown key/,
  );
  assert.throws(() => checkConfigObject({ defaults: {}, contexts: {} }), /config\.path/);
});

Deno.test("parseConfig() takes clusterDomain as a DNS name, normalised", () => {
  const f = parseConfig('{"contexts":{"p":{"clusterDomain":"K8s.Example.com."}}}', "/c.json");
  assert.equal(f.contexts.p.clusterDomain, "k8s.example.com");
  for (const bad of ['""', '"."', '"a\\nb"', '"../x"', "7"]) {
    assert.throws(
      () => parseConfig(`{"defaults":{"clusterDomain":${bad}}}`, "/c.json"),
      /defaults\.clusterDomain: expected a DNS domain/,
      bad,
    );
  }
});
