/**
 * The second hop of the stand-in's port-forward, as in a real cluster: the API server proxies the
 * upgraded connection over TLS to the node's kubelet (`kubelet_server.ts`), which terminates the
 * WebSocket and dials the pod in-process. Each step names the source its expectation copies
 * (kubernetes/kubernetes unless said otherwise).
 *
 * @module
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster.ts";
import { API_LAPTOP_IP, API_PORT, NODE_IP } from "./topology.ts";
import { KUBELET_PORT, SANDBOX_HEADER } from "./kubelet_server.ts";
import { DENO_RUN } from "../_dataplane.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;
const STALL = new URL("./pf_stall.ts", import.meta.url).pathname;

const SINK = { name: "sink-0", ip: "10.244.0.50", port: 9000 };
const SOURCE = { name: "source-0", ip: "10.244.0.51", port: 9001 };
/** What a stalled path may hold, all hops' socket buffers and high-water marks together. */
const STALL_BOUND = 64 << 20;

/** A pod that accepts connections and never reads them. */
const SINK_PY = `
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${SINK.ip}", ${SINK.port}))
s.listen(16)
held = []
while True:
    held.append(s.accept()[0])
`;

/** A pod that sends zeros as fast as each connection takes them (at most 512 MiB) and counts. */
const SOURCE_PY = `
import os, socket, sys, threading
out = sys.argv[1]
def note(n):
    with open(out + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(out + ".tmp", out)
def serve(c):
    sent, chunk = 0, bytes(65536)
    try:
        while sent < (512 << 20):
            c.sendall(chunk)
            sent += len(chunk)
            if sent % (1 << 20) == 0:
                note(sent)
    except OSError:
        pass
    note(sent)
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${SOURCE.ip}", ${SOURCE.port}))
s.listen(16)
while True:
    c = s.accept()[0]
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

function pod(name: string, ip: string | null) {
  return {
    name,
    namespace: "default",
    labels: { app: name },
    podIPs: ip ? [ip] : [],
    containers: [{ name: name.replace(/-0$/, "") }],
    ...(ip ? {} : { phase: "Pending" as const }),
  };
}

async function cmdline(pid: number): Promise<string> {
  return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").join(" ").trim();
}

/** Child processes of `pid` (all its threads). */
async function children(pid: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/children`).catch(() => "");
    out.push(...text.split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

Deno.test({
  name: "the kubelet stand-in: the second TLS hop, its own answers, and backpressure both ways",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const scratch = await Deno.makeTempDir({ prefix: "kc-kubelet-test-" });
  const sentFile = `${scratch}/source-sent`;
  try {
    await using cluster = await TestCluster.start({
      manager: false,
      apiServerLog: true,
      extraWorkloads: [
        {
          pod: pod(SINK.name, SINK.ip),
          command: ["python3", "-c", SINK_PY],
          waitFor: { port: SINK.port },
        },
        {
          pod: pod(SOURCE.name, SOURCE.ip),
          command: ["python3", "-c", SOURCE_PY, sentFile],
          waitFor: { port: SOURCE.port },
        },
        { pod: pod("pending-0", null) },
      ],
    });
    const { pki, kubeletPki } = cluster;
    const kubeletUrl = `https://${NODE_IP}:${KUBELET_PORT}`;
    const wsHeaders = [
      "-H",
      "Connection: Upgrade",
      "-H",
      "Upgrade: websocket",
      "-H",
      "Sec-WebSocket-Version: 13",
      "-H",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "-H",
      "Sec-WebSocket-Protocol: v4.channel.k8s.io",
    ];
    /** curl with the WebSocket headers: [status line, headers, body]. */
    const curl = async (
      ns: typeof cluster.laptop,
      url: string,
      extra: string[],
    ): Promise<{ status: number; head: string; body: string }> => {
      const r = await ns.exec(
        ["curl", "-s", "-i", "--http1.1", "--max-time", "2", ...wsHeaders, ...extra, url],
        { check: false },
      );
      const i = r.stdout.indexOf("\r\n\r\n");
      const head = i >= 0 ? r.stdout.slice(0, i) : r.stdout;
      return {
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: i >= 0 ? r.stdout.slice(i + 4) : "",
      };
    };
    const viaApi = (path: string, extra: string[] = []) =>
      curl(cluster.laptop, `${cluster.apiUrl}${path}`, [
        "--cacert",
        cluster.caFile,
        "-H",
        `Authorization: Bearer ${cluster.token}`,
        ...extra,
      ]);

    // The benchmarks tell the processes apart by command line (bench/vs_portforward.ts roleOf).
    await t.step("the kubelet is its own process in the node's namespace", async () => {
      const pid = cluster.kubeletProcess!.pid;
      assert.match(await cmdline(pid), /kubelet_server\.ts/);
      const ns = await new Deno.Command("ip", { args: ["netns", "identify", String(pid)] })
        .output();
      assert.equal(new TextDecoder().decode(ns.stdout).trim(), cluster.clusterNs.name);
    });

    // pkg/kubelet/server/server.go InstallAuthFilter: 401 "Unauthorized" without a user, 403
    // "Forbidden (user=…, verb=…, resource=…, subresource=…)" when not allowed; the path's
    // attributes: pkg/kubelet/server/auth.go GetRequestAttributes (nodes/proxy, GET = get).
    // Then getPortForward: NewV4Options (staging/src/k8s.io/kubelet/pkg/cri/streaming/
    // portforward/websocket.go) and GetPodByName ("pod does not exist").
    await t.step(
      "the kubelet serves TLS for the node IP and wants the API server's cert",
      async () => {
        const path = `/portForward/default/${SINK.name}?port=${SINK.port}`;
        const ca = ["--cacert", pki.caFile];
        const none = await curl(cluster.apiserverNs, `${kubeletUrl}${path}`, ca);
        assert.deepEqual([none.status, none.body], [401, "Unauthorized"]);
        const laptopCert = await curl(cluster.apiserverNs, `${kubeletUrl}${path}`, [
          ...ca,
          "--cert",
          pki.clientCertFile,
          "--key",
          pki.clientKeyFile,
        ]);
        assert.deepEqual([laptopCert.status, laptopCert.body], [
          403,
          "Forbidden (user=kconnect-cert-user, verb=get, resource=nodes, subresource=proxy)",
        ]);
        const apiCert = [
          ...ca,
          "--cert",
          kubeletPki.clientCertFile,
          "--key",
          kubeletPki.clientKeyFile,
        ];
        const unknown = await curl(cluster.apiserverNs, `${kubeletUrl}${path}`, apiCert);
        assert.deepEqual([unknown.status, unknown.body], [404, "pod does not exist"]);
        const noPort = await curl(
          cluster.apiserverNs,
          `${kubeletUrl}/portForward/default/${SINK.name}`,
          apiCert,
        );
        assert.deepEqual([noPort.status, noPort.body], [400, 'query parameter "port" is required']);
      },
    );

    // k8s.io/apiserver pkg/endpoints/handlers/rest.go ConnectResource (the options first, 400)
    // with k8s.io/apimachinery pkg/apis/meta/v1/conversion.go Convert_Slice_string_To_Slice_int32;
    // the rest is the kubelet's text, which UpgradeAwareHandler (k8s.io/apimachinery
    // pkg/util/proxy/upgradeaware.go) passes on as the kubelet wrote it, as it does the 101.
    await t.step(
      "the API server checks the ports, then proxies the kubelet's answers",
      async () => {
        const base = `/api/v1/namespaces/default/pods`;
        for (
          const [ports, why] of [
            ["abc", 'parsing "abc": invalid syntax'],
            ["80,", 'parsing "": invalid syntax'],
            ["70000", 'parsing "70000": value out of range'],
          ]
        ) {
          const r = await viaApi(`${base}/${SINK.name}/portforward?ports=${ports}`);
          assert.equal(r.status, 400, ports);
          assert.deepEqual(JSON.parse(r.body), {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: `cannot convert to []int32: strconv.ParseUint: ${why}`,
            reason: "BadRequest",
            code: 400,
          });
        }
        const noPort = await viaApi(`${base}/${SINK.name}/portforward`);
        assert.deepEqual([noPort.status, noPort.body], [400, 'query parameter "port" is required']);
        assert.doesNotMatch(noPort.head, /Audit-Id/i);
        const zero = await viaApi(`${base}/${SINK.name}/portforward?ports=0`);
        assert.deepEqual([zero.status, zero.body], [400, 'port "0" must be > 0']);
        // A client cannot name a sandbox for the kubelet: the API server drops its header.
        const forged = await viaApi(`${base}/pending-0/portforward?ports=80`, [
          "-H",
          `${SANDBOX_HEADER}: host=${SINK.ip}; netns=${cluster.clusterNs.name}`,
        ]);
        assert.deepEqual([forged.status, forged.body], [
          500,
          "rpc error: code = Unknown desc = sandbox container is not running",
        ]);
        const ok = await viaApi(`${base}/${SINK.name}/portforward?ports=${SINK.port}`);
        assert.equal(ok.status, 101);
        assert.match(ok.head, /\r\nSec-WebSocket-Protocol: v4\.channel\.k8s\.io/i);
        assert.doesNotMatch(ok.head, /Audit-Id/i);
      },
    );

    await t.step("the two hops log the same port-forward; no helper process runs", async () => {
      const url = `wss://${API_LAPTOP_IP}:${API_PORT}/api/v1/namespaces/default/pods/` +
        `${SOURCE.name}/portforward?ports=${SOURCE.port}`;
      const stall = cluster.laptop.exec([
        ...DENO_RUN,
        "-A",
        STALL,
        API_LAPTOP_IP,
        String(API_PORT),
        new URL(url).pathname + new URL(url).search,
        cluster.token,
        cluster.caFile,
        "download",
        "2",
      ]);
      await cluster.apiServerLog.waitFor(
        new RegExp(
          `GET /api/v1/namespaces/default/pods/${SOURCE.name}/portforward\\?ports=` +
            `${SOURCE.port} 101 kubernetes-admin`,
        ),
        10_000,
      );
      await cluster.kubeletLog.waitFor(
        new RegExp(
          `GET /portForward/default/${SOURCE.name}\\?port=${SOURCE.port} 101 ` +
            kubeletPki.clientUser,
        ),
        10_000,
      );
      // While it is open: the API server and the kubelet relay in-process.
      const apiPid = (await new Deno.Command("ip", {
        args: ["netns", "pids", cluster.apiserverNs.name],
        stdout: "piped",
      }).output()).stdout;
      const pids = new TextDecoder().decode(apiPid).split(/\s+/).filter(Boolean).map(Number);
      let apiServer = 0;
      for (const p of pids) {
        if (/apiserver\.ts/.test(await cmdline(p).catch(() => ""))) apiServer = p;
      }
      assert.ok(apiServer > 0, "no API server process");
      assert.deepEqual(await children(apiServer), []);
      assert.deepEqual(await children(cluster.kubeletProcess!.pid), []);
      assert.equal(JSON.parse((await stall).stdout).status, 101);
    });

    // The kubelet's receive loop blocks in io.Pipe until containerd's copy took the data
    // (wsstream conn.go websocketChannel.DataFromSocket), and UpgradeAwareHandler's io.Copy
    // blocks on each write: a pod that does not read stops the client.
    await t.step("a pod that does not read holds the client back", async () => {
      const r = await cluster.laptop.exec([
        ...DENO_RUN,
        "-A",
        STALL,
        API_LAPTOP_IP,
        String(API_PORT),
        `/api/v1/namespaces/default/pods/${SINK.name}/portforward?ports=${SINK.port}`,
        cluster.token,
        cluster.caFile,
        "upload",
        "3",
      ]);
      const { status, written } = JSON.parse(r.stdout);
      assert.equal(status, 101);
      assert.ok(written > 1 << 20 && written < STALL_BOUND, `the client wrote ${written} bytes`);
    });

    // The other way: the kubelet sends only while the API server takes it, and the API server
    // reads the kubelet only while the client's socket takes it.
    await t.step("a client that does not read holds the pod back", async () => {
      const stall = cluster.laptop.exec([
        ...DENO_RUN,
        "-A",
        STALL,
        API_LAPTOP_IP,
        String(API_PORT),
        `/api/v1/namespaces/default/pods/${SOURCE.name}/portforward?ports=${SOURCE.port}`,
        cluster.token,
        cluster.caFile,
        "download",
        "4",
      ]);
      const sent = async () => Number(await Deno.readTextFile(sentFile).catch(() => "0"));
      await new Promise((r) => setTimeout(r, 2500));
      const first = await sent();
      await new Promise((r) => setTimeout(r, 1000));
      const second = await sent();
      await stall;
      assert.ok(first > 1 << 20 && second < STALL_BOUND, `the pod sent ${first}, then ${second}`);
      assert.ok(second - first <= 1 << 20, `the pod kept sending: ${first}, then ${second}`);
    });
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
});
