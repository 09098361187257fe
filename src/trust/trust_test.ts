/** The validators and the policy for what the traffic manager announces (review C1, H1). */
import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import {
  checkInfo,
  clusterCidrProblem,
  clusterDomainProblem,
  describeRefusal,
  dnsLabelProblem,
  InfoGate,
  isDnsName,
  normalizeDnsName,
  TUN_NAME,
} from "./trust.ts";

const c = (t: string) => Cidr.parse(t)!;
const NONE = { clusterDomains: [], alsoProxy: [] };
const INFO: ClusterInfo = {
  type: "info",
  managerVersion: "0.1.0",
  clusterDomain: "cluster.local",
  dnsServer: "10.96.0.10",
  serviceCidrs: [{ cidr: "10.96.0.0/12", source: "ServiceCIDR kubernetes" }],
  podCidrs: [{ cidr: "10.244.0.0/16", source: "podCIDRs of 3 nodes" }],
  namespaces: ["default", "shop"],
  warnings: [],
};

Deno.test("DNS labels: RFC 1123, lower case, no dots, 63 at most", () => {
  for (const ok of ["default", "kube-system", "a", "0abc", "a".repeat(63)]) {
    assert.equal(dnsLabelProblem(ok), null, ok);
  }
  for (
    const bad of ["", "com.", "../x", "a/b", "a\nb", "-a", "a-", "A", "a_b", "a".repeat(64), 7]
  ) {
    assert.notEqual(dnsLabelProblem(bad), null, JSON.stringify(bad));
  }
});

Deno.test("DNS names: one trailing dot and upper case are normalised, nothing else", () => {
  assert.deepEqual(normalizeDnsName("Cluster.Local."), { name: "cluster.local" });
  for (
    const bad of ["", ".", "..", "a..b", ".a", "a.b..", "../x", "a\nb", "a b", "x".repeat(254)]
  ) {
    assert.ok("problem" in normalizeDnsName(bad), JSON.stringify(bad));
  }
  assert.ok(isDnsName("0.244.10.in-addr.arpa"));
  assert.ok(!isDnsName("Cluster.local"), "normal form only");
});

Deno.test("cluster domain policy: no public TLD, no bare local-use name, unless the user named it", () => {
  assert.equal(clusterDomainProblem("cluster.local", []), null);
  assert.equal(clusterDomainProblem("k8s.corp", []), null);
  for (
    const bad of ["com", "example.com", "evil.co.uk", "dev", "local", "localhost", "in-addr.arpa"]
  ) {
    assert.notEqual(clusterDomainProblem(bad, []), null, bad);
  }
  assert.equal(clusterDomainProblem("k8s.example.com", ["K8s.Example.com."]), null);
  assert.notEqual(clusterDomainProblem("example.com", ["k8s.example.com"]), null);
  assert.match(clusterDomainProblem("example.com", [])!, /"clusterDomain": "example\.com"/);
});

Deno.test("cluster prefix policy: private and CGNAT ranges, ULA, /8 and /48 at most, or inside --also-proxy", () => {
  for (
    const ok of [
      "10.96.0.0/12",
      "10.0.0.0/8",
      "172.16.0.0/12",
      "192.168.5.0/24",
      "100.64.0.0/10",
      "fd00:10:96::/112",
      "fd12:3456:789a::/48",
    ]
  ) {
    assert.equal(clusterCidrProblem(c(ok), []), null, ok);
  }
  for (
    const bad of [
      "0.0.0.0/1",
      "128.0.0.0/2",
      "1.1.1.1/32",
      "8.0.0.0/8",
      "0.0.0.0/0",
      "198.18.0.0/15",
      "2001:db8::/32",
      "fd00::/8",
      "fc00::/7",
      "::/0",
      "::ffff:10.0.0.0/104",
    ]
  ) {
    assert.notEqual(clusterCidrProblem(c(bad), []), null, bad);
  }
  assert.equal(clusterCidrProblem(c("203.0.113.0/25"), [c("203.0.113.0/24")]), null);
  assert.equal(clusterCidrProblem(c("2001:db8:1::/64"), [c("2001:db8::/32")]), null);
  assert.match(
    describeRefusal({
      item: "pod CIDR 0.0.0.0/1",
      from: "the traffic manager",
      reason: clusterCidrProblem(c("0.0.0.0/1"), [])!,
    }),
    /^refused pod CIDR 0\.0\.0\.0\/1 from the traffic manager: outside private ranges .*; add it with --also-proxy 0\.0\.0\.0\/1 to allow$/,
  );
});

Deno.test("TUN names never start with '-' and fit Linux's 15 bytes", () => {
  for (const ok of ["kconnect0", "kc0", "k_1"]) assert.ok(TUN_NAME.test(ok), ok);
  for (const bad of ["-x", "--help", "", "eth0 ", "a/b", "a".repeat(16), "Kc0", "0kc"]) {
    assert.ok(!TUN_NAME.test(bad), bad);
  }
});

Deno.test("checkInfo with the policy keeps private prefixes and refuses the rest, with reasons", () => {
  const { info, refused } = checkInfo({
    ...INFO,
    serviceCidrs: [{ cidr: "10.96.0.0/12", source: "s" }, { cidr: "0.0.0.0/1", source: "s" }],
    podCidrs: [{ cidr: "128.0.0.0/2", source: "p" }, { cidr: "1.1.1.1/32", source: "p" }],
  }, NONE);
  assert.deepEqual(info.serviceCidrs.map((x) => x.cidr), ["10.96.0.0/12"]);
  assert.deepEqual(info.podCidrs, []);
  assert.deepEqual(refused.map((r) => r.item), [
    "service CIDR 0.0.0.0/1",
    "pod CIDR 128.0.0.0/2",
    "pod CIDR 1.1.1.1/32",
  ]);
  assert.ok(refused.every((r) => /--also-proxy/.test(r.reason)));
});

Deno.test("InfoGate: later infos only narrow; a wider prefix, a new domain or a new routing domain waits for a new up", () => {
  const gate = new InfoGate(NONE);
  gate.first(INFO);
  // Narrower and the same: accepted.
  const narrow = gate.update({
    ...INFO,
    podCidrs: [{ cidr: "10.244.1.0/24", source: "p" }],
  });
  assert.deepEqual(narrow.info.podCidrs.map((x) => x.cidr), ["10.244.1.0/24"]);
  assert.deepEqual(narrow.refused, []);
  // Wider (still private), a new prefix, another domain, a new namespace.
  const wide = gate.update({
    ...INFO,
    clusterDomain: "other.local",
    serviceCidrs: [{ cidr: "10.0.0.0/8", source: "s" }],
    podCidrs: [{ cidr: "10.244.0.0/16", source: "p" }, { cidr: "192.168.0.0/16", source: "p" }],
    namespaces: ["default", "shop", "corp-tools"],
  });
  assert.equal(wide.info.clusterDomain, "cluster.local");
  assert.deepEqual(wide.info.serviceCidrs, []);
  assert.deepEqual(wide.info.podCidrs.map((x) => x.cidr), ["10.244.0.0/16"]);
  assert.deepEqual(wide.refused.map((r) => r.item), [
    'cluster domain "other.local"',
    "service CIDR 10.0.0.0/8",
    "pod CIDR 192.168.0.0/16",
    'routing domain for namespace "corp-tools"',
  ]);
  assert.ok(wide.refused.every((r) => /new kconnect up/.test(r.reason)));
  // The new namespace still resolves under .svc, but is no routing domain.
  assert.ok(wide.info.namespaces.includes("corp-tools"));
  assert.deepEqual([...gate.routedNamespaces()].sort(), ["default", "shop"]);
});

Deno.test("InfoGate: what the user routes anyway (--also-proxy) may appear later", () => {
  const gate = new InfoGate({ clusterDomains: [], alsoProxy: [c("203.0.113.0/24")] });
  gate.first(INFO);
  const next = gate.update({
    ...INFO,
    podCidrs: [...INFO.podCidrs, { cidr: "203.0.113.0/26", source: "p" }],
  });
  assert.deepEqual(next.info.podCidrs.map((x) => x.cidr), ["10.244.0.0/16", "203.0.113.0/26"]);
  assert.deepEqual(next.refused, []);
});
