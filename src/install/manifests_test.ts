import assert from "node:assert/strict";
import { APPLIED_ANNOTATION, canonicalJson, managerManifests, type Manifest } from "./manifests.ts";
import { describeApiError, InstallError } from "./apply.ts";
import { describePod } from "./wait.ts";
import {
  BUNDLE_SHA256_ANNOTATION,
  type PodObject,
  podReady,
} from "../manager_identity/identity.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { RESOURCES } from "./manifests.ts";

const base = {
  namespace: "kconnect",
  version: "1.2.3",
  bundle: "console.log('manager');",
  denoVersion: "2.9.6",
};

Deno.test("RBAC is least privilege: exactly these rules, bound to the manager's ServiceAccount", async () => {
  const m = await managerManifests(base);
  assert.deepEqual(m.clusterRole.rules, [
    {
      apiGroups: [""],
      resources: ["pods", "nodes", "services", "namespaces"],
      verbs: ["list"],
    },
    { apiGroups: ["networking.k8s.io"], resources: ["servicecidrs"], verbs: ["list"] },
  ]);
  // The dry-run Service probe (for clusters before ServiceCIDRs) is opt-in: no write by default.
  assert.deepEqual(m.role.rules, []);
  const sa = [{ kind: "ServiceAccount", name: "kconnect-traffic-manager", namespace: "kconnect" }];
  assert.deepEqual(m.clusterRoleBinding.subjects, sa);
  assert.deepEqual(m.roleBinding.subjects, sa);
  assert.deepEqual(m.clusterRoleBinding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "kconnect-traffic-manager:kconnect",
  });
  assert.deepEqual(m.roleBinding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: "kconnect-traffic-manager",
  });
  assert.equal(m.role.metadata.namespace, "kconnect");
  assert.equal(m.clusterRole.metadata.namespace, undefined);
  // No wildcard, no write verb, no secrets anywhere.
  const all = [...m.clusterRole.rules, ...m.role.rules];
  assert.ok(all.every((r) => !r.verbs.includes("*") && !r.resources.includes("*")));
  assert.ok(all.every((r) => !r.resources.includes("secrets")));
  assert.ok(all.every((r) => r.verbs.every((v) => v === "list")));
});

Deno.test("the Deployment: one replica, labels, bundle hash, image, command, port, hardening", async () => {
  const m = await managerManifests(base);
  const d = m.deployment;
  assert.equal(d.apiVersion, "apps/v1");
  assert.equal(d.spec.replicas, 1);
  // `printf %s "console.log('manager');" | sha256sum`
  assert.equal(m.bundleSha256, "62f3d1249f6285e60e66ca3d9ec3fb8601b68054a929b5466d6e09a12e872d5d");
  const labels = d.spec.template.metadata.labels;
  assert.equal(labels["app.kubernetes.io/name"], "kconnect-traffic-manager");
  assert.equal(labels["app.kubernetes.io/version"], "1.2.3");
  assert.equal(labels["app.kubernetes.io/managed-by"], "kconnect");
  assert.equal(d.spec.template.metadata.annotations[BUNDLE_SHA256_ANNOTATION], m.bundleSha256);
  assert.equal(d.metadata.annotations[BUNDLE_SHA256_ANNOTATION], m.bundleSha256);
  // The selector does not include the version: it cannot change on upgrade.
  assert.deepEqual(d.spec.selector.matchLabels, {
    "app.kubernetes.io/name": "kconnect-traffic-manager",
    "app.kubernetes.io/managed-by": "kconnect",
  });
  const pod = d.spec.template.spec;
  assert.equal(pod.serviceAccountName, "kconnect-traffic-manager");
  assert.equal(pod.securityContext.runAsNonRoot, true);
  const c = pod.containers[0];
  // Pinned by digest: the multi-arch index of docker.io/denoland/deno:2.9.6.
  assert.equal(
    c.image,
    "denoland/deno:2.9.6@sha256:2014dc167ece617ef7e7ba40631ac2234c59e75ce693e7cc2dc2602b3c87859d",
  );
  assert.deepEqual(c.command, [
    "deno",
    "run",
    "--v8-flags=--max-semi-space-size=1",
    "--allow-net",
    "--deny-net=169.254.169.254,169.254.170.2,100.100.100.200,168.63.129.16,[fd00:ec2::254]",
    "--allow-read=/kconnect,/etc/resolv.conf,/var/run/secrets/kubernetes.io/serviceaccount",
    "--allow-env=KUBERNETES_SERVICE_HOST,KUBERNETES_SERVICE_PORT,KCONNECT_LOG_LEVEL,DENO_TLS_CA_STORE,DENO_CERT,NO_COLOR,FORCE_COLOR,CLICOLOR_FORCE",
    "--no-prompt",
    "/kconnect/manager.js",
    "traffic-manager",
    "--listen",
    "127.0.0.1:8081",
  ]);
  assert.deepEqual(c.ports, [{ name: "tunnel", containerPort: 8081, protocol: "TCP" }]);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.runAsNonRoot, true);
  assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
  assert.ok(c.resources.limits.cpu && c.resources.limits.memory);
  assert.deepEqual(c.volumeMounts[0], { name: "code", mountPath: "/kconnect", readOnly: true });
  assert.deepEqual(pod.volumes[0], {
    name: "code",
    configMap: { name: "kconnect-traffic-manager" },
  });
  assert.deepEqual(m.configMap.data, { "manager.js": base.bundle });
  const other = await managerManifests({ ...base, image: "mirror.example/denoland/deno:2.9.6" });
  assert.equal(
    other.deployment.spec.template.spec.containers[0].image,
    "mirror.example/denoland/deno:2.9.6",
  );
});

Deno.test("every object is labelled as kconnect's and carries the hash of its own desired form", async () => {
  const m = await managerManifests(base);
  const objects = Object.values(m).filter((v) => typeof v === "object") as Manifest[];
  assert.equal(objects.length, 8);
  for (const o of objects) {
    assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "kconnect", o.kind);
    assert.match(o.metadata.annotations[APPLIED_ANNOTATION], /^[0-9a-f]{64}$/, o.kind);
    assert.ok(RESOURCES[o.kind], o.kind);
    // The hash is of this very object without the annotation, recomputed here independently.
    assert.equal(o.metadata.annotations[APPLIED_ANNOTATION], await desiredHash(o), o.kind);
  }
  const again = await managerManifests(base);
  assert.equal(
    again.deployment.metadata.annotations[APPLIED_ANNOTATION],
    m.deployment.metadata.annotations[APPLIED_ANNOTATION],
    "the same input gives the same hash",
  );
  const newer = await managerManifests({ ...base, bundle: base.bundle + "\n" });
  assert.notEqual(
    newer.deployment.metadata.annotations[APPLIED_ANNOTATION],
    m.deployment.metadata.annotations[APPLIED_ANNOTATION],
  );
  assert.equal(
    newer.clusterRole.metadata.annotations[APPLIED_ANNOTATION],
    m.clusterRole.metadata.annotations[APPLIED_ANNOTATION],
    "RBAC does not change with the code",
  );
  assert.equal(
    canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }),
    canonicalJson({ a: [{ c: 2, d: 1 }], b: 1 }),
  );
});

/** Object keys sorted at every level (the test's own, not the module's canonicalJson). */
function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v === null || typeof v !== "object") return v;
  const keys = Object.keys(v).sort();
  return Object.fromEntries(keys.map((k) => [k, sortedKeys((v as Record<string, unknown>)[k])]));
}

/** sha256 (hex) of `o`'s JSON with sorted keys, without the applied-hash annotation. */
async function desiredHash(o: Manifest): Promise<string> {
  const copy = structuredClone(o);
  delete copy.metadata.annotations[APPLIED_ANNOTATION];
  const text = JSON.stringify(sortedKeys(copy));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function apiErr(code: number, message: string): KubeApiError {
  return new KubeApiError(message, code, { kind: "Status", message, code, reason: "Forbidden" });
}

Deno.test("API errors name the verb, the resource and what to do", () => {
  const rbac = describeApiError(
    apiErr(
      403,
      'configmaps is forbidden: User "u" cannot create resource "configmaps" in API group "" in the namespace "kconnect"',
    ),
    "POST",
    RESOURCES.ConfigMap,
    "kconnect-traffic-manager",
    "kconnect",
    "me",
  ) as InstallError;
  assert.ok(rbac instanceof InstallError);
  assert.match(
    rbac.message,
    /^User "me" may not create configmaps in namespace "kconnect" \(the API server said: .*\)\. Grant "create" on configmaps in namespace "kconnect"/,
  );
  const quota = describeApiError(
    apiErr(
      403,
      'deployments.apps "x" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=0, limited: count/deployments.apps=0',
    ),
    "POST",
    RESOURCES.Deployment,
    "x",
    "kconnect",
    "me",
  ) as InstallError;
  assert.match(
    quota.message,
    /^Cannot create deployments\.apps "x" in namespace "kconnect": a ResourceQuota of namespace "kconnect" refuses it \(.*exceeded quota: q/,
  );
  const other = new Error("network");
  assert.equal(
    describeApiError(other, "GET", RESOURCES.Namespace, "kconnect", undefined, "me"),
    other,
  );
});

Deno.test("pod states in words", () => {
  const pod = (status: PodObject["status"]): PodObject => ({ metadata: { name: "p" }, status });
  assert.equal(describePod(pod({ phase: "Pending" })), "Pending (not scheduled yet)");
  assert.equal(
    describePod(pod({
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [{ state: { waiting: { reason: "ContainerCreating" } } }],
    })),
    "Pending (ContainerCreating)",
  );
  const running = pod({
    phase: "Running",
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "ContainersNotReady",
        message: "containers with unready status: [manager]",
      },
    ],
    containerStatuses: [{ state: { running: {} } }],
  });
  assert.equal(podReady(running), false);
  assert.equal(
    describePod(running),
    "Running, not ready (Ready=False ContainersNotReady: containers with unready status: [manager])",
  );
  const ready = pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] });
  assert.equal(podReady(ready), true);
  assert.equal(describePod(ready), "Running, ready");
});
