// Security review M8: the manager's RBAC has no unused verb and no create, its image is pinned
// by digest, and it runs with only the Deno permissions it needs (checked by running the real
// bundle with the manifest's own flags, as a kubelet would).
import assert from "node:assert/strict";
import { TunnelDialer } from "../dial/tunnel.ts";
import { SERVICE_ACCOUNT_DIR } from "../k8s/access.ts";
import { FrameReader } from "../tunnel/length_prefixed.ts";
import { encodeOpenRequest } from "../tunnel/open_request.ts";
import { Session } from "../tunnel/session.ts";
import { runDenoBundle } from "./bundle.ts";
import {
  BUNDLE_KEY,
  BUNDLE_MOUNT,
  DENO_IMAGE_DIGESTS,
  denoImage,
  describeRbac,
  managerCommand,
  managerManifests,
  PINNED_DENO_VERSION,
} from "./manifests.ts";

const base = {
  namespace: "kconnect",
  version: "1.2.3",
  bundle: "console.log('manager');",
  denoVersion: "2.9.6",
};

Deno.test("manager RBAC: no watch, no write verb; the service probe's create only when asked", async () => {
  const m = await managerManifests(base);
  const rules = [...m.clusterRole.rules, ...m.role.rules];
  for (const r of rules) {
    assert.ok(!r.verbs.includes("watch"), JSON.stringify(r));
    assert.deepEqual(r.verbs, ["list"], JSON.stringify(r));
  }
  assert.deepEqual(m.role.rules, []);
  const probe = await managerManifests({ ...base, serviceProbe: true });
  assert.deepEqual(probe.role.rules, [
    { apiGroups: [""], resources: ["services"], verbs: ["create"] },
  ]);
  assert.equal(
    describeRbac(m),
    "ServiceAccount kconnect-traffic-manager; ClusterRole kconnect-traffic-manager:kconnect: " +
      "list pods, nodes, services, namespaces, servicecidrs.networking.k8s.io; " +
      "Role kconnect-traffic-manager: nothing",
  );
  assert.match(describeRbac(probe), /Role kconnect-traffic-manager: create services \(dry-run/);
  // The Role and its binding are there either way (switching the probe is an update).
  assert.equal((m.roleBinding.roleRef as { name: string }).name, m.role.metadata.name);
});

Deno.test("manager image: pinned by digest, also for a Deno version without a known digest", async () => {
  const m = await managerManifests(base);
  const image = m.deployment.spec.template.spec.containers[0].image;
  assert.match(image, /^denoland\/deno:2\.9\.6@sha256:[0-9a-f]{64}$/);
  assert.equal(
    image,
    "denoland/deno:2.9.6@sha256:2014dc167ece617ef7e7ba40631ac2234c59e75ce693e7cc2dc2602b3c87859d",
  );
  assert.match(denoImage("9.9.9"), new RegExp(`^denoland/deno:${PINNED_DENO_VERSION}@sha256:`));
  for (const d of Object.values(DENO_IMAGE_DIGESTS)) assert.match(d, /^sha256:[0-9a-f]{64}$/);
  // An image the user names is used as given.
  const other = await managerManifests({
    ...base,
    image: "mirror.example/deno@sha256:" + "1".repeat(64),
  });
  assert.equal(
    other.deployment.spec.template.spec.containers[0].image,
    "mirror.example/deno@sha256:" + "1".repeat(64),
  );
});

Deno.test("manager command: scoped --allow-read and --allow-env, metadata denied, nothing else", async () => {
  const m = await managerManifests(base);
  const cmd = m.deployment.spec.template.spec.containers[0].command;
  assert.deepEqual(cmd, managerCommand(8081));
  const flags = cmd.filter((a) =>
    a.startsWith("-") && cmd.indexOf(a) < cmd.indexOf(`${BUNDLE_MOUNT}/${BUNDLE_KEY}`)
  );
  assert.deepEqual(flags.map((f) => f.split("=")[0]), [
    "--v8-flags",
    "--allow-net",
    "--deny-net",
    "--allow-read",
    "--allow-env",
    "--no-prompt",
  ]);
  assert.ok(
    cmd.includes(
      "--allow-read=/kconnect,/etc/resolv.conf,/var/run/secrets/kubernetes.io/serviceaccount",
    ),
    cmd.join(" "),
  );
  const env = cmd.find((a) => a.startsWith("--allow-env="))!.split("=")[1].split(",");
  assert.ok(env.includes("KUBERNETES_SERVICE_HOST") && env.includes("KUBERNETES_SERVICE_PORT"));
  assert.ok(env.every((v) => /^[A-Z_]+$/.test(v)), "names only, no wildcard");
  const deny = cmd.find((a) => a.startsWith("--deny-net="))!.split("=")[1].split(",");
  for (const ip of ["169.254.169.254", "100.100.100.200", "168.63.129.16", "[fd00:ec2::254]"]) {
    assert.ok(deny.includes(ip), ip);
  }
  assert.ok(!deny.includes("169.254.0.0/16"), "NodeLocal DNSCache (169.254.20.10) stays reachable");
  for (
    const bad of ["-A", "--allow-all", "--allow-run", "--allow-write", "--allow-ffi", "--allow-sys"]
  ) {
    assert.ok(!cmd.some((a) => a === bad || a.startsWith(`${bad}=`)), bad);
  }
});

Deno.test({
  name: "the real bundle runs under the manifest's permissions: it serves sessions, honours its " +
    "budget flags, and hits no permission error",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const root = new URL("../../", import.meta.url).pathname;
    const dir = await Deno.makeTempDir({ prefix: "kc-manifest-perm-" });
    try {
      const code = `${dir}/code`;
      const sa = `${dir}/sa`;
      await Deno.mkdir(code);
      await Deno.mkdir(sa);
      await runDenoBundle(root, `${code}/${BUNDLE_KEY}`);
      await Deno.writeTextFile(`${sa}/token`, "not-a-real-token");
      await Deno.writeTextFile(`${sa}/namespace`, "kconnect");
      await Deno.writeTextFile(`${sa}/ca.crt`, CA);
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = probe.addr.port;
      probe.close();
      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const apiPort = closed.addr.port;
      closed.close();
      // What a kubelet does: the mounts at their paths (here: the temp dirs in their place).
      const map = (a: string) =>
        a.replaceAll(SERVICE_ACCOUNT_DIR, sa).replace(
          new RegExp(`(^|[=,])${BUNDLE_MOUNT}(?=/|,|$)`, "g"),
          `$1${code}`,
        );
      const [deno, ...args] = managerCommand(port).map(map);
      assert.equal(deno, "deno");
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...args,
          "--service-account-dir",
          sa,
          "--max-sessions",
          "1",
          "--log-level",
          "info",
        ],
        env: {
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: String(apiPort),
          NO_COLOR: "1",
          DENO_NO_UPDATE_CHECK: "1",
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const stdout = new Response(child.stdout).text();
      try {
        let conn: Deno.TcpConn | undefined;
        for (let i = 0; i < 200 && conn === undefined; i++) {
          conn = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => undefined);
          if (conn === undefined) await new Promise((r) => setTimeout(r, 50));
        }
        if (conn === undefined) {
          child.kill("SIGTERM");
          assert.fail(`the manager does not listen:\n${await stderr}${await stdout}`);
        }
        const session = new Session(conn, { client: true });
        const control = await session.open({ initial: encodeOpenRequest({ kind: "control" }) });
        const info = JSON.parse(
          new TextDecoder().decode((await new FrameReader(control).readU32Frame(1 << 20))!),
        );
        assert.equal(info.type, "info");
        // --max-sessions 1 came through the bundle's own flags: a second session is refused.
        const second = new Session(
          await Deno.connect({ hostname: "127.0.0.1", port }),
          { client: true },
        );
        const err = await new TunnelDialer(second).dialTcp(
          { address: "10.0.0.1", port: 80 },
          { signal: AbortSignal.timeout(5000) },
        ).then(() => null, (e: Error) => e);
        assert.match(err?.message ?? "", /--max-sessions/);
        // A metadata address is refused (by the manager's policy, before the runtime's).
        const meta = await new TunnelDialer(session).dialTcp(
          { address: "169.254.169.254", port: 80 },
          { signal: AbortSignal.timeout(5000) },
        ).then(() => null, (e: Error) => e);
        assert.match(meta?.message ?? "", /forbidden/);
        await second.close();
        await session.close();
      } finally {
        try {
          child.kill("SIGTERM");
        } catch { /* it ended: the log below says why */ }
        await child.status;
      }
      const log = (await stderr) + (await stdout);
      assert.match(log, /traffic manager listening on/);
      // Discovery failed for want of an API server, not for want of a permission.
      assert.match(log, /network discovery failed: Cannot reach the Kubernetes API server/);
      assert.doesNotMatch(log, /NotCapable|Requires \w+ access|run again with/, log);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// A self-signed CA certificate (openssl req -x509, P-256, valid until 2126): the manager only
// hands it to its HTTP client.
const CA = `-----BEGIN CERTIFICATE-----
MIIBjjCCATOgAwIBAgIUc5DS9Ff6yVvcTVMQI1eQ0rsm//owCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQa2Nvbm5lY3QtdGVzdC1jYTAgFw0yNjEyMDYxMjMwMDdaGA8y
MTI2MTExMjEyMzAwN1owGzEZMBcGA1UEAwwQa2Nvbm5lY3QtdGVzdC1jYTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABKdNqZnFiExv/TBtSmxNkZx/DDDo0UfpW8zf
9dIr2qw4GnYvvFnlFb0LsavVU/5zHIOwjyTtEJMJ2oPxBkcwOwCjUzBRMB0GA1Ud
DgQWBBRLHjDZRfqVaspUh+tEoCc9eBMeGzAfBgNVHSMEGDAWgBRLHjDZRfqVaspU
h+tEoCc9eBMeGzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCc
BIQ0Spg6/rSI7zYzJ20xzt/SK65slxM7Xfoc9MfChwIhAOcEczhgw+L8cSLsfPf1
Kr2ykAWH9kx2ZAWZj9fdT529
-----END CERTIFICATE-----
`;
