/**
 * The configuration file of the API server stand-in (`apiserver.ts --config <file>`): what
 * version it plays, who may log in, what is forbidden, and the cluster's objects in a short
 * form that `objects.ts` expands into real Kubernetes JSON.
 *
 * @module
 */

/** An authenticated user, as the authenticator hands it to authorization. */
export interface Identity {
  /** User name, e.g. `system:serviceaccount:kconnect:traffic-manager`. */
  user: string;
  /** Groups; `system:authenticated` is added by the server. */
  groups?: string[];
  /**
   * What RBAC lets the user do: `admin` everything (default; the `deny` rules still apply),
   * `view` only get, list and watch, `rbac` what the Roles and ClusterRoles bound to the user,
   * its groups or (for `system:serviceaccount:<ns>:<name>`) its ServiceAccount allow.
   */
  access?: "admin" | "view" | "rbac";
}

/**
 * The stand-in's kubelet: pods of Deployments run as processes in the cluster's network
 * namespace (see `kubelet.ts`).
 */
export interface KubeletConfig {
  /** `ip netns` name of the cluster namespace the pods run in. */
  netns: string;
  /** The Deno executable that stands in for the image's `deno`. */
  deno: string;
  /** Scratch directory: one subdirectory per pod (volumes, service account, logs). */
  dir: string;
  /** KUBERNETES_SERVICE_HOST and _PORT for the pods. */
  apiHost: string;
  apiPort: number;
  /** The cluster CA (the pods' service-account `ca.crt`). */
  caFile: string;
  /** Pod IPs to hand out (they must already be on the cluster namespace's `kube0`). */
  podIPs: string[];
  /**
   * Images that "pull": those whose repository ends in `denoland/deno` by default; any other
   * image fails with ErrImagePull as from a registry that does not have it.
   */
  pullable?: string;
  /** Images that fail to pull even though they match `pullable`. */
  unpullable?: string[];
  /** More environment for every pod (e.g. a log level). */
  env?: Record<string, string>;
}

/**
 * How the API server reaches kubelets for `pods/{name}/portforward`: kube-apiserver's
 * `--kubelet-client-certificate`, `--kubelet-client-key` and `--kubelet-certificate-authority`;
 * it dials the pod's node at its InternalIP and this port (the node's
 * `status.daemonEndpoints.kubeletEndpoint.Port`).
 */
export interface KubeletClientConfig {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Default 10250. */
  port?: number;
}

/**
 * The configuration file of the stand-in's kubelet (`kubelet_server.ts --config <file>`), which
 * serves the kubelet API's `/portForward/{namespace}/{pod}` over HTTPS in the node's network
 * namespace.
 */
export interface KubeletServerConfig {
  /** Address and port to listen on. Default `0.0.0.0:10250` (the kubelet's `--address`, `--port`). */
  listen?: string;
  /** The node this kubelet is. */
  nodeName: string;
  /** `ip netns` name of the node's namespace (where every pod of the test cluster lives). */
  netns: string;
  /** Serving certificate and key; `caFile` verifies client certificates (`--client-ca-file`). */
  tls: { certFile: string; keyFile: string; caFile: string };
  /**
   * Users (client certificate CNs) allowed `nodes/proxy` on this kubelet: the API server's
   * kubelet client. Others get the kubelet's 403.
   */
  allowedUsers: string[];
}

/** A ResourceQuota in short form (`spec.hard`). */
export interface QuotaSpec {
  namespace: string;
  name: string;
  /** e.g. `{ pods: "0" }`, `{ "limits.memory": "64Mi" }`, `{ "count/deployments.apps": "0" }`. */
  hard: Record<string, string>;
}

/** A request the stand-in's "RBAC" refuses with 403, for everyone. */
export interface DenyRule {
  /** Kubernetes verb: get, list, watch, create, delete, … */
  verb: string;
  /** Resource, with `/subresource` when there is one (e.g. `pods/portforward`). */
  resource: string;
  /** API group; `""` is the core group. Default `""`. */
  group?: string;
}

/** The version the stand-in plays, as `/version` returns it. */
export interface VersionConfig {
  major: string;
  minor: string;
  gitVersion: string;
}

/** A container port. */
export interface PortSpec {
  name?: string;
  containerPort: number;
  protocol?: "TCP" | "UDP" | "SCTP";
}

/** A pod in short form. */
export interface PodSpec {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  /** Pod IPs; the first is `status.podIP`. Empty for a pod that has none yet. */
  podIPs: string[];
  /** Default `Running`. */
  phase?: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  /** Default true when Running. */
  ready?: boolean;
  /** Node name; pods without one are Pending and cannot be port-forwarded. Default `node-1`. */
  nodeName?: string;
  containers: { name: string; image?: string; ports?: PortSpec[] }[];
  /** Where port-forward reaches this pod; without it, port-forward fails like a dead sandbox. */
  portForward?: {
    /**
     * Network namespace (`ip netns` name) the pod "lives" in. It must be its node's: the
     * stand-in's kubelet runs there and dials the pod in-process.
     */
    netns: string;
    /**
     * Address dialled inside it. Default `127.0.0.1`, as the kubelet does; the test cluster's
     * pods share one namespace and bind their own pod IP, so they set it to that.
     */
    host?: string;
  };
  /** Service account name. Default `default`. */
  serviceAccountName?: string;
}

/** A node in short form. */
export interface NodeSpec {
  name: string;
  /** Pod CIDRs; the first is `spec.podCIDR`. Empty when the cluster's CNI does not set them. */
  podCIDRs: string[];
  internalIP: string;
}

/** A service port. */
export interface ServicePortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: "TCP" | "UDP" | "SCTP";
}

/** A service in short form. */
export interface ServiceSpec {
  name: string;
  namespace: string;
  /** Cluster IPs, or `["None"]` for a headless service. */
  clusterIPs: string[];
  ports: ServicePortSpec[];
  selector?: Record<string, string>;
  labels?: Record<string, string>;
}

/** Everything `apiserver.ts` needs. */
export interface ApiServerConfig {
  /** Address and port to listen on. Default `0.0.0.0:6443`. */
  listen?: string;
  /** Address advertised in `/api`'s serverAddressByClientCIDRs, e.g. `100.64.0.1:6443`. */
  advertiseAddress: string;
  tls: { certFile: string; keyFile: string; caFile: string };
  version: VersionConfig;
  /** `networking.k8s.io/v1` ServiceCIDR (and IPAddress) API served; true from 1.33 on. */
  serviceCIDRApi: boolean;
  /** Bearer tokens accepted and who each one is. */
  tokens: Record<string, Identity>;
  /** Accept client certificates signed by the CA (user = CN, groups = O). Default true. */
  clientCertAuth?: boolean;
  /**
   * Requests without credentials become `system:anonymous` (kube-apiserver's default
   * `--anonymous-auth=true`), which may only read `/version`, `/healthz`, `/livez`, `/readyz`.
   * Default false: they get 401, as with `--anonymous-auth=false`.
   */
  anonymousAuth?: boolean;
  /** Requests refused with 403 Forbidden. */
  deny?: DenyRule[];
  /** Run Deployments' pods (without it, Deployments are stored but no pod appears). */
  kubelet?: KubeletConfig;
  /**
   * How to reach the kubelets for port-forward; without it, port-forward fails like a node
   * whose kubelet cannot be dialled.
   */
  kubeletClient?: KubeletClientConfig;
  /** ResourceQuotas enforced on create (their namespaces are created too). */
  quotas?: QuotaSpec[];
  /** The service CIDRs (`--service-cluster-ip-range`), e.g. `["10.96.0.0/12"]`. */
  serviceCIDRs: string[];
  namespaces: string[];
  nodes: NodeSpec[];
  pods: PodSpec[];
  services: ServiceSpec[];
}
