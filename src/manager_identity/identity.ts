/**
 * Which pods and objects are kconnect's traffic manager: the names, labels and annotations that
 * `kconnect install` writes and that the client looks for, the tunnel port, whether a pod is
 * ready, and a pod as a port-forward target ({@linkcode ManagerPod}). The one definition that
 * `install`, `up` (finding and reconnecting), the config file and the command line share.
 *
 * @example
 * ```ts
 * import { managerPodOf, podReady } from "./identity.ts";
 * const pod = {
 *   metadata: { name: "kconnect-traffic-manager-7d9f-x2" },
 *   spec: { containers: [{ ports: [{ name: "tunnel", containerPort: 8081 }] }] },
 *   status: {
 *     phase: "Running",
 *     podIP: "10.244.0.9",
 *     conditions: [{ type: "Ready", status: "True" }],
 *   },
 * };
 * podReady(pod); // true
 * managerPodOf(pod, "kconnect").port; // 8081
 * ```
 *
 * @module
 */

/** The namespace the manager lives in unless told otherwise. */
export const MANAGER_NAMESPACE = "kconnect";
/** Name of the Deployment `kconnect install` creates and of its other namespaced objects. */
export const MANAGER_NAME = "kconnect-traffic-manager";
/** The label naming the application. */
export const NAME_LABEL = "app.kubernetes.io/name";
/** Its value on every manager object and pod. */
export const APP_NAME = "kconnect-traffic-manager";
/** The label every traffic manager pod carries, as a selector. */
export const MANAGER_SELECTOR = `${NAME_LABEL}=${APP_NAME}`;
/** Label marking what kconnect installed. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Its value. */
export const MANAGED_BY = "kconnect";
/** Label holding the client version that installed an object (and so the manager's version). */
export const VERSION_LABEL = "app.kubernetes.io/version";
/** Annotation: sha256 of the manager bundle (on the ConfigMap, Deployment and pod template). */
export const BUNDLE_SHA256_ANNOTATION = "kconnect.io/bundle-sha256";
/** Name of the container port the manager listens on. */
export const TUNNEL_PORT_NAME = "tunnel";
/** Port used when the pod names none. */
export const DEFAULT_TUNNEL_PORT = 8081;

/** The manager pod to port-forward to. */
export interface ManagerPod {
  namespace: string;
  name: string;
  ip: string;
  port: number;
  /** `app.kubernetes.io/version` label, when set. */
  version: string | null;
  /** The `kconnect.io/bundle-sha256` annotation: the manager code it runs, when known. */
  bundleSha256?: string | null;
}

/** A controller reference in an object's `metadata.ownerReferences`. */
export interface OwnerRef {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

/** A pod as the API returns it (what kconnect reads of one). */
export interface PodObject {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerRef[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec?: {
    containers?: {
      name?: string;
      image?: string;
      ports?: { name?: string; containerPort?: number }[];
    }[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    reason?: string;
    message?: string;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
    containerStatuses?: {
      name?: string;
      image?: string;
      ready?: boolean;
      restartCount?: number;
      state?: {
        waiting?: { reason?: string; message?: string };
        running?: { startedAt?: string };
        terminated?: { reason?: string; message?: string; exitCode?: number };
      };
      lastState?: { terminated?: { reason?: string; message?: string; exitCode?: number } };
    }[];
  };
}

/** True when the pod is Running and Ready and not being deleted. */
export function podReady(p: PodObject): boolean {
  return p.status?.phase === "Running" && !p.metadata?.deletionTimestamp &&
    (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** The pod as a port-forward target: its tunnel port, version and bundle. */
export function managerPodOf(p: PodObject, namespace: string): ManagerPod {
  const ports = (p.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  return {
    namespace,
    name: p.metadata?.name ?? "",
    ip: p.status?.podIP ?? "",
    port: ports.find((x) => x.name === TUNNEL_PORT_NAME)?.containerPort ?? DEFAULT_TUNNEL_PORT,
    version: p.metadata?.labels?.[VERSION_LABEL] ?? null,
    bundleSha256: p.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION] ?? null,
  };
}
