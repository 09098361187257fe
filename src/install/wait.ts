/**
 * Waiting for the traffic manager's Deployment to run a ready pod of the wanted version, with
 * progress, and failing early with the cluster's own words when it cannot: an image that cannot
 * be pulled, a crashing container, a ResourceQuota or a missing ServiceAccount that keeps the
 * ReplicaSet from creating the pod, or a timeout (with the pod's phase and conditions).
 *
 * @module
 */
import type { Progress } from "../log.ts";
import {
  BUNDLE_SHA256_ANNOTATION,
  MANAGER_NAME,
  MANAGER_SELECTOR,
  type ManagerPod,
  managerPodOf,
  type PodObject,
  podReady,
  VERSION_LABEL,
} from "../manager_identity/identity.ts";
import type { KubeClient } from "../k8s/client.ts";
import { getObject, InstallError } from "./apply.ts";
import { RESOURCES } from "./manifests.ts";

interface DeploymentObject {
  metadata: { name: string; generation?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
  };
}

/** Which pods count: those of this version and bundle. */
export interface RolloutTarget {
  namespace: string;
  version: string;
  bundleSha256: string;
  /** The container image (pods of an earlier template with another image do not count). */
  image: string;
}

/** Options of {@linkcode waitForManagerPod}. */
export interface WaitOptions {
  /** Default 180 s. */
  timeoutMs?: number;
  /** Poll interval. Default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

const IMAGE_ERRORS = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "RegistryUnavailable",
]);
const FATAL_WAITING = new Set([
  "CrashLoopBackOff",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

/** `Pending (ContainerCreating)`, `Running, not ready (Ready=False: …)`. */
export function describePod(p: PodObject): string {
  const phase = p.status?.phase ?? "Pending";
  if (p.metadata.deletionTimestamp) return `${phase}, terminating`;
  const cs = p.status?.containerStatuses ?? [];
  const waiting = cs.map((c) => c.state?.waiting).find((w) => w?.reason);
  if (waiting) {
    return `${phase} (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""})`;
  }
  const terminated = cs.map((c) => c.state?.terminated).find((t) => t);
  if (terminated) {
    return `${phase} (container terminated: ${terminated.reason ?? "exit"} ${
      terminated.exitCode ?? ""
    }${terminated.message ? `: ${terminated.message}` : ""})`;
  }
  if (podReady(p)) return "Running, ready";
  const conds = (p.status?.conditions ?? [])
    .filter((c) => c.status !== "True")
    .map((c) =>
      `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ""}${c.message ? `: ${c.message}` : ""}`
    );
  if (phase === "Pending" && (p.status?.conditions ?? []).length === 0) {
    return "Pending (not scheduled yet)";
  }
  return conds.length ? `${phase}, not ready (${conds.join("; ")})` : `${phase}, not ready`;
}

/** Throws an InstallError when the pod cannot become ready by waiting. */
function checkFatal(p: PodObject, namespace: string): void {
  const where = `${namespace}/${p.metadata.name}`;
  for (const c of p.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (!w?.reason) continue;
    const image = c.image ??
      p.spec?.containers?.find((x) => x.name === c.name)?.image ?? "the image";
    if (IMAGE_ERRORS.has(w.reason)) {
      throw new InstallError(
        `The traffic manager's pod ${where} cannot start: the cluster cannot pull its image ` +
          `"${image}" (${w.reason}${w.message ? `: ${w.message}` : ""}). The nodes must be able ` +
          `to pull it; on a cluster without access to Docker Hub, copy the image to a registry ` +
          `the nodes can reach and pass --image <registry>/denoland/deno:<version>.`,
      );
    }
    if (FATAL_WAITING.has(w.reason)) {
      const last = c.lastState?.terminated;
      throw new InstallError(
        `The traffic manager's pod ${where} cannot start: ${w.reason}${
          w.message ? `: ${w.message}` : ""
        }${
          last
            ? ` (last exit: ${last.reason ?? ""} code ${last.exitCode ?? "?"}${
              last.message ? `: ${last.message}` : ""
            })`
            : ""
        }. See: kubectl logs -n ${namespace} ${p.metadata.name}`,
      );
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The manager's pods in `namespace`. */
export async function listManagerPods(
  client: KubeClient,
  namespace: string,
  signal?: AbortSignal,
): Promise<PodObject[]> {
  const list = await client.get<{ items?: PodObject[] }>(
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${
      encodeURIComponent(MANAGER_SELECTOR)
    }`,
    { signal },
  );
  return list.items ?? [];
}

/**
 * Waits until a pod of `target`'s version and bundle is Running and Ready, reporting each change
 * of its state, and returns it. Then waits a little (at most 30 s) for pods of older versions to
 * go, so that a client looking for the manager finds only the new one.
 */
export async function waitForManagerPod(
  client: KubeClient,
  target: RolloutTarget,
  progress: Progress,
  options: WaitOptions = {},
): Promise<ManagerPod> {
  const { namespace } = target;
  const timeoutMs = options.timeoutMs ?? 180_000;
  const interval = options.intervalMs ?? 500;
  const deadline = Date.now() + timeoutMs;
  const deployRef = RESOURCES.Deployment;
  let lastReport = "";
  let last: PodObject | null = null;
  let lastDeploy: DeploymentObject | null = null;
  const report = (text: string) => {
    if (text !== lastReport) progress.detail(text);
    lastReport = text;
  };
  const ours = (p: PodObject) =>
    p.metadata.labels?.[VERSION_LABEL] === target.version &&
    p.metadata.annotations?.[BUNDLE_SHA256_ANNOTATION] === target.bundleSha256 &&
    p.spec?.containers?.[0]?.image === target.image &&
    !p.metadata.deletionTimestamp;
  let ready: PodObject | null = null;
  while (ready === null) {
    const deploy = await getObject(client, deployRef, MANAGER_NAME, namespace, options.signal) as
      | DeploymentObject
      | null;
    if (deploy === null) {
      throw new InstallError(
        `The Deployment ${namespace}/${MANAGER_NAME} disappeared while waiting for its pod`,
      );
    }
    lastDeploy = deploy;
    const pods = (await listManagerPods(client, namespace, options.signal)).filter(ours);
    pods.sort((a, b) => Number(podReady(b)) - Number(podReady(a)));
    last = pods[0] ?? null;
    if (last && podReady(last)) {
      ready = last;
      break;
    }
    if (last) {
      checkFatal(last, namespace);
      report(
        `waiting for the pod ${namespace}/${last.metadata.name} to be ready: ${describePod(last)}`,
      );
    } else {
      report(`waiting for Deployment ${namespace}/${MANAGER_NAME} to create its pod`);
      const failure = (deploy.status?.conditions ?? []).find((c) =>
        c.type === "ReplicaFailure" && c.status === "True"
      );
      if (failure) {
        const quota = /exceeded quota/.test(failure.message ?? "");
        throw new InstallError(
          `The traffic manager's pod cannot be created in namespace "${namespace}": ` +
            `${failure.reason ?? "ReplicaFailure"}: ${failure.message ?? ""}${
              quota
                ? ". A ResourceQuota refuses it: ask the cluster's administrator to raise the " +
                  "quota, or install into another namespace with --manager-namespace."
                : ""
            }`,
        );
      }
    }
    if (Date.now() >= deadline) {
      const seconds = Math.round(timeoutMs / 1000);
      if (last) {
        throw new InstallError(
          `The traffic manager did not become ready within ${seconds} s: pod ${namespace}/${last.metadata.name} is ${
            describePod(last)
          }; conditions: ${
            (last.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(", ") ||
            "none"
          }. See: kubectl describe pod -n ${namespace} ${last.metadata.name}`,
        );
      }
      const conds = (lastDeploy?.status?.conditions ?? [])
        .map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ""}`).join(", ");
      throw new InstallError(
        `The traffic manager did not become ready within ${seconds} s: Deployment ` +
          `${namespace}/${MANAGER_NAME} has no pod of version ${target.version} yet` +
          `${
            conds ? `; conditions: ${conds}` : ""
          }. See: kubectl describe deployment -n ${namespace} ${MANAGER_NAME}`,
      );
    }
    await sleep(interval, options.signal);
  }
  // Let the rollout finish: older pods terminate once the new one is ready.
  const oldDeadline = Math.min(deadline, Date.now() + 30_000);
  for (;;) {
    const others = (await listManagerPods(client, namespace, options.signal))
      .filter((p) => p.metadata.name !== ready!.metadata.name);
    if (others.length === 0) break;
    report(
      `waiting for ${others.length} older pod${others.length === 1 ? "" : "s"} to go: ${
        others.map((p) => p.metadata.name).join(", ")
      }`,
    );
    if (Date.now() >= oldDeadline) break;
    await sleep(interval, options.signal);
  }
  return managerPodOf(ready, namespace);
}
