/**
 * bench/_cluster_lib.ts: which process of the test cluster is which role.
 *
 * @module
 */
import assert from "node:assert/strict";
import { roleOf } from "./_cluster_lib.ts";

Deno.test("roleOf: the kconnect processes, port-forward, the API server and the kubelet hop", () => {
  const deno = "/usr/bin/deno run --config /r/deno.json --frozen --cached-only -A";
  assert.equal(roleOf(`${deno} /r/main.ts up --foreground --kubeconfig /tmp/k`), "client");
  assert.equal(roleOf(`${deno} /r/main.ts traffic-manager --listen 127.0.0.1:8081`), "manager");
  // A manager the stand-in's kubelet runs lives under …/kubelet/: still the manager.
  assert.equal(
    roleOf("deno run --allow-net /tmp/c/kubelet/kconnect_tm/bundle/kconnect.js traffic-manager"),
    "manager",
  );
  assert.equal(roleOf(`${deno} /r/bench/pf_client.ts --listen 127.0.0.1:15201`), "pf");
  assert.equal(roleOf(`${deno} /r/tests/cluster/apiserver.ts --config /tmp/a.json`), "api");
  assert.equal(
    roleOf(`${deno} /r/tests/cluster/kubelet_server.ts --config /tmp/k.json`),
    "kubelet",
  );
  assert.equal(roleOf("iperf3 -s -B 10.244.0.12 -p 5201"), null);
  // A pod the stand-in's kubelet runs has its directory under …/kubelet/: not the kubelet.
  assert.equal(roleOf("python3 /tmp/c/kubelet/web/server.py"), null);
  assert.equal(roleOf(`${deno} /r/tests/cluster/delay_line.ts --iface laptop0 --delay 10`), null);
});
