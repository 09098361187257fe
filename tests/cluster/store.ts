/**
 * The stand-in's "etcd": objects by resource, a global resourceVersion, and watchers.
 *
 * @module
 */
import type { ApiServerConfig } from "./config.ts";
import {
  k8sTime,
  type KObject,
  namespaceObject,
  nodeObject,
  podObject,
  serviceCIDRObject,
  serviceObject,
  type Stamp,
} from "./objects.ts";

/** How a resource is stored and listed. */
export interface ResourceInfo {
  /** `""` for core. */
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
}

/** The resources the stand-in stores (others under a served group/version are unknown). */
export function resourceTable(serviceCIDRApi: boolean): Record<string, ResourceInfo> {
  const core = (kind: string, namespaced: boolean): ResourceInfo => ({
    group: "",
    version: "v1",
    kind,
    namespaced,
  });
  const net = (kind: string, namespaced: boolean): ResourceInfo => ({
    group: "networking.k8s.io",
    version: "v1",
    kind,
    namespaced,
  });
  const table: Record<string, ResourceInfo> = {
    configmaps: core("ConfigMap", true),
    endpoints: core("Endpoints", true),
    events: core("Event", true),
    namespaces: core("Namespace", false),
    nodes: core("Node", false),
    pods: core("Pod", true),
    secrets: core("Secret", true),
    serviceaccounts: core("ServiceAccount", true),
    services: core("Service", true),
    ingressclasses: net("IngressClass", false),
    ingresses: net("Ingress", true),
    networkpolicies: net("NetworkPolicy", true),
  };
  const apps = (kind: string): ResourceInfo => ({
    group: "apps",
    version: "v1",
    kind,
    namespaced: true,
  });
  const rbac = (kind: string, namespaced: boolean): ResourceInfo => ({
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind,
    namespaced,
  });
  Object.assign(table, {
    resourcequotas: core("ResourceQuota", true),
    deployments: apps("Deployment"),
    replicasets: apps("ReplicaSet"),
    clusterroles: rbac("ClusterRole", false),
    clusterrolebindings: rbac("ClusterRoleBinding", false),
    roles: rbac("Role", true),
    rolebindings: rbac("RoleBinding", true),
  });
  if (serviceCIDRApi) {
    table.servicecidrs = net("ServiceCIDR", false);
    table.ipaddresses = net("IPAddress", false);
  }
  return table;
}

/** A watch event as the API server streams it. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KObject;
}

interface Watcher {
  resource: string;
  namespace?: string;
  send: (event: WatchEvent) => void;
}

/** Objects by resource and `namespace/name`. */
export class Store {
  #rv = 1000;
  readonly #data = new Map<string, Map<string, KObject>>();
  readonly #watchers = new Set<Watcher>();

  constructor(config: ApiServerConfig) {
    const add = (resource: string, o: KObject) => this.#put(resource, o);
    for (const ns of new Set(["default", "kube-system", "kube-public", ...config.namespaces])) {
      add("namespaces", namespaceObject(ns, this.stamp()));
    }
    for (const n of config.nodes) add("nodes", nodeObject(n, this.stamp(), config.version));
    for (const p of config.pods) add("pods", podObject(p, this.stamp()));
    for (const s of config.services) add("services", serviceObject(s, this.stamp()));
    if (config.serviceCIDRApi) {
      add("servicecidrs", serviceCIDRObject("kubernetes", config.serviceCIDRs, this.stamp()));
    }
  }

  /** Fresh uid, next resourceVersion, now. */
  stamp(): Stamp {
    return { uid: crypto.randomUUID(), resourceVersion: String(++this.#rv), created: k8sTime() };
  }

  /** The current resourceVersion, for list metadata. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  #put(resource: string, o: KObject): void {
    let m = this.#data.get(resource);
    if (!m) this.#data.set(resource, m = new Map());
    m.set(`${o.metadata.namespace ?? ""}/${o.metadata.name}`, o);
  }

  /** Objects of `resource`, in one namespace or all. */
  list(resource: string, namespace?: string): KObject[] {
    const all = [...(this.#data.get(resource)?.values() ?? [])];
    return namespace ? all.filter((o) => o.metadata.namespace === namespace) : all;
  }

  /** One object, or undefined. */
  get(resource: string, namespace: string | undefined, name: string): KObject | undefined {
    return this.#data.get(resource)?.get(`${namespace ?? ""}/${name}`);
  }

  /** Stores a new object and tells watchers. */
  create(resource: string, o: KObject): void {
    this.#put(resource, o);
    this.#notify(resource, { type: "ADDED", object: o });
  }

  /** Replaces a stored object (bumping its resourceVersion) and tells watchers. */
  update(resource: string, o: KObject): KObject {
    o.metadata.resourceVersion = String(++this.#rv);
    this.#put(resource, o);
    this.#notify(resource, { type: "MODIFIED", object: o });
    return o;
  }

  /** Removes an object and tells watchers; returns it. */
  delete(resource: string, namespace: string | undefined, name: string): KObject | undefined {
    const key = `${namespace ?? ""}/${name}`;
    const o = this.#data.get(resource)?.get(key);
    if (!o) return undefined;
    this.#data.get(resource)!.delete(key);
    o.metadata.resourceVersion = String(++this.#rv);
    this.#notify(resource, { type: "DELETED", object: o });
    return o;
  }

  /** Registers a watcher; call the returned function to stop it. */
  watch(resource: string, namespace: string | undefined, send: Watcher["send"]): () => void {
    const w: Watcher = { resource, namespace, send };
    this.#watchers.add(w);
    return () => this.#watchers.delete(w);
  }

  #notify(resource: string, event: WatchEvent): void {
    for (const w of this.#watchers) {
      if (w.resource !== resource) continue;
      if (w.namespace && w.namespace !== event.object.metadata.namespace) continue;
      w.send(event);
    }
  }
}
