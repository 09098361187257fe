/**
 * Finding the traffic manager through the Kubernetes API: a running, ready pod with the
 * manager's label in the manager's namespace, and its tunnel port.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";

/** The label every traffic manager pod carries. */
export const MANAGER_SELECTOR = "app.kubernetes.io/name=kconnect-traffic-manager";
/** The namespace the manager lives in unless told otherwise. */
export const MANAGER_NAMESPACE = "kconnect";
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
}

interface Pod {
  metadata?: { name?: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec?: { containers?: { ports?: { name?: string; containerPort?: number }[] }[] };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type?: string; status?: string }[];
    containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[];
  };
}

function ready(p: Pod): boolean {
  return p.status?.phase === "Running" && !p.metadata?.deletionTimestamp &&
    (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function whyNotReady(p: Pod): string {
  const waiting = p.status?.containerStatuses?.map((c) => c.state?.waiting).find((w) => w);
  const phase = p.status?.phase ?? "unknown phase";
  if (p.metadata?.deletionTimestamp) return `${p.metadata.name} is being deleted`;
  return `${p.metadata?.name} is ${phase}${
    waiting ? ` (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""})` : ", not ready"
  }`;
}

/** No manager pod exists at all (as opposed to one that is not ready); `install` fixes it. */
export class NoTrafficManagerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NoTrafficManagerError";
  }
}

/** Finds a ready manager pod in `namespace`; errors say what to do. */
export async function findTrafficManager(
  client: KubeClient,
  namespace: string,
): Promise<ManagerPod> {
  let pods: { items?: Pod[] };
  try {
    pods = await client.get(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${
        encodeURIComponent(MANAGER_SELECTOR)
      }`,
    );
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 403) {
      throw new Error(
        `Cannot look for the traffic manager in namespace "${namespace}": ${err.message}. ` +
          `kconnect needs "list" on pods and "create" on pods/portforward in that namespace.`,
        { cause: err },
      );
    }
    throw err;
  }
  const items = pods.items ?? [];
  if (items.length === 0) {
    throw new NoTrafficManagerError(
      `No traffic manager found in namespace "${namespace}" (no pod labelled ${MANAGER_SELECTOR}). ` +
        "Install it in the cluster, or pass --manager-namespace if it runs elsewhere.",
    );
  }
  const pod = items.find(ready);
  if (pod === undefined) {
    throw new Error(
      `The traffic manager in namespace "${namespace}" is not ready: ${
        items.map(whyNotReady).join("; ")
      }`,
    );
  }
  const ports = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  const port = ports.find((p) => p.name === TUNNEL_PORT_NAME)?.containerPort ?? DEFAULT_TUNNEL_PORT;
  return {
    namespace,
    name: pod.metadata?.name ?? "",
    ip: pod.status?.podIP ?? "",
    port,
    version: pod.metadata?.labels?.["app.kubernetes.io/version"] ?? null,
  };
}
