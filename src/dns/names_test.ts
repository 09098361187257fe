import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import { type DnsScope, reverseZones, routeName } from "./names.ts";

const scope: DnsScope = {
  clusterDomain: "cluster.local",
  namespaces: new Set(["default", "kube-system", "shop", "payments"]),
  namespace: "default",
  cidrs: [Cidr.parse("10.96.0.0/12")!, Cidr.parse("10.244.0.0/24")!],
};

Deno.test("routeName() sends cluster names to the cluster under their full name", () => {
  const table: [string, string][] = [
    ["web.default.svc.cluster.local.", "web.default.svc.cluster.local."],
    ["Web.Default.SVC.cluster.local", "web.default.svc.cluster.local."],
    ["web.default.svc", "web.default.svc.cluster.local."],
    ["pod-0.db.default.svc.cluster.local", "pod-0.db.default.svc.cluster.local."],
    ["_http._tcp.web.default.svc.cluster.local", "_http._tcp.web.default.svc.cluster.local."],
    ["10-244-0-10.default.pod.cluster.local", "10-244-0-10.default.pod.cluster.local."],
    ["cluster.local", "cluster.local."],
    ["20.0.96.10.in-addr.arpa", "20.0.96.10.in-addr.arpa."],
  ];
  for (const [q, fqdn] of table) {
    assert.deepEqual(routeName(q, scope), { kind: "cluster", fqdn }, q);
  }
});

Deno.test("routeName() tries the cluster first for short names, then the upstream", () => {
  assert.deepEqual(routeName("web.default", scope), {
    kind: "cluster-first",
    fqdn: "web.default.svc.cluster.local.",
  });
  assert.deepEqual(routeName("web", scope), {
    kind: "cluster-first",
    fqdn: "web.default.svc.cluster.local.",
  });
});

Deno.test("routeName() answers impossible cluster names itself and leaves the rest alone", () => {
  for (
    const q of [
      "www.example.com.default.svc.cluster.local", // search-list expansion of an outside name
      "web.nosuchns.svc.cluster.local",
      "a.b.c.default.pod.cluster.local",
      "nosuch.example.com.cluster.local", // ndots expansion with the bare cluster domain
    ]
  ) assert.deepEqual(routeName(q, scope), { kind: "nxdomain" }, q);
  for (
    const q of [
      "www.example.com",
      "example.default.com",
      "web.nosuchns",
      "8.8.8.8.in-addr.arpa",
      "",
    ]
  ) {
    assert.deepEqual(routeName(q, scope), { kind: "upstream" }, q);
  }
});

Deno.test("reverseZones() covers a prefix with octet or nibble zones", () => {
  assert.deepEqual(reverseZones(Cidr.parse("10.244.0.0/24")!), ["0.244.10.in-addr.arpa"]);
  const z = reverseZones(Cidr.parse("10.96.0.0/12")!);
  assert.equal(z.length, 16);
  assert.equal(z[0], "96.10.in-addr.arpa");
  assert.equal(z[15], "111.10.in-addr.arpa");
  assert.deepEqual(reverseZones(Cidr.parse("10.0.0.0/8")!), ["10.in-addr.arpa"]);
  // fd00:0010:0096:0000:0000:0000:0000::/112 is 28 nibbles, written least significant first.
  assert.deepEqual(reverseZones(Cidr.parse("fd00:10:96::/112")!), [
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa",
  ]);
});
