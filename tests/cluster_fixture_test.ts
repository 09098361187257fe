/**
 * Tests of the test cluster itself (tests/cluster): namespaces and reachability, the API
 * server stand-in's answers, DNS, services, port-forward framing, and clean-up.
 *
 * What the stand-in says on the wire is pinned to the Kubernetes source, not to memory: each
 * step names the file (kubernetes/kubernetes, or the staging repository it is published from,
 * at the played version: k8s.io/apimachinery and k8s.io/apiserver `kubernetes-1.33.13`) and the
 * function whose output its expectation copies. Steps about the fixture's own network,
 * workloads and DNS server (dnsmasq standing in for CoreDNS) say so; they are not Kubernetes
 * wire formats.
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

    // k8s.io/apiserver pkg/server/routes/version.go, Version.Install (`/version`, the
    // k8s.io/apimachinery pkg/version/types.go Info JSON).
    await t.step("/version answers with the token and the test CA", async () => {
      const [code, body] = await api(cluster, "/version");
      assert.deepEqual(code, 200);
      assert.deepEqual(JSON.parse(body).gitVersion, "v1.33.1");
    });

    // k8s.io/apimachinery pkg/labels/selector.go Parse and pkg/fields/selector.go
    // ParseSelector; the fields a pod can be selected by: kubernetes/kubernetes
    // pkg/registry/core/pod/strategy.go ToSelectableFields (status.phase among them).
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

    // k8s.io/apiserver pkg/endpoints/filters/authentication.go Unauthorized:
    // apierrors.NewUnauthorized("Unauthorized") (k8s.io/apimachinery pkg/api/errors/errors.go;
    // no details, so no "details" key in the JSON).
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

    // k8s.io/apiserver pkg/authentication/request/x509/x509.go CommonNameUserConversion (user
    // from CN, groups from O); ExecCredential: k8s.io/client-go
    // pkg/apis/clientauthentication/v1/types.go.
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

    // The fixture's own network isolation; no Kubernetes wire format.
    await t.step("the laptop cannot reach services or pods directly", async () => {
      for (const ip of [SERVICE_IPS.web, IPS.web]) {
        const r = await cluster.laptop.exec(
          ["curl", "-s", "--max-time", "2", `http://${ip}/`],
          { check: false },
        );
        assert.ok(r.code !== 0, `laptop reached ${ip}`);
      }
    });

    // The fixture's workloads and service NAT; no Kubernetes wire format.
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

    // dnsmasq standing in for CoreDNS, with the record shapes of the cluster DNS specification
    // (kubernetes/dns docs/specification.md); not pinned to CoreDNS's source here.
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

    // The fixture's workloads; no Kubernetes wire format.
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

    // networking.k8s.io/v1 ServiceCIDR (k8s.io/api networking/v1/types.go, v1 since 1.33); the
    // default one: kubernetes/kubernetes pkg/controlplane/controller/defaultservicecidr/
    // default_servicecidr_controller.go (DefaultServiceCIDRName "kubernetes", sync: spec.cidrs
    // from --service-cluster-ip-range); its finalizer and Ready condition:
    // pkg/controller/servicecidrs/servicecidrs_controller.go, sync (message "Kubernetes Service
    // CIDR is ready", no reason).
    await t.step("the ServiceCIDR API exists on 1.33", async () => {
      const [code, body] = await api(cluster, "/apis/networking.k8s.io/v1/servicecidrs");
      assert.deepEqual(code, 200);
      const list = JSON.parse(body);
      assert.deepEqual(list.kind, "ServiceCIDRList");
      assert.deepEqual(list.items.length, 1);
      const cidr = list.items[0];
      assert.deepEqual(cidr.metadata.name, "kubernetes");
      assert.deepEqual(cidr.metadata.finalizers, ["networking.k8s.io/service-cidr-finalizer"]);
      assert.deepEqual(cidr.spec.cidrs, ["10.96.0.0/12"]);
      const { lastTransitionTime: _, ...ready } = cidr.status.conditions[0];
      assert.deepEqual(ready, {
        type: "Ready",
        status: "True",
        reason: "",
        message: "Kubernetes Service CIDR is ready",
      });
    });

    // kubernetes/kubernetes pkg/registry/core/service/storage/alloc.go allocIPs:
    // field.Invalid(spec.clusterIPs, ClusterIPs, "failed to allocate IP %v: %v") in
    // apierrors.NewInvalid(Kind("Service"), name, …) (k8s.io/apimachinery pkg/api/errors/
    // errors.go; the value printed by pkg/util/validation/field/errors.go ErrorBody with %#v).
    // Dry run: MetaAllocator.DryRun() (pkg/registry/core/service/ipallocator/cidrallocator.go)
    // is one allocator's dryRunAllocator, whose allocateService (ipallocator.go) checks only
    // that range: ErrNotInRange (interfaces.go). No dry run: MetaAllocator.AllocateService,
    // getAllocator finds no ServiceCIDR holding the address (pkg/api/servicecidr prefixContainsIP
    // leaves out the network and broadcast addresses): ErrMismatchedNetwork.
    await t.step("an invalid ClusterIP gets 422: range on dry run, none without", async () => {
      const invalid = (ip: string, why: string) => ({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `Service "kconnect-probe" is invalid: spec.clusterIPs: Invalid value: ` +
          `[]string{"${ip}"}: failed to allocate IP ${ip}: ${why}`,
        reason: "Invalid",
        details: {
          name: "kconnect-probe",
          kind: "Service",
          causes: [{
            reason: "FieldValueInvalid",
            message: `Invalid value: []string{"${ip}"}: failed to allocate IP ${ip}: ${why}`,
            field: "spec.clusterIPs",
          }],
        },
        code: 422,
      });
      const notInRange = (ip: string) =>
        `the provided IP (${ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/12`;
      const mismatched = "the provided network does not match the current range";
      for (
        const [ip, dryRun, why] of [
          ["1.1.1.1", true, notInRange("1.1.1.1")],
          ["1.1.1.1", false, mismatched],
          // The network address of the ServiceCIDR is in neither allocator's range.
          ["10.96.0.0", true, notInRange("10.96.0.0")],
          ["10.96.0.0", false, mismatched],
        ] as const
      ) {
        const [code, body] = await probeService(cluster, ip, dryRun);
        assert.deepEqual([code, JSON.parse(body)], [422, invalid(ip, why)], `${ip} ${dryRun}`);
      }
    });

    // kubernetes/kubernetes staging/src/k8s.io/kubelet/pkg/cri/streaming/portforward/
    // websocket.go handleWebSocketStreams: data channel 0 and error channel 1 for the first
    // port, each opened with the port as binary.LittleEndian.PutUint16 (8081 = 0x1f91, so
    // [0x91, 0x1f]); staging/src/k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go
    // Conn.write: every message is the channel byte and the data.
    await t.step("port-forward to the manager echoes with v4 channel framing", async () => {
      const r = await portForward(cluster, 8081, "hello manager");
      assert.deepEqual(r.protocol, "v4.channel.k8s.io");
      assert.deepEqual([r.messages[0].channel, r.messages[0].bytes], [0, [0x91, 0x1f]]);
      assert.deepEqual(r.messages[1].channel, 1);
      assert.deepEqual(r.messages[1].bytes, [0x91, 0x1f]);
      const echoed = r.messages.slice(2).filter((m) => m.channel === 0).map((m) => m.text).join("");
      assert.deepEqual(echoed, "hello manager");
    });

    // wsstream conn.go Conn.handle (empty messages skipped: the probe's nudges),
    // websocketChannel.DataFromSocket (an io.Pipe, so the kubelet reads on only once the pod
    // connection took the data); the end: vendor/golang.org/x/net/websocket hybi.go
    // hybiFrameHandler.HandleFrame (a Close is not echoed) and websocket.go Conn.Close (Close
    // with closeStatusNormal, 1000).
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

    // websocket.go websocketStreamHandler.portForward: "error forwarding port %d to pod %s, uid
    // %v: %v" on the error stream; the pod is the sandbox ID and the uid empty
    // (staging/src/k8s.io/kubelet/pkg/cri/streaming/server.go servePortForward); the inner
    // text is containerd's (internal/cri/server/sandbox_portforward_linux.go portForward:
    // "failed to execute portforward in network namespace %q: %w", "failed to connect to
    // localhost:%d inside namespace %q, IPv4: %v IPv6 %v "); then handleWebSocketStreams'
    // deferred conn.Close(): Close 1000.
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

// The Status bodies, the plain 404 and the handshake refusal of a 1.29 cluster; sources at each
// check below.
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
  // A served group/version without the resource: go-restful's 404 through k8s.io/apiserver
  // pkg/server/handler.go serviceErrorHandler, apierrors.NewGenericServerResponse(404, "",
  // GroupResource{}, "", msg, 0, false) (k8s.io/apimachinery pkg/api/errors/errors.go): its
  // message, reason NotFound and empty details.
  const [code, body] = await api(cluster, "/apis/networking.k8s.io/v1/servicecidrs");
  assert.deepEqual([code, JSON.parse(body)], [404, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "the server could not find the requested resource",
    reason: "NotFound",
    details: {},
    code: 404,
  }]);
  // A group/version nobody serves: k8s.io/apiserver pkg/util/notfoundhandler
  // not_found_handler.go ServeHTTP, http.NotFound.
  const [code2, body2] = await api(cluster, "/apis/networking.k8s.io/v1beta1/servicecidrs");
  assert.deepEqual([code2, body2], [404, "404 page not found\n"]);
  // k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go ForbiddenStatusError and
  // forbiddenMessage (RBAC adds no reason), then apierrors.NewForbidden: "<resource> is
  // forbidden: …" without a name, details with the resource as kind.
  const forbidden = (message: string, kind: string) => ({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: "Forbidden",
    details: { kind },
    code: 403,
  });
  const [code3, body3] = await api(cluster, "/api/v1/nodes");
  assert.deepEqual([code3, JSON.parse(body3)], [
    403,
    forbidden(
      'nodes is forbidden: User "kubernetes-admin" cannot list resource "nodes" in API group "" at the cluster scope',
      "nodes",
    ),
  ]);
  const [code4, body4] = await probeService(cluster, "1.1.1.1", true);
  assert.deepEqual([code4, JSON.parse(body4)], [
    403,
    forbidden(
      'services is forbidden: User "kubernetes-admin" cannot create resource "services" in API group "" in the namespace "default"',
      "services",
    ),
  ]);
  // A missing object: apierrors.NewNotFound, `<resource> "<name>" not found`.
  const [code5, body5] = await api(cluster, "/api/v1/namespaces/default/pods/nope");
  assert.deepEqual([code5, JSON.parse(body5)], [404, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: 'pods "nope" not found',
    reason: "NotFound",
    details: { name: "nope", kind: "pods" },
    code: 404,
  }]);
  const [, pods] = await api(
    cluster,
    "/api/v1/pods?labelSelector=app.kubernetes.io/name%3Dkconnect-traffic-manager",
  );
  assert.deepEqual(JSON.parse(pods).items, []);
  const [, version] = await api(cluster, "/version");
  assert.deepEqual(JSON.parse(version).minor, "29");

  // Subprotocol negotiation: vendor/golang.org/x/net/websocket hybi.go
  // hybiServerHandshaker.ReadHandshake splits the offer on commas and trims; wsstream conn.go
  // handshake takes the first offer it supports; when none is, server.go newServerConn writes
  // a bare "HTTP/1.1 403 Forbidden" and an empty line.
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
  assert.deepEqual(await handshake("channel.k8s.io"), "HTTP/1.1 403 Forbidden\r\n\r\n");

  // The API server can be stopped and started again (the fixture's own lifecycle).
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

// The fixture's own start-up and clean-up; no Kubernetes wire format.
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
