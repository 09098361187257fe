/**
 * The stand-in's controller manager, for Deployments: like kube-controller-manager's deployment
 * and replicaset controllers and the garbage collector, reduced to what a one-replica
 * Deployment needs.
 *
 * - A Deployment gets a ReplicaSet per pod template (`<deployment>-<pod-template-hash>`), which
 *   gets pods (`<replicaset>-<5 chars>`) with the template's labels and annotations, the
 *   `pod-template-hash` label and an ownerReference; the kubelet (`kubelet.ts`) runs them.
 * - Rolling update: when the template changes, the new ReplicaSet's pod is made first; the old
 *   ReplicaSets are scaled to 0 (their pods terminated) once it is ready.
 * - Pod creation goes through admission: a missing ServiceAccount or an exceeded ResourceQuota
 *   makes the ReplicaSet (and the Deployment) report `ReplicaFailure` / `FailedCreate` with the
 *   API server's message, and is retried.
 * - Garbage collection: ReplicaSets of a deleted Deployment and pods of a deleted ReplicaSet
 *   are deleted (their processes stopped).
 *
 * It runs by polling the store (every 200 ms), which keeps it simple and good enough for tests.
 *
 * @module
 */
import type { QuotaSpec } from "./config.ts";
import type { Kubelet } from "./kubelet.ts";
import { k8sTime, type KObject } from "./objects.ts";
import { admit } from "./quota.ts";
import type { Store } from "./store.ts";

const SAFE = "bcdfghjklmnpqrstvwxz2456789";

/** FNV-1a 32 of a string. */
function fnv32a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `rand.SafeEncodeString(fmt.Sprint(hash))`: the pod-template-hash of a template. */
export function podTemplateHash(template: unknown): string {
  const digits = String(fnv32a(JSON.stringify(template)));
  return [...digits].map((d) => SAFE[d.charCodeAt(0) % SAFE.length]).join("");
}

function randomSuffix(n = 5): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => SAFE[b % SAFE.length]).join("");
}

interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

function ownerOf(o: KObject): OwnerRef | undefined {
  return (o.metadata.ownerReferences as OwnerRef[] | undefined)?.find((r) => r.controller);
}

function ownerRef(o: KObject): OwnerRef {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    uid: o.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

interface Template {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

function podReady(p: KObject): boolean {
  const st = p.status as { phase?: string; conditions?: Condition[] } | undefined;
  return st?.phase === "Running" && !p.metadata.deletionTimestamp &&
    (st.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Deployment → ReplicaSet → Pod, with the kubelet running the pods. */
export class Controllers {
  readonly #store: Store;
  readonly #kubelet: Kubelet | null;
  readonly #quotas: QuotaSpec[];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #lastAttempt = new Map<string, number>();
  readonly #terminating = new Set<string>();
  #busy = false;

  constructor(store: Store, kubelet: Kubelet | null, quotas: QuotaSpec[]) {
    this.#store = store;
    this.#kubelet = kubelet;
    this.#quotas = quotas;
    this.#timer = setInterval(() => this.reconcile(), 200);
  }

  /** Stops reconciling and kills every pod process. */
  close(): void {
    clearInterval(this.#timer);
    this.#kubelet?.killAll();
  }

  /** Runs one pass now (also called after every write). */
  reconcile(): void {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const d of this.#store.list("deployments")) this.#deployment(d);
      this.#collectGarbage();
    } finally {
      this.#busy = false;
    }
  }

  #deployment(d: KObject): void {
    const ns = d.metadata.namespace!;
    const spec = d.spec as { replicas?: number; template: Template };
    const replicas = spec.replicas ?? 1;
    const hash = podTemplateHash(spec.template);
    const owned = this.#store.list("replicasets", ns).filter((rs) =>
      ownerOf(rs)?.uid === d.metadata.uid
    );
    let current = owned.find((rs) => rs.metadata.labels?.["pod-template-hash"] === hash);
    if (!current) {
      const s = this.#store.stamp();
      const revision = 1 +
        owned.reduce(
          (m, rs) =>
            Math.max(
              m,
              Number(rs.metadata.annotations?.["deployment.kubernetes.io/revision"] ?? 0),
            ),
          0,
        );
      const labels = { ...spec.template.metadata?.labels, "pod-template-hash": hash };
      current = {
        kind: "ReplicaSet",
        apiVersion: "apps/v1",
        metadata: {
          name: `${d.metadata.name}-${hash}`,
          namespace: ns,
          uid: s.uid,
          resourceVersion: s.resourceVersion,
          creationTimestamp: s.created,
          generation: 1,
          labels,
          annotations: {
            "deployment.kubernetes.io/desired-replicas": String(replicas),
            "deployment.kubernetes.io/max-replicas": String(replicas + 1),
            "deployment.kubernetes.io/revision": String(revision),
          },
          ownerReferences: [ownerRef(d)],
        },
        spec: {
          replicas,
          selector: { matchLabels: labels },
          template: {
            ...spec.template,
            metadata: { ...spec.template.metadata, labels },
          },
        },
        status: { replicas: 0, observedGeneration: 1 },
      };
      this.#store.create("replicasets", current);
      const ann = {
        ...d.metadata.annotations,
        "deployment.kubernetes.io/revision": String(revision),
      };
      d.metadata.annotations = ann;
    }
    const failure = this.#replicaSet(current, replicas);
    const pods = this.#podsOf(current).filter((p) => !p.metadata.deletionTimestamp);
    const ready = pods.filter(podReady).length;
    // Old ReplicaSets go to 0 once the new one is fully ready (maxUnavailable 0).
    let oldPods = 0;
    for (const rs of owned) {
      if (rs === current || rs.metadata.uid === current.metadata.uid) continue;
      const mine = this.#podsOf(rs);
      if (ready >= replicas) {
        for (const p of mine) this.#terminate(p);
        if ((rs.spec as { replicas?: number }).replicas !== 0) {
          (rs.spec as { replicas?: number }).replicas = 0;
          rs.status = { replicas: 0, observedGeneration: 1 };
          this.#store.update("replicasets", rs);
        }
      }
      oldPods += mine.filter((p) => !p.metadata.deletionTimestamp).length;
    }
    const now = k8sTime();
    const conditions: Condition[] = [];
    const prev = ((d.status as { conditions?: Condition[] })?.conditions) ?? [];
    const keep = (c: Condition) => {
      const old = prev.find((p) => p.type === c.type);
      const same = old && old.status === c.status && old.reason === c.reason &&
        old.message === c.message;
      conditions.push(
        same ? old! : {
          ...c,
          lastUpdateTime: now,
          lastTransitionTime: old?.status === c.status ? old.lastTransitionTime : now,
        },
      );
    };
    keep(
      ready >= replicas
        ? {
          type: "Available",
          status: "True",
          reason: "MinimumReplicasAvailable",
          message: "Deployment has minimum availability.",
        }
        : {
          type: "Available",
          status: "False",
          reason: "MinimumReplicasUnavailable",
          message: "Deployment does not have minimum availability.",
        },
    );
    keep({
      type: "Progressing",
      status: "True",
      reason: ready >= replicas && oldPods === 0 ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
      message: ready >= replicas && oldPods === 0
        ? `ReplicaSet "${current.metadata.name}" has successfully progressed.`
        : `ReplicaSet "${current.metadata.name}" is progressing.`,
    });
    if (failure) {
      keep({ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: failure });
    }
    const status = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: pods.length + oldPods,
      updatedReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(pods.length + oldPods - ready > 0
        ? { unavailableReplicas: Math.max(0, replicas - ready) }
        : {}),
      conditions,
    };
    if (JSON.stringify(status) !== JSON.stringify(d.status)) {
      d.status = status;
      this.#store.update("deployments", d);
    }
  }

  /** Makes the ReplicaSet's pods; returns the pod-creation failure message, if any. */
  #replicaSet(rs: KObject, replicas: number): string | null {
    const ns = rs.metadata.namespace!;
    const live = this.#podsOf(rs).filter((p) => !p.metadata.deletionTimestamp);
    const prevFailure = ((rs.status as { conditions?: Condition[] })?.conditions ?? [])
      .find((c) => c.type === "ReplicaFailure")?.message ?? null;
    if (live.length >= replicas) {
      this.#setRsStatus(rs, live, null);
      return null;
    }
    const key = `${ns}/${rs.metadata.name}`;
    const last = this.#lastAttempt.get(key) ?? 0;
    if (prevFailure !== null && Date.now() - last < 2_000) return prevFailure;
    this.#lastAttempt.set(key, Date.now());
    const template = (rs.spec as { template: Template }).template;
    const s = this.#store.stamp();
    const name = `${rs.metadata.name}-${randomSuffix()}`;
    const tspec = { ...template.spec } as Record<string, unknown>;
    const sa = String(tspec.serviceAccountName ?? "default");
    const pod: KObject = {
      kind: "Pod",
      apiVersion: "v1",
      metadata: {
        name,
        generateName: `${rs.metadata.name}-`,
        namespace: ns,
        uid: s.uid,
        resourceVersion: s.resourceVersion,
        creationTimestamp: s.created,
        labels: { ...template.metadata?.labels },
        ...(template.metadata?.annotations
          ? { annotations: { ...template.metadata.annotations } }
          : {}),
        ownerReferences: [ownerRef(rs)],
      },
      spec: {
        ...tspec,
        serviceAccountName: sa,
        serviceAccount: sa,
        nodeName: "node-1",
        restartPolicy: tspec.restartPolicy ?? "Always",
        dnsPolicy: tspec.dnsPolicy ?? "ClusterFirst",
        schedulerName: tspec.schedulerName ?? "default-scheduler",
        terminationGracePeriodSeconds: tspec.terminationGracePeriodSeconds ?? 30,
      },
      status: { phase: "Pending", qosClass: "Burstable" },
    };
    let failure: string | null = null;
    if (sa !== "default" && !this.#store.get("serviceaccounts", ns, sa)) {
      failure = `pods "${name}" is forbidden: error looking up service account ${ns}/${sa}: ` +
        `serviceaccount "${sa}" not found`;
    } else {
      const q = admit(this.#store, this.#quotas, "pods", "", pod);
      if (q !== null) failure = `pods "${name}" is forbidden: ${q}`;
    }
    if (failure !== null) {
      this.#setRsStatus(rs, live, failure);
      return failure;
    }
    this.#store.create("pods", pod);
    this.#setRsStatus(rs, [...live, pod], null);
    if (this.#kubelet) {
      this.#kubelet.run(pod, (cm) => this.#store.get("configmaps", ns, cm), (status) => {
        const cur = this.#store.get("pods", ns, name);
        if (!cur || cur.metadata.deletionTimestamp) return;
        cur.status = status;
        this.#store.update("pods", cur);
      });
    }
    return null;
  }

  #setRsStatus(rs: KObject, pods: KObject[], failure: string | null): void {
    const status: Record<string, unknown> = {
      replicas: pods.length,
      fullyLabeledReplicas: pods.length,
      readyReplicas: pods.filter(podReady).length,
      availableReplicas: pods.filter(podReady).length,
      observedGeneration: 1,
      ...(failure
        ? {
          conditions: [{
            type: "ReplicaFailure",
            status: "True",
            reason: "FailedCreate",
            message: failure,
            lastTransitionTime: k8sTime(),
          }],
        }
        : {}),
    };
    const strip = (s: unknown) =>
      JSON.stringify(s, (k, v) => k === "lastTransitionTime" ? undefined : v);
    if (strip(status) !== strip(rs.status)) {
      rs.status = status;
      this.#store.update("replicasets", rs);
    }
  }

  #podsOf(rs: KObject): KObject[] {
    return this.#store.list("pods", rs.metadata.namespace).filter((p) =>
      ownerOf(p)?.uid === rs.metadata.uid
    );
  }

  /** Graceful pod deletion: Terminating, process stopped, then gone. */
  #terminate(p: KObject): void {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    if (this.#terminating.has(key)) return;
    this.#terminating.add(key);
    p.metadata.deletionTimestamp = k8sTime(new Date(Date.now() + 10_000));
    p.metadata.deletionGracePeriodSeconds = 10;
    this.#store.update("pods", p);
    const done = () => {
      this.#store.delete("pods", p.metadata.namespace, p.metadata.name);
      this.#terminating.delete(key);
    };
    if (this.#kubelet) this.#kubelet.stop(key).finally(done);
    else setTimeout(done, 100);
  }

  #collectGarbage(): void {
    const uids = (resource: string) =>
      new Set(this.#store.list(resource).map((o) => o.metadata.uid));
    const deployments = uids("deployments");
    for (const rs of this.#store.list("replicasets")) {
      const owner = ownerOf(rs);
      if (owner?.kind === "Deployment" && !deployments.has(owner.uid)) {
        this.#store.delete("replicasets", rs.metadata.namespace, rs.metadata.name);
      }
    }
    const replicasets = uids("replicasets");
    for (const p of this.#store.list("pods")) {
      const owner = ownerOf(p);
      if (owner?.kind === "ReplicaSet" && !replicasets.has(owner.uid)) this.#terminate(p);
    }
  }

  /** Deletes everything in a namespace that is being deleted (pods stop). */
  deleteNamespaceContents(ns: string, resources: string[]): void {
    for (const resource of resources) {
      for (const o of this.#store.list(resource, ns)) {
        if (resource === "pods") this.#terminate(o);
        else this.#store.delete(resource, ns, o.metadata.name);
      }
    }
  }
}
