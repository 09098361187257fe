/**
 * Tests of the test cluster itself (tests/cluster): namespaces and reachability, the API
 * server stand-in's answers, DNS, services, port-forward framing, and clean-up.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- prints the measured port-forward throughput
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { IPS, MANAGER_POD, SERVICE_IPS } from "./cluster/topology.ts";
import type { ProbeResult } from "./cluster/pf_probe.ts";
import { DENO_RUN } from "./_dataplane.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;
function includes(text: string, part: string): void {
  assert.ok(text.includes(part), `${JSON.stringify(part)} not in ${JSON.stringify(text)}`);
}

const PROBE = new URL("./cluster/pf_probe.ts", import.meta.url).pathname;
/** A stand-in traffic manager: an echo server on the manager's port (fixtures/echo_server.ts). */
const ECHO_MANAGER = [
  ...DENO_RUN,
  "--allow-net",
  new URL("./fixtures/echo_server.ts", import.meta.url).pathname,
  "127.0.0.1",
  "8081",
];

async function namespaces(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0])
    .filter(Boolean);
}

/** curl from the laptop against the API server: [http code, body]. */
async function api(
  cluster: TestCluster,
  path: string,
  extra: string[] = [],
  token: string | null = cluster.token,
): Promise<[number, string]> {
  const r = await cluster.laptop.exec([
    "curl",
    "-s",
    "--max-time",
    "10",
    "--cacert",
    cluster.caFile,
    ...(token ? ["-H", `Authorization: Bearer ${token}`] : []),
    "-w",
    "\n%{http_code}",
    ...extra,
    `${cluster.apiUrl}${path}`,
  ]);
  const i = r.stdout.lastIndexOf("\n");
  return [Number(r.stdout.slice(i + 1)), r.stdout.slice(0, i)];
}

function probeService(
  cluster: TestCluster,
  ip: string,
  dryRun: boolean,
): Promise<[number, string]> {
  return api(cluster, `/api/v1/namespaces/default/services${dryRun ? "?dryRun=All" : ""}`, [
    "-X",
    "POST",
    "-H",
    "Content-Type: application/json",
    "-d",
    JSON.stringify({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kconnect-probe" },
      spec: { clusterIP: ip, ports: [{ port: 443 }] },
    }),
  ]);
}

async function portForward(
  cluster: TestCluster,
  port: number,
  send: string,
  bulk?: { bytes: number; waitMs: number },
): Promise<ProbeResult> {
  const url = `wss://100.64.0.1:6443/api/v1/namespaces/${MANAGER_POD.namespace}/pods/` +
    `${MANAGER_POD.name}/portforward?ports=${port}`;
  const extra = bulk ? [String(bulk.waitMs), String(bulk.bytes)] : [];
  const r = await cluster.laptop.exec(
    [...DENO_RUN, "-A", PROBE, url, cluster.token, cluster.caFile, send]
      .concat(extra),
  );
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

Deno.test({
  name: "TestCluster (1.33) serves the API, the workloads, DNS and port-forward, then cleans up",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const before = await namespaces();
  let names: string[] = [];
  let dir = "";
  {
    await using cluster = await TestCluster.start({ managerCommand: ECHO_MANAGER });
    names = [cluster.laptop.name, cluster.apiserverNs.name, cluster.clusterNs.name];
    dir = cluster.dir;

    await t.step("/version answers with the token and the test CA", async () => {
      const [code, body] = await api(cluster, "/version");
      assert.deepEqual(code, 200);
      assert.deepEqual(JSON.parse(body).gitVersion, "v1.33.1");
    });

    await t.step("the manager pod is listed by label", async () => {
      const [code, body] = await api(
        cluster,
        `/api/v1/namespaces/kconnect/pods?labelSelector=app.kubernetes.io/name%3Dkconnect-traffic-manager&fieldSelector=status.phase%3DRunning`,
      );
      assert.deepEqual(code, 200);
      const list = JSON.parse(body);
      assert.deepEqual(list.kind, "PodList");
      assert.deepEqual(list.items.map((p: { metadata: { name: string } }) => p.metadata.name), [
        MANAGER_POD.name,
      ]);
      assert.deepEqual(list.items[0].status.podIP, IPS.manager);
      assert.deepEqual(list.items[0].spec.containers[0].ports[0].name, "tunnel");
    });

    await t.step("a bad or missing token gets the 401 Status", async () => {
      const expected = {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "Unauthorized",
        reason: "Unauthorized",
        code: 401,
      };
      for (const token of ["bogus", null]) {
        const [code, body] = await api(cluster, "/api/v1/pods", [], token);
        assert.deepEqual(code, 401);
        assert.deepEqual(JSON.parse(body), expected);
      }
    });

    await t.step("client certificate and exec plugin users are accepted", async () => {
      const [code] = await api(cluster, "/api/v1/namespaces", [
        "--cert",
        cluster.pki.clientCertFile,
        "--key",
        cluster.pki.clientKeyFile,
      ], null);
      assert.deepEqual(code, 200);
      const kc = await Deno.readTextFile(cluster.kubeconfig);
      includes(kc, "current-context: test");
      includes(kc, "exec_credential.ts");
      const exec = await cluster.laptop.exec(
        [
          ...DENO_RUN,
          "--allow-env",
          `${new URL("./cluster/exec_credential.ts", import.meta.url).pathname}`,
        ],
        { env: { KCONNECT_TEST_EXEC_TOKEN: cluster.execToken } },
      );
      const cred = JSON.parse(exec.stdout);
      assert.deepEqual(cred.kind, "ExecCredential");
      const [code2] = await api(cluster, "/api/v1/namespaces", [], cred.status.token);
      assert.deepEqual(code2, 200);
    });

    await t.step("the laptop cannot reach services or pods directly", async () => {
      for (const ip of [SERVICE_IPS.web, IPS.web]) {
        const r = await cluster.laptop.exec(
          ["curl", "-s", "--max-time", "2", `http://${ip}/`],
          { check: false },
        );
        assert.ok(r.code !== 0, `laptop reached ${ip}`);
      }
    });

    await t.step("inside the cluster: web via service and pod IP, file download", async () => {
      await Deno.writeTextFile(`${cluster.webDir}/file.txt`, "payload\n");
      const svc = await cluster.clusterNs.exec([
        "curl",
        "-sf",
        "--max-time",
        "5",
        "http://10.96.0.20/",
      ]);
      assert.deepEqual(svc.stdout, "hello from web\n");
      const pod = await cluster.clusterNs.exec([
        "curl",
        "-sf",
        "--max-time",
        "5",
        "http://10.244.0.10:8080/file.txt",
      ]);
      assert.deepEqual(pod.stdout, "payload\n");
    });

    await t.step("cluster DNS answers, with search list, SRV, PTR and NXDOMAIN+SOA", async () => {
      const dig = async (...args: string[]) =>
        (await cluster.clusterNs.exec(["dig", "+time=2", "+tries=1", ...args])).stdout.trim();
      assert.deepEqual(
        await dig("+short", "@10.96.0.10", "web.default.svc.cluster.local"),
        "10.96.0.20",
      );
      assert.deepEqual(await dig("+short", "+search", "web.default"), "10.96.0.20");
      assert.deepEqual(
        (await dig("+short", "@10.96.0.10", "db.default.svc.cluster.local")).split("\n").sort(),
        [IPS.db0, IPS.db1],
      );
      assert.deepEqual(
        await dig("+short", "@10.96.0.10", "SRV", "_http._tcp.web.default.svc.cluster.local"),
        "0 100 80 web.default.svc.cluster.local.",
      );
      assert.deepEqual(
        await dig("+short", "@10.96.0.10", "-x", "10.96.0.21"),
        "redis.default.svc.cluster.local.",
      );
      const nx = await dig("@10.96.0.10", "nope.default.svc.cluster.local");
      assert.match(nx, /status: NXDOMAIN/);
      assert.match(nx, /cluster\.local\.\s+\d+\s+IN\s+SOA\s+ns\.dns\.cluster\.local\./);
    });

    await t.step("redis, TCP and UDP echo, headless db answer", async () => {
      const ping = await cluster.clusterNs.exec(["redis-cli", "-h", "10.96.0.21", "PING"]);
      assert.deepEqual(ping.stdout.trim(), "PONG");
      const udp = await cluster.clusterNs.exec(["socat", "-T2", "-", "UDP:10.96.0.22:7"], {
        stdin: "ping-udp\n",
      });
      assert.deepEqual(udp.stdout, "ping-udp\n");
      const tcp = await cluster.clusterNs.exec(["socat", "-T2", "-", "TCP:10.96.0.22:7"], {
        stdin: "ping-tcp\n",
      });
      assert.deepEqual(tcp.stdout, "ping-tcp\n");
      const db = await cluster.clusterNs.exec(["socat", "-T2", "-", `TCP:${IPS.db1}:5432`]);
      assert.deepEqual(db.stdout, "db-1\n");
    });

    await t.step("the ServiceCIDR API exists on 1.33", async () => {
      const [code, body] = await api(cluster, "/apis/networking.k8s.io/v1/servicecidrs");
      assert.deepEqual(code, 200);
      const list = JSON.parse(body);
      assert.deepEqual(list.kind, "ServiceCIDRList");
      assert.deepEqual(list.items[0].spec.cidrs, ["10.96.0.0/12"]);
    });

    await t.step("an invalid ClusterIP gets 422: range on dry run, none without", async () => {
      const [code, body] = await probeService(cluster, "1.1.1.1", true);
      assert.deepEqual(code, 422);
      const status = JSON.parse(body);
      assert.deepEqual(status.reason, "Invalid");
      assert.deepEqual(
        status.message,
        'Service "kconnect-probe" is invalid: spec.clusterIPs: Invalid value: []string{"1.1.1.1"}: ' +
          "failed to allocate IP 1.1.1.1: the provided IP (1.1.1.1) is not in the valid range. " +
          "The range of valid IPs is 10.96.0.0/12",
      );
      assert.deepEqual(status.details.causes[0].field, "spec.clusterIPs");
      const [code2, body2] = await probeService(cluster, "1.1.1.1", false);
      assert.deepEqual(code2, 422);
      includes(
        JSON.parse(body2).message,
        "failed to allocate IP 1.1.1.1: the provided network does not match the current range",
      );
    });

    await t.step("port-forward to the manager echoes with v4 channel framing", async () => {
      const r = await portForward(cluster, 8081, "hello manager");
      assert.deepEqual(r.protocol, "v4.channel.k8s.io");
      assert.deepEqual([r.messages[0].channel, r.messages[0].bytes], [0, [0x91, 0x1f]]);
      assert.deepEqual(r.messages[1].channel, 1);
      assert.deepEqual(r.messages[1].bytes, [0x91, 0x1f]);
      const echoed = r.messages.slice(2).filter((m) => m.channel === 0).map((m) => m.text).join("");
      assert.deepEqual(echoed, "hello manager");
    });

    await t.step("four concurrent port-forwards each echo 64 MB intact", async () => {
      const bytes = 64 * 1024 * 1024;
      const t0 = performance.now();
      const results = await Promise.all(
        [0, 1, 2, 3].map(() => portForward(cluster, 8081, "", { bytes, waitMs: 60_000 })),
      );
      const seconds = (performance.now() - t0) / 1000;
      for (const r of results) {
        assert.equal(r.sentBytes, bytes, JSON.stringify(r).slice(0, 500));
        assert.equal(r.echoedBytes, bytes, JSON.stringify(r).slice(0, 500));
        // The probe closes once everything came back; the server answers with its own Close
        // of status 1000 (x/net/websocket's Conn.Close), not an echo of the probe's.
        assert.equal(r.closeCode, 1000);
      }
      console.log(
        `    4 × 64 MB echoed in ${seconds.toFixed(1)} s ` +
          `(${(4 * 2 * bytes / 1e6 / seconds).toFixed(0)} MB/s through the API server, both ways)`,
      );
    });

    await t.step("port-forward to a closed port reports the kubelet error and closes", async () => {
      const r = await portForward(cluster, 9, "x");
      assert.deepEqual(r.messages[0].bytes, [9, 0]);
      const err = r.messages.find((m) => m.channel === 1 && m.text.length > 2);
      assert.ok(err, `no error message in ${JSON.stringify(r)}`);
      assert.match(
        err.text,
        /^error forwarding port 9 to pod [0-9a-f]{64}, uid : failed to execute portforward in network namespace "[^"]+": failed to connect to localhost:9 inside namespace "[0-9a-f]{64}", IPv4: dial tcp4 127\.0\.0\.1:9: connect: connection refused /,
      );
      assert.deepEqual(r.closeCode, 1000);
    });
  }
  const after = await namespaces();
  for (const n of names) assert.ok(!after.includes(n), `namespace ${n} left behind`);
  assert.deepEqual(after.filter((n) => !before.includes(n)), []);
  for (const n of names) {
    await assert.rejects(() => Deno.stat(`/etc/netns/${n}`));
  }
  await assert.rejects(() => Deno.stat(dir));
});

Deno.test({
  name: "TestCluster (1.29, RBAC denials, no manager) answers like that cluster",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await TestCluster.start({
    k8sVersion: "1.29",
    denyNodes: true,
    denyServiceCreate: true,
    manager: false,
  });
  const [code, body] = await api(cluster, "/apis/networking.k8s.io/v1/servicecidrs");
  assert.deepEqual(code, 404);
  assert.deepEqual(
    JSON.parse(body).message,
    "the server could not find the requested resource",
  );
  const [code2, body2] = await api(cluster, "/apis/networking.k8s.io/v1beta1/servicecidrs");
  assert.deepEqual([code2, body2], [404, "404 page not found\n"]);
  const [code3, body3] = await api(cluster, "/api/v1/nodes");
  assert.deepEqual(code3, 403);
  assert.deepEqual(
    JSON.parse(body3).message,
    'nodes is forbidden: User "kubernetes-admin" cannot list resource "nodes" in API group "" at the cluster scope',
  );
  const [code4, body4] = await probeService(cluster, "1.1.1.1", true);
  assert.deepEqual(code4, 403);
  assert.deepEqual(
    JSON.parse(body4).message,
    'services is forbidden: User "kubernetes-admin" cannot create resource "services" in API group "" in the namespace "default"',
  );
  const [, pods] = await api(
    cluster,
    "/api/v1/pods?labelSelector=app.kubernetes.io/name%3Dkconnect-traffic-manager",
  );
  assert.deepEqual(JSON.parse(pods).items, []);
  const [, version] = await api(cluster, "/version");
  assert.deepEqual(JSON.parse(version).minor, "29");

  // Subprotocol negotiation as x/net/websocket does it: first supported offer, lists without
  // spaces are fine, nothing supported is 403.
  const handshake = async (protocols: string) => {
    const r = await cluster.laptop.exec([
      "curl",
      "-s",
      "-i",
      "--http1.1",
      "--max-time",
      "1",
      "--cacert",
      cluster.caFile,
      "-H",
      `Authorization: Bearer ${cluster.token}`,
      "-H",
      "Connection: Upgrade",
      "-H",
      "Upgrade: websocket",
      "-H",
      "Sec-WebSocket-Version: 13",
      "-H",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "-H",
      `Sec-WebSocket-Protocol: ${protocols}`,
      `${cluster.apiUrl}/api/v1/namespaces/default/pods/web-6b7f9c8d4-h2x9k/portforward?ports=8080`,
    ], { check: false });
    return r.stdout;
  };
  const ok = await handshake("foo.k8s.io,v4.channel.k8s.io");
  assert.match(ok, /^HTTP\/1\.1 101 /);
  assert.match(ok, /Sec-WebSocket-Protocol: v4\.channel\.k8s\.io\r\n/i);
  assert.match(await handshake("channel.k8s.io"), /^HTTP\/1\.1 403 Forbidden/);

  // The API server can be stopped and started again.
  await cluster.stopApiServer();
  const down = await cluster.laptop.exec(
    ["curl", "-s", "--max-time", "2", "--cacert", cluster.caFile, `${cluster.apiUrl}/version`],
    { check: false },
  );
  assert.notEqual(down.code, 0);
  await cluster.startApiServer();
  assert.equal((await api(cluster, "/version"))[0], 200);
  await cluster.restartApiServer();
  assert.equal((await api(cluster, "/version"))[0], 200);
});

Deno.test({
  name: "TestCluster.start() fails with the child's output and leaves nothing behind",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const before = await namespaces();
  let err: unknown = null;
  try {
    await TestCluster.start({ managerCommand: ["sh", "-c", "echo manager broke >&2; exit 3"] });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, "start() did not fail");
  assert.match((err as Error).message, /traffic-manager .* exited with code 3/);
  includes((err as Error).message, "manager broke");
  assert.deepEqual((await namespaces()).filter((n) => !before.includes(n)), []);
});
