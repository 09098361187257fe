/**
 * `kconnect install`, `uninstall` and `up`'s upgrade end to end, against the API server
 * stand-in whose kubelet runs the Deployment's pod (the bundled manager code from the ConfigMap,
 * under its ServiceAccount with the RBAC that install created). The laptop is the client. Root
 * only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import type { Netns } from "./_netns.ts";
import { startUp } from "./_up.ts";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";
import { denoImage } from "../src/install/manifests.ts";
import { VERSION } from "../src/version.ts";

/** Runs kconnect from source in `ns`. */
async function kconnect(ns: Netns, args: string[]) {
  const r = await ns.exec([...DENO_RUN, "-A", `${ROOT}main.ts`, ...args], { check: false });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** GET from the API server as the admin (curl in the laptop namespace). */
async function api<T = Record<string, unknown>>(
  cluster: TestCluster,
  path: string,
): Promise<{ code: number; body: T }> {
  const r = await cluster.laptop.exec([
    "curl",
    "-s",
    "--max-time",
    "10",
    "--cacert",
    cluster.caFile,
    "-H",
    `Authorization: Bearer ${cluster.token}`,
    "-w",
    "\n%{http_code}",
    `${cluster.apiUrl}${path}`,
  ]);
  const i = r.stdout.lastIndexOf("\n");
  return { code: Number(r.stdout.slice(i + 1)), body: JSON.parse(r.stdout.slice(0, i)) as T };
}

interface Obj {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Every kind install writes (and those the cluster makes from them), cluster-wide. */
const COLLECTIONS = [
  "/api/v1/namespaces",
  "/api/v1/serviceaccounts",
  "/api/v1/configmaps",
  "/api/v1/pods",
  "/apis/apps/v1/deployments",
  "/apis/apps/v1/replicasets",
  "/apis/rbac.authorization.k8s.io/v1/clusterroles",
  "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
  "/apis/rbac.authorization.k8s.io/v1/roles",
  "/apis/rbac.authorization.k8s.io/v1/rolebindings",
];

/** Objects of kconnect's (by label or name) in every collection. */
async function kconnectObjects(cluster: TestCluster): Promise<string[]> {
  const found: string[] = [];
  for (const path of COLLECTIONS) {
    const { code, body } = await api<{ items: Obj[] }>(cluster, path);
    assert.equal(code, 200, path);
    for (const o of body.items) {
      const m = o.metadata;
      if (
        m.labels?.["app.kubernetes.io/managed-by"] === "kconnect" ||
        m.name.includes("kconnect-traffic-manager") || m.name === "kconnect"
      ) {
        found.push(`${path} ${m.namespace ?? ""}/${m.name}`);
      }
    }
  }
  return found;
}

async function managerPods(cluster: TestCluster): Promise<Obj[]> {
  const { body } = await api<{ items: Obj[] }>(
    cluster,
    "/api/v1/namespaces/kconnect/pods?labelSelector=app.kubernetes.io%2Fname%3Dkconnect-traffic-manager",
  );
  return body.items ?? [];
}

async function redisPing(laptop: Netns): Promise<string> {
  const r = await laptop.exec(["timeout", "10", "redis-cli", "-h", "10.96.0.21", "PING"], {
    check: false,
  });
  return r.stdout.trim();
}

/** Whether something in the cluster namespace listens on TCP `port` (`ss` must succeed). */
async function listening(cluster: TestCluster, port: number): Promise<boolean> {
  const r = await cluster.clusterNs.exec(["ss", "-Hltn"]);
  // Columns: state, recv-q, send-q, local address:port, peer address:port.
  return r.stdout.split("\n").some((l) => l.trim().split(/\s+/)[3]?.endsWith(`:${port}`));
}

/** The time of the first line of a kconnect log (ISO timestamps) matching `re`, in ms. */
function loggedAt(log: string, re: RegExp): number {
  const line = log.split("\n").find((l) => re.test(l));
  assert.ok(line, `no line matching ${re} in:\n${log}`);
  const at = Date.parse(line.split(" ")[0]);
  assert.ok(Number.isFinite(at), `no timestamp on: ${line}`);
  return at;
}

Deno.test({
  name: "kconnect install into an empty cluster, up through it, install again (no-op), uninstall",
  ...E2E_TEST,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ manager: "deployment" });
    const laptop = cluster.laptop;
    const kc = ["--kubeconfig", cluster.kubeconfig];
    let podName = "";

    await t.step("install: every step reported, pod ready", async () => {
      const r = await kconnect(laptop, ["install", ...kc]);
      assert.equal(r.code, 0, r.err + r.out);
      const lines = r.out.split("\n");
      const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `${re} in:\n${r.out}`);
      has(/^✓ namespace: kconnect \(created\)$/);
      has(/^✓ RBAC: ServiceAccount kconnect-traffic-manager; .* \(created\)$/);
      has(
        /^✓ manager code: ConfigMap kconnect-traffic-manager, \d+ KiB, sha256 [0-9a-f]{12} \(created\)$/,
      );
      has(
        new RegExp(
          `^✓ Deployment: kconnect-traffic-manager, image ${
            denoImage(Deno.version.deno).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
          }, version ${VERSION} \\(created\\)$`,
        ),
      );
      // The first state seen depends on how fast the kubelet starts the pod (a busy machine).
      has(
        /^ {4}waiting for the pod kconnect\/kconnect-traffic-manager-[a-z0-9]+-[a-z0-9]{5} to be ready: (Pending|Running, not ready)/,
      );
      has(
        /^✓ traffic manager ready: kconnect\/kconnect-traffic-manager-\S+ \(10\.244\.0\.\d+\), version /,
      );
      has(/^installed: traffic manager /);
      const kib = Number(/ConfigMap kconnect-traffic-manager, (\d+) KiB/.exec(r.out)![1]);
      assert.ok(kib > 20 && kib < 512, `bundle size ${kib} KiB`);
      podName = /traffic manager ready: kconnect\/(\S+)/.exec(r.out)![1];
    });

    await t.step("the objects are as installed", async () => {
      const d = (await api<Obj>(
        cluster,
        "/apis/apps/v1/namespaces/kconnect/deployments/kconnect-traffic-manager",
      )).body;
      assert.equal(d.metadata.labels?.["app.kubernetes.io/managed-by"], "kconnect");
      assert.equal(d.metadata.labels?.["app.kubernetes.io/version"], VERSION);
      const cm = (await api<Obj & { data: Record<string, string> }>(
        cluster,
        "/api/v1/namespaces/kconnect/configmaps/kconnect-traffic-manager",
      )).body;
      const sha = Array.from(
        new Uint8Array(
          await crypto.subtle.digest("SHA-256", new TextEncoder().encode(cm.data["manager.js"])),
        ),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      assert.equal(d.metadata.annotations?.["kconnect.io/bundle-sha256"], sha);
      const ns = (await api<Obj>(cluster, "/api/v1/namespaces/kconnect")).body;
      assert.equal(ns.metadata.labels?.["app.kubernetes.io/managed-by"], "kconnect");
      const pods = await managerPods(cluster);
      assert.deepEqual(pods.map((p) => p.metadata.name), [podName]);
      const pod = pods[0];
      assert.equal(pod.metadata.labels?.["app.kubernetes.io/version"], VERSION);
      assert.equal(pod.metadata.annotations?.["kconnect.io/bundle-sha256"], sha);
      assert.equal((pod.status as { phase: string }).phase, "Running");
      const owner = (pod.metadata as { ownerReferences?: { kind: string; name: string }[] })
        .ownerReferences?.[0];
      assert.equal(owner?.kind, "ReplicaSet");
      assert.ok(owner?.name.startsWith("kconnect-traffic-manager-"));
    });

    await t.step("up finds the installed manager; redis PING from the laptop", async () => {
      await using up = await startUp(laptop, kc);
      const out = up.out.text();
      assert.match(
        out,
        new RegExp(
          `traffic manager found: kconnect/${podName} \\(10\\.244\\.0\\.\\d+\\), port 8081`,
        ),
      );
      // Discovery ran under the installed least-privilege RBAC and found everything.
      assert.match(out, /service CIDR 10\.96\.0\.0\/12 \(ServiceCIDR /);
      assert.match(out, /pod CIDR 10\.244\.0\.0\/24 \(podCIDRs of 1 node\)/);
      assert.match(out, new RegExp(`traffic manager ${VERSION.replaceAll(".", "\\.")}`));
      assert.doesNotMatch(out, /forbidden/i);
      assert.equal(await redisPing(laptop), "PONG");
      const log = await Deno.readTextFile(cluster.podLogFile("kconnect", podName));
      assert.doesNotMatch(log, /forbidden|failed/i, log);
    });

    await t.step("install again: nothing changes", async () => {
      const r = await kconnect(laptop, ["install", ...kc]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /RBAC: .*\(up to date\)/);
      assert.match(r.out, /manager code: .*\(up to date\)/);
      assert.match(r.out, /Deployment: .*\(up to date\)/);
      assert.match(r.out, /^up to date: traffic manager/m);
      assert.deepEqual((await managerPods(cluster)).map((p) => p.metadata.name), [podName]);
    });

    await t.step(
      "uninstall deletes everything it created, the pod's process included",
      async () => {
        const before = await kconnectObjects(cluster);
        assert.ok(before.length >= 10, before.join("\n"));
        assert.equal(await listening(cluster, 8081), true, "the manager listens");
        const r = await kconnect(laptop, ["uninstall", ...kc]);
        assert.equal(r.code, 0, r.err + r.out);
        for (
          const what of [
            "Deployment kconnect/kconnect-traffic-manager",
            "ConfigMap kconnect/kconnect-traffic-manager",
            "RoleBinding kconnect/kconnect-traffic-manager",
            "Role kconnect/kconnect-traffic-manager",
            "ClusterRoleBinding kconnect-traffic-manager:kconnect",
            "ClusterRole kconnect-traffic-manager:kconnect",
            "ServiceAccount kconnect/kconnect-traffic-manager",
            "Namespace kconnect",
          ]
        ) {
          assert.ok(r.out.includes(`✓ deleted: ${what}\n`), `${what} in:\n${r.out}`);
        }
        assert.match(r.out, /^uninstalled: deleted 8 objects$/m);
        assert.deepEqual(await kconnectObjects(cluster), []);
        assert.equal(await listening(cluster, 8081), false, "the manager's process is gone");
        const again = await kconnect(laptop, ["uninstall", ...kc]);
        assert.equal(again.code, 0, again.err);
        assert.match(again.out, /^nothing to uninstall/m);
      },
    );
  },
});

Deno.test({
  name: "up upgrades an older kconnect-installed manager (rolling), then connects to the new pod",
  ...E2E_TEST,
  fn: async () => {
    let oldPod = "";
    await using connected = await connectedLaptop({
      cluster: { manager: "deployment" },
      beforeUp: async (c) => {
        const old = await c.laptop.exec([
          ...DENO_RUN,
          "-A",
          `${ROOT}tests/cluster/install_old.ts`,
          "--kubeconfig",
          c.kubeconfig,
          "--version",
          "0.0.9",
        ], { check: false });
        assert.equal(old.code, 0, old.stderr + old.stdout);
        oldPod = /installed: traffic manager 0\.0\.9 \(pod (\S+)\)/.exec(old.stdout)![1];
      },
    });
    const { cluster, laptop, up } = connected;
    // The old manager really is the old code: it reports 0.0.9.
    const out = up.out.text();
    assert.match(
      out,
      new RegExp(
        `^! traffic manager differs from this client \\(version 0\\.0\\.9, this client ${
          VERSION.replaceAll(".", "\\.")
        }\\): upgrading it$`,
        "m",
      ),
    );
    assert.match(out, /^✓ manager code: .*\(updated\)$/m);
    assert.match(out, /^✓ Deployment: .*\(updated from 0\.0\.9\)$/m);
    assert.match(out, /waiting for the pod kconnect\/kconnect-traffic-manager-\S+ to be ready/);
    assert.match(
      out,
      new RegExp(
        `^✓ traffic manager upgraded: 0\\.0\\.9 → ${VERSION.replaceAll(".", "\\.")}, now kconnect/`,
        "m",
      ),
    );
    const newPod = /traffic manager upgraded: .*, now kconnect\/(\S+)/.exec(out)![1];
    assert.notEqual(newPod, oldPod);
    assert.match(out, new RegExp(`traffic manager found: kconnect/${newPod} `));
    assert.match(
      out,
      new RegExp(`cluster networks: .*traffic manager ${VERSION.replaceAll(".", "\\.")}`),
    );
    assert.equal(await redisPing(laptop), "PONG");
    const pods = await managerPods(cluster);
    assert.deepEqual(pods.map((p) => p.metadata.name), [newPod], "the old pod is gone");
    assert.equal(pods[0].metadata.labels?.["app.kubernetes.io/version"], VERSION);
    // Rolling: the Deployment asks for the new pod before the old one goes…
    const d = (await api<Obj>(
      cluster,
      "/apis/apps/v1/namespaces/kconnect/deployments/kconnect-traffic-manager",
    )).body;
    assert.deepEqual(d.spec?.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    // …and the old manager was stopped only after the new pod had started and was Ready. The
    // old pod's SIGTERM is in its log (millisecond timestamps); the new pod's container start is
    // when the kubelet created its log file (birth time, milliseconds); its Ready condition's
    // time has whole seconds, as the API has it. An upgrade that stops the old pod first (delete
    // and re-create) has the SIGTERM before the new container even starts.
    const oldLog = await Deno.readTextFile(cluster.podLogFile("kconnect", oldPod));
    const stopped = loggedAt(oldLog, /stopping on SIGTERM/);
    const started = (await Deno.stat(cluster.podLogFile("kconnect", newPod))).birthtime;
    assert.ok(started, "the file system records birth times");
    assert.ok(
      started.getTime() < stopped,
      `the new pod started (${started.toISOString()}) before the old manager was stopped ` +
        `(${new Date(stopped).toISOString()})`,
    );
    const ready =
      (pods[0].status as { conditions?: { type: string; lastTransitionTime: string }[] })
        .conditions?.find((c) => c.type === "Ready");
    assert.ok(ready, JSON.stringify(pods[0].status));
    assert.ok(
      Date.parse(ready.lastTransitionTime) <= stopped,
      `the new pod was Ready (${ready.lastTransitionTime}) before the old manager was stopped ` +
        `(${new Date(stopped).toISOString()})`,
    );
  },
});

Deno.test({
  name:
    "install: an image the cluster cannot pull fails with the kubelet's message; a good image recovers",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({
      manager: "deployment",
      unpullableImages: ["denoland/deno:0.0.0-missing"],
    });
    const kc = ["--kubeconfig", cluster.kubeconfig];
    const missing = await kconnect(cluster.laptop, [
      "install",
      ...kc,
      "--image",
      "denoland/deno:0.0.0-missing",
    ]);
    assert.equal(missing.code, 1, missing.out);
    assert.match(
      missing.err,
      /^kconnect: The traffic manager's pod kconnect\/kconnect-traffic-manager-\S+ cannot start: the cluster cannot pull its image "denoland\/deno:0\.0\.0-missing" \(ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "docker\.io\/denoland\/deno:0\.0\.0-missing": .*not found\)\. .*--image/m,
    );
    const private_ = await kconnect(cluster.laptop, [
      "install",
      ...kc,
      "--image",
      "registry.example.com/kconnect/manager:1",
      "--timeout",
      "20",
    ]);
    assert.equal(private_.code, 1);
    assert.match(
      private_.err,
      /cannot pull its image "registry\.example\.com\/kconnect\/manager:1" \((ErrImagePull|ImagePullBackOff): .*pull access denied/,
    );
    const good = await kconnect(cluster.laptop, ["install", ...kc]);
    assert.equal(good.code, 0, good.err);
    assert.match(good.out, /Deployment: .*\(updated\)/);
    assert.match(good.out, /traffic manager ready/);
    const pods = await managerPods(cluster);
    assert.equal(pods.length, 1, "the pods of the bad images are gone");
  },
});

Deno.test({
  name:
    "install as a user RBAC does not let create anything: the verb, resource and permission named",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ manager: "deployment" });
    const r = await kconnect(cluster.laptop, [
      "install",
      "--kubeconfig",
      await cluster.kubeconfigFor("viewer"),
    ]);
    assert.equal(r.code, 1, r.out);
    assert.equal(
      r.err.split("\n")[0],
      `kconnect: User "viewer" may not create namespaces at the cluster scope (the API server said: namespaces is forbidden: User "viewer@example.com" cannot create resource "namespaces" in API group "" at the cluster scope). Grant "create" on namespaces at the cluster scope, or have a cluster administrator run kconnect install. kconnect install needs get, create, update and delete on namespaces, clusterroles and clusterrolebindings (rbac.authorization.k8s.io), and on serviceaccounts, configmaps, deployments (apps), roles and rolebindings in the manager's namespace, plus list on pods there; cluster-admin has all of them. It also needs to hold every permission it grants the manager (RBAC refuses to grant more than the granter has).`,
    );
    assert.deepEqual(await kconnectObjects(cluster), []);
  },
});

Deno.test({
  name: "install into a namespace whose ResourceQuota refuses the pod or the Deployment",
  ...E2E_TEST,
  fn: async (t) => {
    await t.step("limits.memory: the ReplicaSet cannot create the pod", async () => {
      await using cluster = await TestCluster.start({
        manager: "deployment",
        quota: { "limits.memory": "128Mi" },
      });
      const r = await kconnect(cluster.laptop, ["install", "--kubeconfig", cluster.kubeconfig]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /✓ namespace: kconnect \(exists\)/);
      assert.match(
        r.err,
        /^kconnect: The traffic manager's pod cannot be created in namespace "kconnect": FailedCreate: pods "kconnect-traffic-manager-[a-z0-9]+-[a-z0-9]{5}" is forbidden: exceeded quota: kconnect-quota, requested: limits\.memory=320Mi, used: limits\.memory=0, limited: limits\.memory=128Mi\. A ResourceQuota refuses it: ask the cluster's administrator to raise the quota, or install into another namespace with --manager-namespace\.$/m,
      );
      // uninstall keeps the namespace it did not create
      const u = await kconnect(cluster.laptop, ["uninstall", "--kubeconfig", cluster.kubeconfig]);
      assert.equal(u.code, 0, u.err);
      assert.match(u.out, /namespace kconnect existed before kconnect install: kept/);
      assert.match(u.out, /namespace "kconnect" kept/);
      assert.deepEqual(await kconnectObjects(cluster), ["/api/v1/namespaces /kconnect"]);
    });
    await t.step("count/deployments.apps: the API refuses the Deployment", async () => {
      await using cluster = await TestCluster.start({
        manager: "deployment",
        quota: { "count/deployments.apps": "0" },
      });
      const r = await kconnect(cluster.laptop, ["install", "--kubeconfig", cluster.kubeconfig]);
      assert.equal(r.code, 1, r.out);
      assert.match(
        r.err,
        /^kconnect: Cannot create deployments\.apps "kconnect-traffic-manager" in namespace "kconnect": a ResourceQuota of namespace "kconnect" refuses it \(deployments\.apps "kconnect-traffic-manager" is forbidden: exceeded quota: kconnect-quota, requested: count\/deployments\.apps=1, used: count\/deployments\.apps=0, limited: count\/deployments\.apps=0\)\. /m,
      );
    });
  },
});

Deno.test({
  name:
    "up's hook: no manager and no --install fails saying how; --install installs; --no-upgrade keeps an older one",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ manager: "deployment" });
    const hook = (...args: string[]) =>
      cluster.laptop.exec([
        ...DENO_RUN,
        "-A",
        `${ROOT}tests/cluster/ensure_manager.ts`,
        "--kubeconfig",
        cluster.kubeconfig,
        ...args,
      ], { check: false });
    const none = await hook();
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /No traffic manager found in namespace "kconnect" .* To install it: kconnect install \(or kconnect up --install\)\./,
    );
    const old = await cluster.laptop.exec([
      ...DENO_RUN,
      "-A",
      `${ROOT}tests/cluster/install_old.ts`,
      "--kubeconfig",
      cluster.kubeconfig,
      "--version",
      "0.0.8",
    ], { check: false });
    assert.equal(old.code, 0, old.stderr);
    const kept = await hook("--no-upgrade");
    assert.equal(kept.code, 0, kept.stderr);
    assert.match(
      kept.stdout,
      /^! traffic manager differs from this client \(version 0\.0\.8, this client .*\); not upgrading \(--no-upgrade\)$/m,
    );
    assert.match(kept.stdout, /^manager: kconnect\/kconnect-traffic-manager-\S+ 0\.0\.8$/m);
    const u = await kconnect(cluster.laptop, ["uninstall", "--kubeconfig", cluster.kubeconfig]);
    assert.equal(u.code, 0, u.err);
    const installed = await hook("--install");
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, /installing the traffic manager in namespace "kconnect"/);
    assert.match(installed.stdout, /✓ traffic manager ready: /);
    assert.match(
      installed.stdout,
      new RegExp(`^manager: kconnect/\\S+ ${VERSION.replaceAll(".", "\\.")}$`, "m"),
    );
  },
});

Deno.test({
  name: "up --install installs the traffic manager into an empty cluster and connects through it",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ manager: "deployment" });
    const without = await kconnect(cluster.laptop, [
      "up",
      "--foreground",
      "--kubeconfig",
      cluster.kubeconfig,
      "--dns",
      "off",
      "--state-dir",
      `${cluster.dir}/state-no-install`,
    ]);
    assert.equal(without.code, 1);
    assert.match(without.err, /No traffic manager found .*--install/s);
    await using up = await startUp(cluster.laptop, [
      "--kubeconfig",
      cluster.kubeconfig,
      "--install",
    ]);
    assert.match(up.out.text(), /Deployment/);
    assert.match(up.out.text(), /traffic manager found: kconnect\//);
    const r = await cluster.laptop.exec(["redis-cli", "-h", "10.96.0.21", "PING"]);
    assert.equal(r.stdout.trim(), "PONG");
  },
});
