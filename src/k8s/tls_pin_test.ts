/**
 * Security review M4 and L9: TLS to the API server trusts the kubeconfig's CA alone, even when
 * another CA is one of the process's roots (`DENO_CERT` stands in for a publicly trusted CA);
 * `http://` servers are refused except on loopback behind the test switch. L3: a response
 * larger than the access's limit is abandoned.
 */
import assert from "node:assert/strict";
import { makePki, type Pki } from "../../tests/cluster/pki.ts";
import { parseMaterial } from "./material.ts";
import { sampleMaterial } from "./_test_material.ts";
import { checkServerUrl } from "./access.ts";
import { KubeClient } from "./client.ts";
import { KubeUnreachableError } from "./errors.ts";
import { sourceRunFlags } from "../host/self.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

function material(server: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...sampleMaterial({ server }), ...extra });
}

async function withEnv(name: string, value: string | undefined, fn: () => void | Promise<void>) {
  const saved = Deno.env.get(name);
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
  try {
    await fn();
  } finally {
    if (saved === undefined) Deno.env.delete(name);
    else Deno.env.set(name, saved);
  }
}

Deno.test("http:// API servers are refused; loopback only behind the test switch", async () => {
  await withEnv("KCONNECT_TEST_INSECURE_HTTP", undefined, () => {
    assert.throws(() => parseMaterial(material("http://example.com")), /http:\/\//);
    assert.throws(() => parseMaterial(material("http://127.0.0.1:8080")), /http:\/\//);
    assert.throws(() => checkServerUrl("ftp://example.com"), /not an https/);
    assert.equal(
      parseMaterial(material("https://example.com:6443")).server,
      "https://example.com:6443",
    );
  });
  await withEnv("KCONNECT_TEST_INSECURE_HTTP", "1", () => {
    assert.equal(parseMaterial(material("http://127.0.0.1:8080")).server, "http://127.0.0.1:8080");
    assert.equal(parseMaterial(material("http://[::1]:8080")).server, "http://[::1]:8080");
    assert.throws(() => parseMaterial(material("http://example.com")), /http:\/\//);
    assert.throws(() => parseMaterial(material("http://10.0.0.1:8080")), /http:\/\//);
  });
});

Deno.test("material headers must be HTTP headers", () => {
  const m = parseMaterial(material("https://k:6443", {
    headers: { "X-Ok": "1", "Bad Name": "x", "X-Inject": "a\r\nHost: evil", "X-Nul": "a\0" },
  }));
  assert.deepEqual(m.headers, { "X-Ok": "1" });
});

/** An HTTPS stand-in for an API server that records the Authorization headers it gets. */
function standIn(pki: Pki) {
  const seen: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(pki.serverCertFile),
    key: Deno.readTextFileSync(pki.serverKeyFile),
    onListen() {},
  }, (req) => {
    seen.push(req.headers.get("authorization") ?? "");
    if (new URL(req.url).pathname === "/version") {
      return Response.json({ gitVersion: "v1.33.1", major: "1", minor: "33" });
    }
    return Response.json({ kind: "Status", code: 404, reason: "NotFound" }, { status: 404 });
  });
  return { server, seen, url: `https://127.0.0.1:${server.addr.port}` };
}

async function twoPkis(dir: string): Promise<[Pki, Pki]> {
  await Deno.mkdir(`${dir}/a`);
  await Deno.mkdir(`${dir}/b`);
  return [
    await makePki(`${dir}/a`, { serverIps: ["127.0.0.1"] }),
    await makePki(`${dir}/b`, { serverIps: ["127.0.0.1"] }),
  ];
}

function kubeconfig(server: string, caPem: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: k",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${btoa(caPem)}`,
    "users:",
    "- name: u",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: c",
    "  context: { cluster: k, user: u }",
    "current-context: c",
    "",
  ].join("\n");
}

Deno.test({
  name:
    "a CA that is one of the process's roots (DENO_CERT) is not trusted for a cluster whose kubeconfig names another CA",
  ignore: !hasOpenssl,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kc-tlspin-" });
    const [a, b] = await twoPkis(dir);
    // The server's certificate is from CA-B; CA-B is a root of the child process (DENO_CERT).
    const { server, seen, url } = standIn(b);
    try {
      await Deno.writeTextFile(`${dir}/kc-a.yaml`, kubeconfig(url, a.caPem, "token-for-a"));
      await Deno.writeTextFile(`${dir}/kc-b.yaml`, kubeconfig(url, b.caPem, "token-for-b"));
      const script = `${dir}/probe.ts`;
      await Deno.writeTextFile(
        script,
        `
import { accessFromMaterial, parseMaterial } from "${ROOT}src/k8s/material.ts";
import { type ClusterAccess, loadKubeconfig } from "${ROOT}src/k8s/access.ts";
import { KubeClient } from "${ROOT}src/k8s/client.ts";
const [url, caA, caB, dir] = Deno.args;
const m = (ca: string, token: string) => parseMaterial(JSON.stringify({
  v: 1, server: url, context: "c", clusterName: "k", userName: "u", namespace: "default",
  source: "/kc", caPem: ca, clientCertPem: null, clientKeyPem: null, token, headers: {},
  expiresAt: null, dynamic: false,
}));
async function probe(name: string, make: () => Promise<ClusterAccess>) {
  try {
    const v = await new KubeClient(await make()).get<{ gitVersion: string }>("/version");
    console.log(name, "OK", v.gitVersion);
  } catch (err) {
    console.log(name, "FAIL", JSON.stringify((err as Error).message));
  }
}
await probe("material-A", async () => accessFromMaterial(m(Deno.readTextFileSync(caA), "token-for-a"), { refresh: () => Promise.reject(new Error("no")) }));
await probe("kubeconfig-A", () => loadKubeconfig({ kubeconfig: dir + "/kc-a.yaml" }));
await probe("material-B", async () => accessFromMaterial(m(Deno.readTextFileSync(caB), "token-for-b"), { refresh: () => Promise.reject(new Error("no")) }));
await probe("kubeconfig-B", () => loadKubeconfig({ kubeconfig: dir + "/kc-b.yaml" }));
console.log("DENO_CERT after", Deno.env.get("DENO_CERT") === caB);
`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", ...sourceRunFlags(), script, url, a.caFile, b.caFile, dir],
        env: { DENO_CERT: b.caFile, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const line = (name: string) => text.split("\n").find((l) => l.startsWith(`${name} `)) ?? "";
      for (const name of ["material-A", "kubeconfig-A"]) {
        assert.match(line(name), /FAIL .*TLS verification failed.*invalid peer certificate/, text);
      }
      for (const name of ["material-B", "kubeconfig-B"]) {
        assert.match(line(name), /OK v1\.33\.1/, text);
      }
      assert.match(line("DENO_CERT"), /true/, "the environment is restored for children");
      assert.ok(!seen.includes("Bearer token-for-a"), "the token never reached the impostor");
      assert.ok(seen.includes("Bearer token-for-b"));
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "kconnect up --foreground against a server whose certificate is from a process root fails with a TLS error",
  ignore: !hasOpenssl || Deno.build.os !== "linux" || Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kc-tlspin-up-" });
    const [a, b] = await twoPkis(dir);
    const { server, seen, url } = standIn(b);
    try {
      await Deno.writeTextFile(`${dir}/kc-a.yaml`, kubeconfig(url, a.caPem, "token-for-a"));
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          ...sourceRunFlags(),
          `${ROOT}main.ts`,
          "up",
          "--foreground",
          "--kubeconfig",
          `${dir}/kc-a.yaml`,
          "--state-dir",
          `${dir}/state`,
          "--dns",
          "off",
        ],
        // Root's own `up` (no SUDO_UID: the kubeconfig is loaded in this process).
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          HOME: Deno.env.get("HOME") ?? "/root",
          ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
          DENO_CERT: b.caFile,
          NO_COLOR: "1",
          DENO_NO_UPDATE_CHECK: "1",
        },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, /TLS verification failed .*invalid peer certificate/);
      assert.ok(!seen.includes("Bearer token-for-a"), "the token never reached the impostor");
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an API response larger than the access's limit is abandoned",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const big = JSON.stringify({ kind: "Big", data: "x".repeat(2 << 20) });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(big, { headers: { "content-type": "application/json" } }),
    );
    const chunked = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(new TextEncoder().encode("x".repeat(64 * 1024)));
            },
          }),
        ),
    );
    const client = Deno.createHttpClient({});
    try {
      for (const s of [server, chunked]) {
        const access = {
          server: `http://127.0.0.1:${s.addr.port}`,
          context: "c",
          clusterName: "k",
          userName: "u",
          namespace: "default",
          source: "test",
          headers: () => Promise.resolve({}),
          httpClient: client,
          maxResponseBytes: 1 << 20,
        };
        await assert.rejects(
          () => new KubeClient(access).get("/api/v1/pods"),
          (e: Error) => e instanceof KubeUnreachableError && /too much/.test(e.message),
        );
      }
      const roomy = {
        server: `http://127.0.0.1:${server.addr.port}`,
        context: "c",
        clusterName: "k",
        userName: "u",
        namespace: "default",
        source: "test",
        headers: () => Promise.resolve({}),
        httpClient: client,
        maxResponseBytes: 4 << 20,
      };
      assert.equal((await new KubeClient(roomy).get<{ kind: string }>("/x")).kind, "Big");
    } finally {
      client.close();
      await server.shutdown();
      await chunked.shutdown();
    }
  },
});
