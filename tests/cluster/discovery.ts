/**
 * Discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`)
 * and `/version`, as the version being played serves them (unaggregated, JSON).
 *
 * @example
 * ```ts
 * import { apiGroupList } from "./discovery.ts";
 * const groups = apiGroupList(true).groups as { name: string }[];
 * if (!groups.some((g) => g.name === "networking.k8s.io")) throw new Error();
 * ```
 *
 * @module
 */
import type { VersionConfig } from "./config.ts";

interface Resource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
  shortNames?: string[];
}

const RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function r(
  name: string,
  kind: string,
  namespaced: boolean,
  verbs = RW,
  shortNames?: string[],
): Resource {
  const sub = name.includes("/");
  return {
    name,
    singularName: sub ? "" : kind.toLowerCase(),
    namespaced,
    kind,
    verbs,
    ...(shortNames ? { shortNames } : {}),
  };
}

/** The core/v1 resources listed by `/api/v1` (a realistic subset). */
export const CORE_V1_RESOURCES: Resource[] = [
  r("configmaps", "ConfigMap", true, RW, ["cm"]),
  r("endpoints", "Endpoints", true, RW, ["ep"]),
  r("events", "Event", true, RW, ["ev"]),
  r("namespaces", "Namespace", false, [
    "create",
    "delete",
    "get",
    "list",
    "patch",
    "update",
    "watch",
  ], ["ns"]),
  r("namespaces/status", "Namespace", false, ["get", "patch", "update"]),
  r("nodes", "Node", false, RW, ["no"]),
  r("nodes/proxy", "NodeProxyOptions", false, ["create", "delete", "get", "patch", "update"]),
  r("nodes/status", "Node", false, ["get", "patch", "update"]),
  r("pods", "Pod", true, RW, ["po"]),
  r("pods/attach", "PodAttachOptions", true, ["create", "get"]),
  r("pods/exec", "PodExecOptions", true, ["create", "get"]),
  r("pods/log", "Pod", true, ["get"]),
  r("pods/portforward", "PodPortForwardOptions", true, ["create", "get"]),
  r("pods/proxy", "PodProxyOptions", true, ["create", "delete", "get", "patch", "update"]),
  r("pods/status", "Pod", true, ["get", "patch", "update"]),
  r("resourcequotas", "ResourceQuota", true, RW, ["quota"]),
  r("resourcequotas/status", "ResourceQuota", true, ["get", "patch", "update"]),
  r("secrets", "Secret", true, RW),
  r("serviceaccounts", "ServiceAccount", true, RW, ["sa"]),
  r("services", "Service", true, [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
  ], ["svc"]),
  r("services/proxy", "ServiceProxyOptions", true, ["create", "delete", "get", "patch", "update"]),
  r("services/status", "Service", true, ["get", "patch", "update"]),
];

/** The networking.k8s.io/v1 resources; ServiceCIDR and IPAddress only from 1.33 on. */
export function networkingV1Resources(serviceCIDRApi: boolean): Resource[] {
  const base = [
    r("ingressclasses", "IngressClass", false),
    r("ingresses", "Ingress", true, RW, ["ing"]),
    r("ingresses/status", "Ingress", true, ["get", "patch", "update"]),
    r("networkpolicies", "NetworkPolicy", true, RW, ["netpol"]),
  ];
  if (!serviceCIDRApi) return base;
  return [
    ...base.slice(0, 2),
    r("ipaddresses", "IPAddress", false, RW, ["ip"]),
    ...base.slice(2),
    r("servicecidrs", "ServiceCIDR", false, RW),
    r("servicecidrs/status", "ServiceCIDR", false, ["get", "patch", "update"]),
  ];
}

/** The apps/v1 resources (a realistic subset). */
export const APPS_V1_RESOURCES: Resource[] = [
  r("daemonsets", "DaemonSet", true, RW, ["ds"]),
  r("deployments", "Deployment", true, RW, ["deploy"]),
  r("deployments/scale", "Scale", true, ["get", "patch", "update"]),
  r("deployments/status", "Deployment", true, ["get", "patch", "update"]),
  r("replicasets", "ReplicaSet", true, RW, ["rs"]),
  r("replicasets/scale", "Scale", true, ["get", "patch", "update"]),
  r("replicasets/status", "ReplicaSet", true, ["get", "patch", "update"]),
  r("statefulsets", "StatefulSet", true, RW, ["sts"]),
];

/** The rbac.authorization.k8s.io/v1 resources. */
export const RBAC_V1_RESOURCES: Resource[] = [
  r("clusterrolebindings", "ClusterRoleBinding", false),
  r("clusterroles", "ClusterRole", false),
  r("rolebindings", "RoleBinding", true),
  r("roles", "Role", true),
];

/** API groups served besides core, each with its versions (preferred first). */
function groups(_serviceCIDRApi: boolean): [string, string[]][] {
  return [
    ["apps", ["v1"]],
    ["authentication.k8s.io", ["v1"]],
    ["authorization.k8s.io", ["v1"]],
    ["batch", ["v1"]],
    ["networking.k8s.io", ["v1"]],
    ["rbac.authorization.k8s.io", ["v1"]],
    ["discovery.k8s.io", ["v1"]],
  ];
}

/** `GET /api`. */
export function apiVersions(advertiseAddress: string): Record<string, unknown> {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: advertiseAddress }],
  };
}

/** `GET /api/v1`. */
export function coreResourceList(): Record<string, unknown> {
  return { kind: "APIResourceList", groupVersion: "v1", resources: CORE_V1_RESOURCES };
}

function group(name: string, versions: string[]) {
  const v = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: v, preferredVersion: v[0] };
}

/** `GET /apis`. */
export function apiGroupList(serviceCIDRApi: boolean): Record<string, unknown> {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: groups(serviceCIDRApi).map(([n, v]) => group(n, v)),
  };
}

/** `GET /apis/<group>`, or null when the group is not served. */
export function apiGroup(name: string, serviceCIDRApi: boolean): Record<string, unknown> | null {
  const found = groups(serviceCIDRApi).find(([n]) => n === name);
  return found ? { kind: "APIGroup", apiVersion: "v1", ...group(found[0], found[1]) } : null;
}

/** True when `group/version` is served (its path has a go-restful web service). */
export function servesGroupVersion(
  name: string,
  version: string,
  serviceCIDRApi: boolean,
): boolean {
  return groups(serviceCIDRApi).some(([n, v]) => n === name && v.includes(version));
}

/** `GET /apis/<group>/<version>` for the groups whose resources the stand-in knows. */
export function groupResourceList(
  name: string,
  version: string,
  serviceCIDRApi: boolean,
): Record<string, unknown> {
  const resources = version !== "v1"
    ? []
    : name === "networking.k8s.io"
    ? networkingV1Resources(serviceCIDRApi)
    : name === "apps"
    ? APPS_V1_RESOURCES
    : name === "rbac.authorization.k8s.io"
    ? RBAC_V1_RESOURCES
    : [];
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: `${name}/${version}`,
    resources,
  };
}

/** `GET /version`. 1.33 adds the emulation and compatibility versions. */
export function versionInfo(v: VersionConfig): Record<string, unknown> {
  const minor = Number(v.minor.replace(/\D.*$/, ""));
  const emulation = minor >= 33
    ? {
      emulationMajor: v.major,
      emulationMinor: v.minor,
      minCompatibilityMajor: v.major,
      minCompatibilityMinor: String(minor - 1),
    }
    : {};
  return {
    major: v.major,
    minor: v.minor,
    ...emulation,
    gitVersion: v.gitVersion,
    gitCommit: "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
    gitTreeState: "clean",
    buildDate: "2025-05-15T08:19:08Z",
    goVersion: minor >= 33 ? "go1.24.2" : "go1.22.12",
    compiler: "gc",
    platform: "linux/amd64",
  };
}
