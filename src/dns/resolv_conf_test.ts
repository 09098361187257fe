import assert from "node:assert/strict";
import { clusterDomainOf, parseResolvConf } from "./resolv_conf.ts";

Deno.test("parseResolvConf() reads a pod's resolv.conf and clusterDomainOf() finds its domain", () => {
  const conf = parseResolvConf(
    "# generated\nsearch kconnect.svc.corp.example svc.corp.example corp.example\n" +
      "nameserver 10.96.0.10\nnameserver fd00::a ; second\noptions ndots:5 timeout:2\n",
  );
  assert.deepEqual(conf.nameservers, ["10.96.0.10", "fd00::a"]);
  assert.equal(conf.ndots, 5);
  assert.equal(clusterDomainOf(conf), "corp.example");
});

Deno.test("clusterDomainOf() falls back to the namespace entry, then to cluster.local", () => {
  assert.equal(clusterDomainOf(parseResolvConf("search web.svc.k8s.internal\n")), "k8s.internal");
  assert.equal(clusterDomainOf(parseResolvConf("search example.com\n")), "cluster.local");
  assert.equal(clusterDomainOf(parseResolvConf("")), "cluster.local");
});
