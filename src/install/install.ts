/**
 * `kconnect install` and `kconnect uninstall` as library functions: put the traffic manager in a
 * cluster (namespace, ServiceAccount, RBAC, the code in a ConfigMap, a Deployment), wait until
 * its pod is ready, and take it all out again.
 *
 * Installing is idempotent: each object is created, updated in place, or left alone when it is
 * already as wanted (see `apply.ts`); an install over an older version is the upgrade.
 *
 * @module
 */
import type { Progress } from "../log.ts";
import {
  BUNDLE_SHA256_ANNOTATION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGER_NAME,
  type ManagerPod,
  VERSION_LABEL,
} from "../manager_identity/identity.ts";
import type { KubeClient } from "../k8s/client.ts";
import { VERSION } from "../version.ts";
import {
  applyObject,
  type ApplyOutcome,
  deleteObject,
  getObject,
  InstallError,
  type ServerObject,
} from "./apply.ts";
import { type ManagerBundle, managerBundle } from "./bundle.ts";
import {
  clusterRbacName,
  CONFIGMAP_LIMIT,
  CREATED_NAMESPACE_ANNOTATION,
  describeRbac,
  type ManagerManifests,
  managerManifests,
  RESOURCES,
} from "./manifests.ts";
import { listManagerPods, waitForManagerPod } from "./wait.ts";

/** Options of {@linkcode installTrafficManager}. */
export interface InstallOptions {
  client: KubeClient;
  /** The manager's namespace. */
  namespace: string;
  progress: Progress;
  /** Image instead of `denoland/deno:<the client's Deno version>`. */
  image?: string;
  /** Version to label the objects with. Default the client's. */
  version?: string;
  /** The bundle. Default {@linkcode managerBundle}(). */
  bundle?: ManagerBundle;
  /** Deno version for the image tag. Default the running Deno's (a binary's: its build's). */
  denoVersion?: string;
  /** How long to wait for the pod. Default 180 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What an install did. */
export interface InstallResult {
  /** True when any object was created or updated. */
  changed: boolean;
  /** The ready manager pod. */
  pod: ManagerPod;
  manifests: ManagerManifests;
}

function kib(bytes: number): string {
  return `${Math.ceil(bytes / 1024)} KiB`;
}

function summarize(outcomes: ApplyOutcome[]): string {
  if (outcomes.every((o) => o === "unchanged")) return "up to date";
  if (outcomes.every((o) => o === "created")) return "created";
  return outcomes.includes("created") ? "created/updated" : "updated";
}

/** Reads the namespace; creates it (labelled as kconnect's) when missing. */
async function ensureNamespace(
  o: InstallOptions,
  m: ManagerManifests,
): Promise<"created" | "exists" | "ours"> {
  const ref = RESOURCES.Namespace;
  const live = await getObject(o.client, ref, o.namespace, undefined, o.signal);
  if (live !== null) {
    if (live.metadata.deletionTimestamp) {
      throw new InstallError(
        `Namespace "${o.namespace}" is being deleted (an uninstall is still finishing?); ` +
          "wait until it is gone, then install again",
      );
    }
    return live.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY ? "ours" : "exists";
  }
  const result = await applyObject(o.client, m.namespace, o.signal);
  return result.outcome === "created" ? "created" : "ours";
}

/**
 * Installs (or upgrades, or confirms) the traffic manager and waits until its pod is ready.
 * Each step is reported to `progress`.
 */
export async function installTrafficManager(o: InstallOptions): Promise<InstallResult> {
  const { client, namespace, progress } = o;
  const bundle = o.bundle ?? await managerBundle();
  const size = new TextEncoder().encode(bundle.code).length;
  if (size > CONFIGMAP_LIMIT) {
    throw new InstallError(
      `The traffic-manager bundle (${bundle.source}) is ${kib(size)}, more than a ConfigMap ` +
        `holds (1 MiB)`,
    );
  }
  const version = o.version ?? VERSION;
  const m = await managerManifests({
    namespace,
    version,
    bundle: bundle.code,
    denoVersion: o.denoVersion ?? Deno.version.deno,
    image: o.image,
  });

  const ns = await ensureNamespace(o, m);
  progress.done(
    "namespace",
    `${namespace} (${
      ns === "created" ? "created" : ns === "ours" ? "exists, created by kconnect" : "exists"
    })`,
  );

  const rbac: ApplyOutcome[] = [];
  for (
    const obj of [m.serviceAccount, m.clusterRole, m.clusterRoleBinding, m.role, m.roleBinding]
  ) {
    rbac.push((await applyObject(client, obj, o.signal)).outcome);
  }
  progress.done(
    "RBAC",
    `${describeRbac(m)} (${summarize(rbac)})`,
  );

  const cm = (await applyObject(client, m.configMap, o.signal)).outcome;
  progress.done(
    "manager code",
    `ConfigMap ${MANAGER_NAME}, ${kib(size)}, sha256 ${bundle.sha256.slice(0, 12)} (${
      summarize([cm])
    })`,
  );

  const before = await getObject(client, RESOURCES.Deployment, MANAGER_NAME, namespace, o.signal);
  const oldVersion = before ? templateVersion(before) : null;
  const dep = (await applyObject(client, m.deployment, o.signal)).outcome;
  const image = m.deployment.spec.template.spec.containers[0].image;
  progress.done(
    "Deployment",
    `${MANAGER_NAME}, image ${image}, version ${version} (${
      dep === "updated" && oldVersion && oldVersion !== version
        ? `updated from ${oldVersion}`
        : summarize([dep])
    })`,
  );

  const pod = await waitForManagerPod(
    client,
    { namespace, version, bundleSha256: bundle.sha256, image },
    progress,
    { timeoutMs: o.timeoutMs, signal: o.signal },
  );
  progress.done(
    "traffic manager ready",
    `${namespace}/${pod.name}${pod.ip ? ` (${pod.ip})` : ""}, version ${version}`,
  );
  const changed = ns === "created" || [...rbac, cm, dep].some((x) => x !== "unchanged");
  return { changed, pod, manifests: m };
}

/** The version label of a Deployment's pod template. */
export function templateVersion(d: ServerObject): string | null {
  const spec = d.spec as { template?: { metadata?: { labels?: Record<string, string> } } };
  return spec?.template?.metadata?.labels?.[VERSION_LABEL] ?? null;
}

/** The bundle annotation of a Deployment's pod template. */
export function templateBundle(d: ServerObject): string | null {
  const spec = d.spec as {
    template?: { metadata?: { annotations?: Record<string, string> } };
  };
  return spec?.template?.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION] ?? null;
}

/** Options of {@linkcode uninstallTrafficManager}. */
export interface UninstallOptions {
  client: KubeClient;
  namespace: string;
  progress: Progress;
  /** How long to wait for the pods to go. Default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What an uninstall deleted (`Kind namespace/name`) and what it left. */
export interface UninstallResult {
  deleted: string[];
  /** Objects that were not there. */
  absent: string[];
  /** A namespace kconnect did not create, kept. */
  keptNamespace: string | null;
}

/**
 * Deletes everything `install` creates, by name: the Deployment (and, through the garbage
 * collector, its ReplicaSets and pods, which it waits for), the ConfigMap, the RBAC objects, the
 * ServiceAccount, and the namespace when kconnect created it. Objects not labelled as kconnect's
 * are left alone.
 */
export async function uninstallTrafficManager(o: UninstallOptions): Promise<UninstallResult> {
  const { client, namespace, progress } = o;
  const result: UninstallResult = { deleted: [], absent: [], keptNamespace: null };
  const steps: [kind: string, name: string, ns?: string][] = [
    ["Deployment", MANAGER_NAME, namespace],
    ["ConfigMap", MANAGER_NAME, namespace],
    ["RoleBinding", MANAGER_NAME, namespace],
    ["Role", MANAGER_NAME, namespace],
    ["ClusterRoleBinding", clusterRbacName(namespace)],
    ["ClusterRole", clusterRbacName(namespace)],
    ["ServiceAccount", MANAGER_NAME, namespace],
  ];
  const nsObj = await getObject(client, RESOURCES.Namespace, namespace, undefined, o.signal);
  for (const [kind, name, ns] of steps) {
    const label = `${kind} ${ns ? `${ns}/` : ""}${name}`;
    if (ns && nsObj === null) {
      result.absent.push(label);
      continue;
    }
    const live = await getObject(client, RESOURCES[kind], name, ns, o.signal);
    if (live === null) {
      result.absent.push(label);
      continue;
    }
    if (live.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
      progress.warn(
        `${label} was not created by kconnect (no ${MANAGED_BY_LABEL}=${MANAGED_BY}); left alone`,
      );
      continue;
    }
    if (await deleteObject(client, kind, name, ns, o.signal)) {
      result.deleted.push(label);
      progress.done("deleted", label);
    } else result.absent.push(label);
    if (kind === "Deployment") await waitPodsGone(o);
  }
  if (nsObj !== null) {
    const ours = nsObj.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY &&
      nsObj.metadata.annotations?.[CREATED_NAMESPACE_ANNOTATION] !== undefined;
    if (ours) {
      await deleteObject(client, "Namespace", namespace, undefined, o.signal);
      result.deleted.push(`Namespace ${namespace}`);
      progress.done("deleted", `Namespace ${namespace}`);
    } else {
      result.keptNamespace = namespace;
      progress.detail(`namespace ${namespace} existed before kconnect install: kept`);
    }
  } else result.absent.push(`Namespace ${namespace}`);
  return result;
}

async function waitPodsGone(o: UninstallOptions): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let reported = false;
  for (;;) {
    let pods;
    try {
      pods = await listManagerPods(o.client, o.namespace, o.signal);
    } catch (err) {
      // May not list pods: the garbage collector does its work anyway.
      o.progress.warn(`cannot check that the manager's pods are gone: ${(err as Error).message}`);
      return;
    }
    const ours = pods.filter((p) => p.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY);
    if (ours.length === 0) return;
    if (!reported) {
      o.progress.detail(
        `waiting for the pod${ours.length === 1 ? "" : "s"} ${
          ours.map((p) => p.metadata.name).join(", ")
        } to go`,
      );
      reported = true;
    }
    if (Date.now() >= deadline) {
      o.progress.warn(`pods still terminating: ${ours.map((p) => p.metadata.name).join(", ")}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
