/** The resolver plan's own checks (review C1, H1): names are compared after normalising. */
import assert from "node:assert/strict";
import { dnsPlan } from "./plan.ts";

const o = {
  server: "198.18.0.3",
  link: "kconnect0",
  clusterDomain: "cluster.local",
  namespace: "default",
  cidrs: [],
};

Deno.test("dnsPlan() skips namespace com. as a TLD, and other top-level names after normalising", () => {
  const p = dnsPlan({ ...o, namespaces: ["default", "com.", "COM", "Dev.", "local", "shop"] });
  assert.deepEqual(p.routingDomains, ["cluster.local", "svc", "default"]);
  assert.ok(!p.routingDomains.some((d) => /^com\.?$/i.test(d)));
  assert.deepEqual(p.skippedNamespaces, ["com", "dev", "local", "shop"]);
});

Deno.test("dnsPlan() never makes an empty or invalid routing domain", () => {
  const p = dnsPlan({ ...o, namespaces: ["", ".", "../x", "a/b", "a\nb", "payments"] });
  assert.deepEqual(p.routingDomains, ["cluster.local", "svc", "payments", "default"]);
  assert.ok(p.routingDomains.every((d) => /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(d)));
});

Deno.test("dnsPlan() refuses a cluster domain or namespace that is not a DNS name", () => {
  for (const d of ["", ".", "x\ny", "../x", "evil\nnameserver 203.0.113.9"]) {
    assert.throws(() => dnsPlan({ ...o, clusterDomain: d, namespaces: [] }), TypeError, d);
  }
  for (const n of ["../x", "a\nb", ""]) {
    assert.throws(() => dnsPlan({ ...o, namespace: n, namespaces: [] }), TypeError, n);
  }
});

Deno.test("dnsPlan() makes routing domains only of the namespaces it is told to route", () => {
  const p = dnsPlan({
    ...o,
    namespaces: ["default", "shop-a", "new-one"],
    routedNamespaces: new Set(["shop-a"]),
  });
  assert.deepEqual(p.routingDomains, ["cluster.local", "svc", "default", "shop-a"]);
});
