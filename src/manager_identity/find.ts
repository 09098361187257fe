/**
 * Finding the traffic manager through the Kubernetes API: a running, ready pod with the
 * manager's label in the manager's namespace, and its tunnel port.
 *
 * A label is no identity: anyone who may create pods in the namespace can label one. When
 * `kconnect install` put the manager there (its Deployment carries
 * `app.kubernetes.io/managed-by=kconnect`), only a pod that Deployment runs is taken: its
 * controller is a ReplicaSet `<deployment>-<pod-template-hash>` owned by the Deployment (uids
 * compared when the ReplicaSet may be read), and it carries the `kconnect.io/bundle-sha256`
 * annotation of its ReplicaSet's template. Other labelled pods are refused, and with none left
 * the error names them. During a rollout the pod running the Deployment's current code is
 * preferred; an older one (another version: `up` upgrades it, or keeps it with `--no-upgrade`)
 * is still the Deployment's own and is taken. A manager kconnect did not install (no such
 * Deployment), or one whose Deployment may not be read, is taken with a warning that kconnect
 * cannot check it.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import {
  BUNDLE_SHA256_ANNOTATION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGER_NAME,
  MANAGER_NAMESPACE,
  MANAGER_SELECTOR,
  type ManagerPod,
  managerPodOf,
  type OwnerRef,
  type PodObject,
  podReady,
} from "./identity.ts";

function whyNotReady(p: PodObject): string {
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

/** A labelled pod is there, but none that kconnect's own Deployment runs. */
export class UntrustedManagerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UntrustedManagerError";
  }
}

/** Options of {@linkcode findTrafficManager}. */
export interface FindManagerOptions {
  /** Told when the manager cannot be checked (not installed by kconnect, or unreadable). */
  warn?: (message: string) => void;
  /** The pod to take when it passes the checks and is ready (the one an install waited for). */
  prefer?: string;
  signal?: AbortSignal;
}

interface Controller {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: OwnerRef[];
  };
  spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
}

async function getOrNull<T>(
  client: KubeClient,
  path: string,
  signal?: AbortSignal,
): Promise<T | number> {
  try {
    return await client.get<T>(path, { signal, timeoutMs: 30_000 });
  } catch (err) {
    if (err instanceof KubeApiError && (err.code === 404 || err.code === 403)) return err.code;
    throw err;
  }
}

function controllerOf(p: PodObject): OwnerRef | undefined {
  return p.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/**
 * Why `pod` is not one the kconnect Deployment `deploy` runs, or null when it is. Reads the
 * pod's ReplicaSet (when allowed) to compare uids and the template's bundle annotation.
 */
async function notOurs(
  client: KubeClient,
  namespace: string,
  deploy: Controller,
  pod: PodObject,
  replicaSets: Map<string, Controller | number>,
  signal?: AbortSignal,
): Promise<string | null> {
  const owner = controllerOf(pod);
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  const dname = deploy.metadata?.name ?? MANAGER_NAME;
  if (owner === undefined) return "it has no controller (a bare pod)";
  if (owner.kind !== "ReplicaSet" || !hash || owner.name !== `${dname}-${hash}`) {
    return `its controller is ${owner.kind ?? "?"} ${owner.name ?? "?"}, not a ReplicaSet of ` +
      `Deployment ${dname}`;
  }
  const bundle = pod.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION];
  if (!bundle || !/^[0-9a-f]{64}$/.test(bundle)) {
    return `it has no ${BUNDLE_SHA256_ANNOTATION} annotation`;
  }
  let rs = replicaSets.get(owner.name);
  if (rs === undefined) {
    rs = await getOrNull<Controller>(
      client,
      `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets/${
        encodeURIComponent(owner.name)
      }`,
      signal,
    );
    replicaSets.set(owner.name, rs);
  }
  if (rs === 403) return null; // may not read ReplicaSets: the names above are what is known
  if (rs === 404 || typeof rs === "number") return `its ReplicaSet ${owner.name} does not exist`;
  if (owner.uid && rs.metadata?.uid && owner.uid !== rs.metadata.uid) {
    return `its owner's uid is not ReplicaSet ${owner.name}'s`;
  }
  const rsOwner = rs.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (
    rsOwner?.kind !== "Deployment" || rsOwner.name !== dname ||
    (deploy.metadata?.uid !== undefined && rsOwner.uid !== deploy.metadata.uid)
  ) {
    return `ReplicaSet ${owner.name} is not owned by Deployment ${dname}`;
  }
  const want = rs.spec?.template?.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION];
  if (want !== bundle) {
    return `its ${BUNDLE_SHA256_ANNOTATION} (${bundle.slice(0, 12)}) is not its ReplicaSet's ` +
      `(${(want ?? "none").slice(0, 12)})`;
  }
  return null;
}

/**
 * Finds a ready manager pod in `namespace`, checking that it is the one kconnect installed (see
 * the module doc); errors say what to do.
 */
export async function findTrafficManager(
  client: KubeClient,
  namespace: string,
  options: FindManagerOptions = {},
): Promise<ManagerPod> {
  let pods: { items?: PodObject[] };
  try {
    pods = await client.get(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${
        encodeURIComponent(MANAGER_SELECTOR)
      }`,
      { signal: options.signal },
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
  const ns = encodeURIComponent(namespace);
  const deploy = await getOrNull<Controller>(
    client,
    `/apis/apps/v1/namespaces/${ns}/deployments/${MANAGER_NAME}`,
    options.signal,
  );
  let candidates = items;
  let current: string | undefined;
  if (typeof deploy !== "number" && deploy.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) {
    const replicaSets = new Map<string, Controller | number>();
    const refused: string[] = [];
    candidates = [];
    for (const p of items) {
      const why = await notOurs(client, namespace, deploy, p, replicaSets, options.signal);
      if (why === null) candidates.push(p);
      else refused.push(`${namespace}/${p.metadata?.name}: ${why}`);
    }
    if (candidates.length === 0) {
      throw new UntrustedManagerError(
        `Refusing the pods labelled ${MANAGER_SELECTOR} in namespace "${namespace}": none is ` +
          `run by the traffic manager's Deployment ${namespace}/${MANAGER_NAME} (${
            refused.join("; ")
          }). A pod that only carries the label may be anyone's: delete it, or run ` +
          `kconnect install${
            namespace === MANAGER_NAMESPACE ? "" : ` --manager-namespace ${namespace}`
          } to restore the traffic manager.`,
      );
    }
    current = deploy.spec?.template?.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION];
  } else {
    const name = items.find(podReady)?.metadata?.name ?? items[0].metadata?.name;
    options.warn?.(
      deploy === 403
        ? `cannot read Deployment ${namespace}/${MANAGER_NAME} to check that the traffic ` +
          `manager pod ${namespace}/${name} is kconnect's own`
        : `traffic manager pod ${namespace}/${name} does not belong to a Deployment that ` +
          "kconnect install made: kconnect cannot check which code it runs",
    );
  }
  const readyOnes = candidates.filter(podReady);
  const pod = readyOnes.find((p) => options.prefer && p.metadata?.name === options.prefer) ??
    readyOnes.find((p) =>
      current !== undefined && p.metadata?.annotations?.[BUNDLE_SHA256_ANNOTATION] === current
    ) ?? readyOnes[0];
  if (pod === undefined) {
    throw new Error(
      `The traffic manager in namespace "${namespace}" is not ready: ${
        candidates.map(whyNotReady).join("; ")
      }`,
    );
  }
  return managerPodOf(pod, namespace);
}
