/**
 * Kubernetes objects as a real API server returns them (core/v1 Namespace, Pod, Node,
 * Service; networking.k8s.io/v1 ServiceCIDR), built from the short forms in `config.ts`.
 * Defaults follow what the API server and kubelet fill in, so clients parse the same shapes
 * they will meet on a real cluster.
 *
 * @example
 * ```ts
 * import { podObject } from "./objects.ts";
 * const pod = podObject({
 *   name: "web", namespace: "default", podIPs: ["10.244.0.10"],
 *   containers: [{ name: "web", ports: [{ name: "http", containerPort: 8080 }] }],
 * }, { uid: "u", resourceVersion: "1", created: "2025-01-01T00:00:00Z" });
 * if ((pod.status as { podIP: string }).podIP !== "10.244.0.10") throw new Error();
 * ```
 *
 * @module
 */
import type { NodeSpec, PodSpec, ServiceSpec, VersionConfig } from "./config.ts";

/** A Kubernetes object as JSON. */
export type KObject = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: ObjectMeta;
};

/** The parts of ObjectMeta the stand-in uses. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** Server-assigned metadata for a new object. */
export interface Stamp {
  uid: string;
  resourceVersion: string;
  /** RFC 3339 without fractions, like `2025-05-20T10:00:00Z`. */
  created: string;
}

/** A random lower-case hex string of `n` characters. */
export function hex(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
}

/** RFC 3339 time without fractions, as Kubernetes serializes metav1.Time. */
export function k8sTime(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

function meta(name: string, stamp: Stamp, namespace?: string, labels?: Record<string, string>) {
  const m: ObjectMeta = {
    name,
    ...(namespace ? { namespace } : {}),
    uid: stamp.uid,
    resourceVersion: stamp.resourceVersion,
    creationTimestamp: stamp.created,
  };
  if (labels && Object.keys(labels).length) m.labels = { ...labels };
  return m;
}

/** A Namespace, Active. */
export function namespaceObject(name: string, stamp: Stamp): KObject {
  return {
    kind: "Namespace",
    apiVersion: "v1",
    metadata: meta(name, stamp, undefined, { "kubernetes.io/metadata.name": name }),
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

/** A Pod with the status a kubelet reports for a running (or not) pod. */
export function podObject(spec: PodSpec, stamp: Stamp): KObject {
  const phase = spec.phase ?? "Running";
  const nodeName = spec.nodeName ?? "node-1";
  const ready = spec.ready ?? phase === "Running";
  const t = stamp.created;
  const cond = (type: string, ok: boolean) => ({
    type,
    status: ok ? "True" : "False",
    lastProbeTime: null,
    lastTransitionTime: t,
  });
  const sa = spec.serviceAccountName ?? "default";
  const running = phase === "Running";
  const status: Record<string, unknown> = {
    phase,
    conditions: nodeName
      ? [
        cond("PodReadyToStartContainers", running),
        cond("Initialized", true),
        cond("Ready", ready),
        cond("ContainersReady", ready),
        cond("PodScheduled", true),
      ]
      : [cond("PodScheduled", false)],
    qosClass: "BestEffort",
  };
  if (nodeName) {
    status.hostIP = "172.18.0.2";
    status.hostIPs = [{ ip: "172.18.0.2" }];
    status.startTime = t;
  }
  if (spec.podIPs.length) {
    status.podIP = spec.podIPs[0];
    status.podIPs = spec.podIPs.map((ip) => ({ ip }));
  }
  if (nodeName) {
    status.containerStatuses = spec.containers.map((c) => ({
      name: c.name,
      state: running ? { running: { startedAt: t } } : { waiting: { reason: "ContainerCreating" } },
      lastState: {},
      ready,
      restartCount: 0,
      image: c.image ?? "docker.io/library/busybox:1.36",
      imageID: `docker.io/library/busybox@sha256:${hex(64)}`,
      ...(running ? { containerID: `containerd://${hex(64)}` } : {}),
      started: running,
    }));
  }
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: meta(spec.name, stamp, spec.namespace, spec.labels),
    spec: {
      volumes: [{
        name: `kube-api-access-${hex(5)}`,
        projected: {
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          ],
          defaultMode: 420,
        },
      }],
      containers: spec.containers.map((c) => ({
        name: c.name,
        image: c.image ?? "docker.io/library/busybox:1.36",
        ...(c.ports?.length
          ? {
            ports: c.ports.map((p) => ({
              ...(p.name ? { name: p.name } : {}),
              containerPort: p.containerPort,
              protocol: p.protocol ?? "TCP",
            })),
          }
          : {}),
        resources: {},
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
        imagePullPolicy: "IfNotPresent",
      })),
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: sa,
      serviceAccount: sa,
      ...(nodeName ? { nodeName } : {}),
      securityContext: {},
      schedulerName: "default-scheduler",
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
        {
          key: "node.kubernetes.io/unreachable",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: "PreemptLowerPriority",
    },
    status,
  };
}

/** A Ready Node. */
export function nodeObject(spec: NodeSpec, stamp: Stamp, version: VersionConfig): KObject {
  const t = stamp.created;
  const nodeSpec: Record<string, unknown> = {};
  if (spec.podCIDRs.length) {
    nodeSpec.podCIDR = spec.podCIDRs[0];
    nodeSpec.podCIDRs = [...spec.podCIDRs];
  }
  return {
    kind: "Node",
    apiVersion: "v1",
    metadata: meta(spec.name, stamp, undefined, {
      "beta.kubernetes.io/arch": "amd64",
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      "kubernetes.io/hostname": spec.name,
      "kubernetes.io/os": "linux",
    }),
    spec: nodeSpec,
    status: {
      capacity: { cpu: "2", memory: "4015360Ki", pods: "110" },
      allocatable: { cpu: "2", memory: "3912960Ki", pods: "110" },
      conditions: [
        ["MemoryPressure", "False", "KubeletHasSufficientMemory"],
        ["DiskPressure", "False", "KubeletHasNoDiskPressure"],
        ["PIDPressure", "False", "KubeletHasSufficientPID"],
        ["Ready", "True", "KubeletReady"],
      ].map(([type, status, reason]) => ({
        type,
        status,
        lastHeartbeatTime: k8sTime(),
        lastTransitionTime: t,
        reason,
        message: reason === "KubeletReady" ? "kubelet is posting ready status" : reason,
      })),
      addresses: [
        { type: "InternalIP", address: spec.internalIP },
        { type: "Hostname", address: spec.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: hex(32),
        systemUUID: crypto.randomUUID(),
        bootID: crypto.randomUUID(),
        kernelVersion: "6.1.0-28-amd64",
        osImage: "Debian GNU/Linux 12 (bookworm)",
        containerRuntimeVersion: "containerd://1.7.24",
        kubeletVersion: version.gitVersion,
        kubeProxyVersion: version.gitVersion,
        operatingSystem: "linux",
        architecture: "amd64",
      },
    },
  };
}

/** A ClusterIP (or headless) Service with the defaults the API server fills in. */
export function serviceObject(spec: ServiceSpec, stamp: Stamp): KObject {
  const headless = spec.clusterIPs[0] === "None";
  const families = headless
    ? ["IPv4"]
    : spec.clusterIPs.map((ip) => ip.includes(":") ? "IPv6" : "IPv4");
  return {
    kind: "Service",
    apiVersion: "v1",
    metadata: meta(spec.name, stamp, spec.namespace, spec.labels),
    spec: {
      ports: spec.ports.map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        protocol: p.protocol ?? "TCP",
        port: p.port,
        targetPort: p.targetPort ?? p.port,
      })),
      ...(spec.selector ? { selector: { ...spec.selector } } : {}),
      clusterIP: spec.clusterIPs[0],
      clusterIPs: [...spec.clusterIPs],
      type: "ClusterIP",
      sessionAffinity: "None",
      ipFamilies: families,
      ipFamilyPolicy: families.length > 1 ? "PreferDualStack" : "SingleStack",
      internalTrafficPolicy: "Cluster",
    },
    status: { loadBalancer: {} },
  };
}

/**
 * A networking.k8s.io/v1 ServiceCIDR, Ready. The default one is named `kubernetes` and holds the
 * `--service-cluster-ip-range` CIDRs (kubernetes/kubernetes
 * `pkg/controlplane/controller/defaultservicecidr/default_servicecidr_controller.go`,
 * `DefaultServiceCIDRName`, `sync`); kube-controller-manager's service-cidr-controller adds the
 * `networking.k8s.io/service-cidr-finalizer` finalizer and sets `Ready` `True` with the message
 * `Kubernetes Service CIDR is ready` and no reason (`pkg/controller/servicecidrs/
 * servicecidrs_controller.go`, `sync`). (The API server's own controller first writes `Kubernetes
 * default Service CIDR is ready`; the controller manager's message is the one a running cluster
 * shows.)
 */
export function serviceCIDRObject(name: string, cidrs: string[], stamp: Stamp): KObject {
  return {
    kind: "ServiceCIDR",
    apiVersion: "networking.k8s.io/v1",
    metadata: { ...meta(name, stamp), finalizers: ["networking.k8s.io/service-cidr-finalizer"] },
    spec: { cidrs: [...cidrs] },
    status: {
      conditions: [{
        type: "Ready",
        status: "True",
        lastTransitionTime: stamp.created,
        reason: "",
        message: "Kubernetes Service CIDR is ready",
      }],
    },
  };
}
