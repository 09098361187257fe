/**
 * The objects `kconnect install` puts in a cluster, as pure functions of the install options:
 * the namespace, the ServiceAccount, least-privilege RBAC, the ConfigMap holding the bundled
 * manager code, and the Deployment that runs it with the official `denoland/deno` image.
 *
 * Every object is labelled `app.kubernetes.io/managed-by=kconnect` (so `uninstall` can tell its
 * own objects from others) and carries, in the annotation {@linkcode APPLIED_ANNOTATION}, the
 * sha256 of its own desired form: `apply.ts` compares that to decide between create, update
 * and nothing to do, without comparing against the defaults a server fills in.
 *
 * @example
 * ```ts
 * import { managerManifests } from "./manifests.ts";
 * const m = await managerManifests({
 *   namespace: "kconnect", version: "0.1.0", bundle: "console.log(1)", denoVersion: "2.9.6",
 * });
 * m.deployment.spec.template.spec.containers[0].image; // "denoland/deno:2.9.6@sha256:2014dc…"
 * ```
 *
 * @module
 */
import { sha256Hex } from "../io/bytes.ts";
import { SERVICE_ACCOUNT_DIR } from "../k8s/access.ts";
import {
  APP_NAME,
  BUNDLE_SHA256_ANNOTATION,
  DEFAULT_TUNNEL_PORT,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGER_NAME,
  NAME_LABEL,
  TUNNEL_PORT_NAME,
  VERSION_LABEL,
} from "../manager_identity/identity.ts";
import { MANAGER_V8_FLAGS, v8FlagsArg } from "../v8_flags.ts";

/** Annotation: sha256 of the object's desired form, see the module doc. */
export const APPLIED_ANNOTATION = "kconnect.io/applied-sha256";
/** Annotation on a namespace kconnect created (uninstall deletes only such namespaces). */
export const CREATED_NAMESPACE_ANNOTATION = "kconnect.io/created-by";
/** ConfigMap key (and file name under the mount) of the bundle. */
export const BUNDLE_KEY = "manager.js";
/** Where the ConfigMap is mounted in the manager's container. */
export const BUNDLE_MOUNT = "/kconnect";
/** The denoland/deno image's own non-root user and group. */
export const DENO_UID = 1993;
/** Size limit of a ConfigMap's data (etcd's request limit is about 1.5 MiB; the API says 1 MiB). */
export const CONFIGMAP_LIMIT = 1024 * 1024;

/** What the manifests are made from. */
export interface ManifestOptions {
  /** Namespace of the manager. */
  namespace: string;
  /** The client's version (label `app.kubernetes.io/version`). */
  version: string;
  /** The manager bundle's JavaScript. */
  bundle: string;
  /**
   * Deno version of the image (`denoland/deno:<denoVersion>@sha256:…`, see
   * {@linkcode denoImage}), the client's own by default.
   */
  denoVersion: string;
  /** Image instead of the pinned `denoland/deno` one (pin it by digest too). */
  image?: string;
  /** The tunnel port. Default 8081. */
  port?: number;
  /**
   * Let the manager learn the service CIDR from the error of a dry-run Service create, on
   * clusters older than Kubernetes 1.33 (no ServiceCIDR API): grants `create` on services in its
   * namespace, which RBAC cannot limit to dry runs (a compromised manager could then create
   * Services, e.g. with `externalIPs`, CVE-2020-8554). Default false: such clusters get a cover
   * of the existing services' IPs instead.
   */
  serviceProbe?: boolean;
}

type Labels = Record<string, string>;

/** ObjectMeta as kconnect writes it. */
export interface Meta {
  name: string;
  namespace?: string;
  labels: Labels;
  annotations: Record<string, string>;
  resourceVersion?: string;
}

/** A manifest: any object with kind, apiVersion and metadata. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [field: string]: unknown;
}

/** An RBAC PolicyRule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** A container as kconnect writes it (the fields tests look at are typed). */
export interface ManagerContainer {
  name: string;
  image: string;
  command: string[];
  ports: { name: string; containerPort: number; protocol: string }[];
  env: { name: string; value: string }[];
  readinessProbe: Record<string, unknown>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

/** The Deployment's shape. */
export interface DeploymentManifest extends Manifest {
  spec: {
    replicas: number;
    selector: { matchLabels: Labels };
    strategy: Record<string, unknown>;
    template: {
      metadata: { labels: Labels; annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        automountServiceAccountToken: boolean;
        securityContext: Record<string, unknown>;
        containers: ManagerContainer[];
        volumes: Record<string, unknown>[];
        [field: string]: unknown;
      };
    };
  };
}

/** Everything `install` applies, in the order it applies them. */
export interface ManagerManifests {
  namespace: Manifest;
  serviceAccount: Manifest;
  clusterRole: Manifest & { rules: PolicyRule[] };
  clusterRoleBinding: Manifest;
  role: Manifest & { rules: PolicyRule[] };
  roleBinding: Manifest;
  configMap: Manifest & { data: Record<string, string> };
  deployment: DeploymentManifest;
  /** sha256 of the bundle (hex). */
  bundleSha256: string;
}

/**
 * What the manager may do cluster-wide: list what network discovery looks at (it never
 * watches), and list ServiceCIDRs. Nothing else: no get of secrets, no writes. Pods are listed
 * only when no node has `podCIDRs` (a cover of the pod IPs), services only when no ServiceCIDR
 * says the range, both in pages.
 */
export const CLUSTER_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [""],
    resources: ["pods", "nodes", "services", "namespaces"],
    verbs: ["list"],
  },
  { apiGroups: ["networking.k8s.io"], resources: ["servicecidrs"], verbs: ["list"] },
];

/**
 * What the manager may do in its own namespace: nothing, unless the dry-run probe is wanted
 * ({@linkcode ManifestOptions.serviceProbe}, then {@linkcode SERVICE_PROBE_RULES}). The Role
 * and its binding exist either way, so that turning the probe on or off is an update.
 */
export const NAMESPACE_RULES: readonly PolicyRule[] = [];

/**
 * Create Services, which the manager only ever does with `dryRun=All` to learn the service CIDR
 * from the "invalid ClusterIP" error (RBAC cannot tell a dry run from a real create).
 */
export const SERVICE_PROBE_RULES: readonly PolicyRule[] = [
  { apiGroups: [""], resources: ["services"], verbs: ["create"] },
];

/**
 * What the manager's RBAC grants, in words, for `install`'s progress line, e.g. `ServiceAccount
 * kconnect-traffic-manager; ClusterRole kconnect-traffic-manager:kconnect: list pods, nodes,
 * services, namespaces, servicecidrs.networking.k8s.io; Role kconnect-traffic-manager: nothing`.
 */
export function describeRbac(m: ManagerManifests): string {
  const words = (rules: PolicyRule[]) => {
    if (rules.length === 0) return "nothing";
    const byVerbs = new Map<string, string[]>();
    for (const r of rules) {
      const names = r.resources.map((res) =>
        r.apiGroups.every((g) => g === "") ? res : `${res}.${r.apiGroups.join(",")}`
      );
      const key = r.verbs.join("/");
      byVerbs.set(key, [...(byVerbs.get(key) ?? []), ...names]);
    }
    return [...byVerbs].map(([verbs, names]) => `${verbs} ${names.join(", ")}`).join("; ");
  };
  const probe = m.role.rules.length > 0 ? " (dry-run CIDR probe)" : "";
  return `ServiceAccount ${m.serviceAccount.metadata.name}; ClusterRole ` +
    `${m.clusterRole.metadata.name}: ${words(m.clusterRole.rules)}; Role ` +
    `${m.role.metadata.name}: ${words(m.role.rules)}${probe}`;
}

/** Name of the cluster-scoped RBAC objects: one pair per manager namespace. */
export function clusterRbacName(namespace: string): string {
  return `${MANAGER_NAME}:${namespace}`;
}

/**
 * Digests of the official `denoland/deno` images kconnect runs the manager with, by Deno
 * version: the multi-arch OCI image index (linux/amd64 and linux/arm64) of
 * `docker.io/denoland/deno:<version>`, as `docker buildx imagetools inspect
 * denoland/deno:<version>` or `crane digest denoland/deno:<version>` print it. Docker Hub cannot
 * be reached from where kconnect is built, so 2.9.6's was taken from public Dockerfiles that pin
 * `denoland/deno:2.9.6@sha256:2014dc16…` (one notes the index resolves to amd64 sha256:023603…
 * and arm64 sha256:430f9e…); check it with one of those commands when adding a version. Add the
 * Deno version kconnect is built with (`deno --version`) when it changes.
 */
export const DENO_IMAGE_DIGESTS: Readonly<Record<string, string>> = {
  "2.9.6": "sha256:2014dc167ece617ef7e7ba40631ac2234c59e75ce693e7cc2dc2602b3c87859d",
};

/** The Deno version whose image is used when the client's own has no digest above. */
export const PINNED_DENO_VERSION = "2.9.6";

/**
 * The `denoland/deno` image for a Deno version, pinned by digest: a tag can be moved to other
 * code, a digest cannot. A version without a known digest gets {@linkcode PINNED_DENO_VERSION}'s
 * image (the bundle is plain JavaScript that runs on any Deno 2).
 */
export function denoImage(denoVersion: string): string {
  const v = DENO_IMAGE_DIGESTS[denoVersion] === undefined ? PINNED_DENO_VERSION : denoVersion;
  return `denoland/deno:${v}@${DENO_IMAGE_DIGESTS[v]}`;
}

/** JSON with object keys sorted, so equal objects hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
        : v,
  );
}

/**
 * Stamps {@linkcode APPLIED_ANNOTATION} with the sha256 of the manifest without it (and
 * without a resourceVersion).
 */
export async function withAppliedHash<T extends Manifest>(m: T): Promise<T> {
  const { [APPLIED_ANNOTATION]: _old, ...annotations } = m.metadata.annotations;
  const { resourceVersion: _rv, ...meta } = m.metadata;
  const bare = { ...m, metadata: { ...meta, annotations } };
  const hash = await sha256Hex(canonicalJson(bare));
  return {
    ...bare,
    metadata: { ...bare.metadata, annotations: { ...annotations, [APPLIED_ANNOTATION]: hash } },
  };
}

/** The labels of every object: name, version, managed-by. */
export function commonLabels(version: string): Labels {
  return {
    [NAME_LABEL]: APP_NAME,
    [VERSION_LABEL]: version,
    "app.kubernetes.io/component": "traffic-manager",
    "app.kubernetes.io/part-of": "kconnect",
    [MANAGED_BY_LABEL]: MANAGED_BY,
  };
}

/** What the manager reads: its code, its resolver configuration, its service account. */
export const MANAGER_READ_PATHS: readonly string[] = [
  BUNDLE_MOUNT,
  "/etc/resolv.conf",
  SERVICE_ACCOUNT_DIR,
];

/**
 * The environment variables the manager reads: the API server's address, the log level, the
 * two through which its API client empties the runtime's default TLS roots so that only the
 * service account's CA is trusted (`pinTlsRoots()` in `src/k8s/access.ts`), and the ones its
 * command-line library looks at for colours.
 */
export const MANAGER_ENV_VARS: readonly string[] = [
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
  "KCONNECT_LOG_LEVEL",
  "DENO_TLS_CA_STORE",
  "DENO_CERT",
  "NO_COLOR",
  "FORCE_COLOR",
  "CLICOLOR_FORCE",
];

/**
 * Cloud metadata services, refused by the runtime as well as by the manager's own policy
 * (`src/manager/policy.ts`), in case a bug lets a client's dial through. Not all of
 * 169.254.0.0/16: NodeLocal DNSCache serves the cluster's DNS from 169.254.20.10.
 */
export const MANAGER_DENIED_NET: readonly string[] = [
  "169.254.169.254",
  "169.254.170.2",
  "100.100.100.200",
  "168.63.129.16",
  "[fd00:ec2::254]",
];

/** The manager's V8 flags (see `src/v8_flags.ts`). */
export { MANAGER_V8_FLAGS };

/**
 * The command the manager container runs: network access (it dials what clients ask), reads
 * and environment variables limited to what it uses, nothing else (no writes, subprocesses,
 * FFI or system information).
 */
export function managerCommand(port: number): string[] {
  return [
    "deno",
    "run",
    v8FlagsArg(MANAGER_V8_FLAGS),
    "--allow-net",
    `--deny-net=${MANAGER_DENIED_NET.join(",")}`,
    `--allow-read=${MANAGER_READ_PATHS.join(",")}`,
    `--allow-env=${MANAGER_ENV_VARS.join(",")}`,
    "--no-prompt",
    `${BUNDLE_MOUNT}/${BUNDLE_KEY}`,
    "traffic-manager",
    "--listen",
    `127.0.0.1:${port}`,
  ];
}

/**
 * The readiness probe's command: the manager listens on localhost only (port-forward reaches
 * it there, nothing else may), so a TCP probe from the kubelet cannot see it; a connect from
 * inside the container can.
 */
export function probeCommand(port: number): string[] {
  return [
    "deno",
    "eval",
    `const c = await Deno.connect({ hostname: "127.0.0.1", port: ${port} }); c.close();`,
  ];
}

/** Builds every object `install` applies. */
export async function managerManifests(o: ManifestOptions): Promise<ManagerManifests> {
  const { namespace, version } = o;
  const port = o.port ?? DEFAULT_TUNNEL_PORT;
  const labels = commonLabels(version);
  const bundleSha256 = await sha256Hex(o.bundle);
  const meta = (name: string, ns?: string, annotations: Record<string, string> = {}): Meta => ({
    name,
    ...(ns ? { namespace: ns } : {}),
    labels: { ...labels },
    annotations,
  });
  const sa = { kind: "ServiceAccount", name: MANAGER_NAME, namespace };
  const rbac = "rbac.authorization.k8s.io";
  const selector = { [NAME_LABEL]: APP_NAME, [MANAGED_BY_LABEL]: MANAGED_BY };
  const deployment: DeploymentManifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(MANAGER_NAME, namespace, { [BUNDLE_SHA256_ANNOTATION]: bundleSha256 }),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      // The new pod is ready before the old one goes: a client finds a manager throughout.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: { ...labels },
          annotations: { [BUNDLE_SHA256_ANNOTATION]: bundleSha256 },
        },
        spec: {
          serviceAccountName: MANAGER_NAME,
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: DENO_UID,
            runAsGroup: DENO_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [{
            name: "manager",
            image: o.image ?? denoImage(o.denoVersion),
            command: managerCommand(port),
            ports: [{ name: TUNNEL_PORT_NAME, containerPort: port, protocol: "TCP" }],
            env: [
              // The root filesystem is read-only: Deno's cache goes to the emptyDir.
              { name: "DENO_DIR", value: "/tmp/deno" },
              { name: "DENO_NO_UPDATE_CHECK", value: "1" },
              { name: "NO_COLOR", value: "1" },
            ],
            readinessProbe: {
              exec: { command: probeCommand(port) },
              initialDelaySeconds: 1,
              periodSeconds: 10,
              timeoutSeconds: 5,
              failureThreshold: 3,
            },
            resources: {
              requests: { cpu: "50m", memory: "64Mi" },
              limits: { cpu: "1", memory: "320Mi" },
            },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ["ALL"] },
            },
            volumeMounts: [
              { name: "code", mountPath: BUNDLE_MOUNT, readOnly: true },
              { name: "tmp", mountPath: "/tmp" },
            ],
          }],
          volumes: [
            { name: "code", configMap: { name: MANAGER_NAME } },
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
          ],
          terminationGracePeriodSeconds: 10,
        },
      },
    },
  };
  const m: ManagerManifests = {
    namespace: {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: meta(namespace, undefined, { [CREATED_NAMESPACE_ANNOTATION]: "kconnect install" }),
    },
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta(MANAGER_NAME, namespace),
    },
    clusterRole: {
      apiVersion: `${rbac}/v1`,
      kind: "ClusterRole",
      metadata: meta(clusterRbacName(namespace)),
      rules: CLUSTER_RULES.map((r) => structuredClone(r)),
    },
    clusterRoleBinding: {
      apiVersion: `${rbac}/v1`,
      kind: "ClusterRoleBinding",
      metadata: meta(clusterRbacName(namespace)),
      roleRef: { apiGroup: rbac, kind: "ClusterRole", name: clusterRbacName(namespace) },
      subjects: [sa],
    },
    role: {
      apiVersion: `${rbac}/v1`,
      kind: "Role",
      metadata: meta(MANAGER_NAME, namespace),
      rules: (o.serviceProbe ? SERVICE_PROBE_RULES : NAMESPACE_RULES).map((r) =>
        structuredClone(r)
      ),
    },
    roleBinding: {
      apiVersion: `${rbac}/v1`,
      kind: "RoleBinding",
      metadata: meta(MANAGER_NAME, namespace),
      roleRef: { apiGroup: rbac, kind: "Role", name: MANAGER_NAME },
      subjects: [sa],
    },
    configMap: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta(MANAGER_NAME, namespace, { [BUNDLE_SHA256_ANNOTATION]: bundleSha256 }),
      data: { [BUNDLE_KEY]: o.bundle },
    },
    deployment,
    bundleSha256,
  };
  for (const k of Object.keys(m) as (keyof ManagerManifests)[]) {
    if (k !== "bundleSha256") (m[k] as Manifest) = await withAppliedHash(m[k] as Manifest);
  }
  return m;
}

/** How a kind is reached through the REST API. */
export interface ResourceRef {
  kind: string;
  /** `/api/v1` or `/apis/<group>/<version>`. */
  base: string;
  /** Plural resource name. */
  resource: string;
  namespaced: boolean;
  /** Group for messages and RBAC (`""` for core). */
  group: string;
}

/** The REST coordinates of every kind kconnect installs. */
export const RESOURCES: Record<string, ResourceRef> = {
  Namespace: {
    kind: "Namespace",
    base: "/api/v1",
    resource: "namespaces",
    namespaced: false,
    group: "",
  },
  ServiceAccount: {
    kind: "ServiceAccount",
    base: "/api/v1",
    resource: "serviceaccounts",
    namespaced: true,
    group: "",
  },
  ConfigMap: {
    kind: "ConfigMap",
    base: "/api/v1",
    resource: "configmaps",
    namespaced: true,
    group: "",
  },
  ClusterRole: {
    kind: "ClusterRole",
    base: "/apis/rbac.authorization.k8s.io/v1",
    resource: "clusterroles",
    namespaced: false,
    group: "rbac.authorization.k8s.io",
  },
  ClusterRoleBinding: {
    kind: "ClusterRoleBinding",
    base: "/apis/rbac.authorization.k8s.io/v1",
    resource: "clusterrolebindings",
    namespaced: false,
    group: "rbac.authorization.k8s.io",
  },
  Role: {
    kind: "Role",
    base: "/apis/rbac.authorization.k8s.io/v1",
    resource: "roles",
    namespaced: true,
    group: "rbac.authorization.k8s.io",
  },
  RoleBinding: {
    kind: "RoleBinding",
    base: "/apis/rbac.authorization.k8s.io/v1",
    resource: "rolebindings",
    namespaced: true,
    group: "rbac.authorization.k8s.io",
  },
  Deployment: {
    kind: "Deployment",
    base: "/apis/apps/v1",
    resource: "deployments",
    namespaced: true,
    group: "apps",
  },
};

/** The collection path of a manifest's kind (`/api/v1/namespaces/kconnect/configmaps`). */
export function collectionPath(ref: ResourceRef, namespace?: string): string {
  return ref.namespaced
    ? `${ref.base}/namespaces/${encodeURIComponent(namespace ?? "")}/${ref.resource}`
    : `${ref.base}/${ref.resource}`;
}

/** The object path of a manifest. */
export function objectPath(ref: ResourceRef, name: string, namespace?: string): string {
  return `${collectionPath(ref, namespace)}/${encodeURIComponent(name)}`;
}

/** `deployments.apps`, `configmaps`: how the API names a resource in messages and RBAC. */
export function groupResource(ref: ResourceRef): string {
  return ref.group ? `${ref.resource}.${ref.group}` : ref.resource;
}
