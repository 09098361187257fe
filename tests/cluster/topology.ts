/**
 * The test cluster's addresses, pods, services and DNS records: one place that the API
 * server's config, the network set-up and the DNS server all read.
 *
 * ```
 *  laptop ns 100.64.0.2/30 ── veth ── 100.64.0.1/30 apiserver ns 100.64.1.1/30 ── veth ── 100.64.1.2/30 cluster ns
 *                                       (https://100.64.0.1:6443)                        dummy kube0: pod IPs 10.244.0.x
 *                                                                                         and service IPs 10.96.0.x,
 *                                                                                         iptables DNAT service → pod
 * ```
 *
 * @module
 */
import type { NodeSpec, PodSpec, ServiceSpec } from "./config.ts";

/** The API server's address on the laptop side. */
export const API_LAPTOP_IP = "100.64.0.1";
/** The laptop's address. */
export const LAPTOP_IP = "100.64.0.2";
/** The API server's address on the cluster side (KUBERNETES_SERVICE_HOST). */
export const API_CLUSTER_IP = "100.64.1.1";
/** The cluster namespace's (node's) address towards the API server. */
export const NODE_IP = "100.64.1.2";
/** API server port. */
export const API_PORT = 6443;
/** The service CIDR. */
export const SERVICE_CIDR = "10.96.0.0/12";
/** The pod CIDR of node-1. */
export const POD_CIDR = "10.244.0.0/24";
/** Cluster DNS service IP. */
export const DNS_IP = "10.96.0.10";

/** Pod IPs of the workloads. */
export const IPS = {
  coredns: "10.244.0.2",
  manager: "10.244.0.5",
  web: "10.244.0.10",
  redis: "10.244.0.11",
  echo: "10.244.0.12",
  db0: "10.244.0.20",
  db1: "10.244.0.21",
} as const;

/** Pod IPs the stand-in's kubelet hands to the pods of Deployments (see `kubelet.ts`). */
export const KUBELET_POD_IPS: readonly string[] = Array.from(
  { length: 8 },
  (_, i) => `10.244.0.${30 + i}`,
);

/** Service cluster IPs. */
export const SERVICE_IPS = {
  kubernetes: "10.96.0.1",
  kubeDns: DNS_IP,
  web: "10.96.0.20",
  redis: "10.96.0.21",
  echo: "10.96.0.22",
} as const;

/**
 * UDP port of the echo pod and service whose answer names the sender: each datagram comes back
 * as `<payload> from <address>:<port>` (without the payload's trailing newline, with one at
 * the end), so a test sees whether a UDP flow through kconnect still leaves the cluster from
 * the same socket.
 */
export const UDP_PEER_PORT = 7007;

/** The manager pod, as the stand-in lists it. */
export const MANAGER_POD = {
  namespace: "kconnect",
  name: "traffic-manager-7d9c5b8f6d-x2k4p",
  labels: {
    "app.kubernetes.io/name": "kconnect-traffic-manager",
    "pod-template-hash": "7d9c5b8f6d",
  },
  port: 8081,
} as const;

/** The manager's service account. */
export const MANAGER_USER = "system:serviceaccount:kconnect:traffic-manager";

/** The node. */
export const NODE: NodeSpec = { name: "node-1", podCIDRs: [POD_CIDR], internalIP: NODE_IP };

/** The workload pods (the manager pod is added by the fixture when it runs one). */
export function workloadPods(netns: string): PodSpec[] {
  const at = (host: string) => ({ netns, host });
  return [
    {
      name: "coredns-668d6bf9bc-7xq2m",
      namespace: "kube-system",
      labels: { "k8s-app": "kube-dns", "pod-template-hash": "668d6bf9bc" },
      podIPs: [IPS.coredns],
      containers: [{
        name: "coredns",
        image: "registry.k8s.io/coredns/coredns:v1.12.0",
        ports: [
          { name: "dns", containerPort: 53, protocol: "UDP" },
          { name: "dns-tcp", containerPort: 53 },
          { name: "metrics", containerPort: 9153 },
        ],
      }],
      portForward: at(IPS.coredns),
      serviceAccountName: "coredns",
    },
    {
      name: "web-6b7f9c8d4-h2x9k",
      namespace: "default",
      labels: { app: "web", "pod-template-hash": "6b7f9c8d4" },
      podIPs: [IPS.web],
      containers: [{
        name: "web",
        image: "docker.io/library/python:3.11-slim",
        ports: [{ name: "http", containerPort: 8080 }],
      }],
      portForward: at(IPS.web),
    },
    {
      name: "redis-5c8f7d9b6-q4w8n",
      namespace: "default",
      labels: { app: "redis", "pod-template-hash": "5c8f7d9b6" },
      podIPs: [IPS.redis],
      containers: [{
        name: "redis",
        image: "docker.io/library/redis:7.0",
        ports: [{ name: "redis", containerPort: 6379 }],
      }],
      portForward: at(IPS.redis),
    },
    {
      name: "echo-7f6d5c4b3-m9n8p",
      namespace: "default",
      labels: { app: "echo", "pod-template-hash": "7f6d5c4b3" },
      podIPs: [IPS.echo],
      containers: [{
        name: "echo",
        image: "docker.io/alpine/socat:1.7.4.4",
        ports: [
          { name: "tcp-echo", containerPort: 7 },
          { name: "udp-echo", containerPort: 7, protocol: "UDP" },
          { name: "udp-peer", containerPort: UDP_PEER_PORT, protocol: "UDP" },
        ],
      }],
      portForward: at(IPS.echo),
    },
    ...[IPS.db0, IPS.db1].map((ip, i): PodSpec => ({
      name: `db-${i}`,
      namespace: "default",
      labels: { app: "db", "statefulset.kubernetes.io/pod-name": `db-${i}` },
      podIPs: [ip],
      containers: [{
        name: "db",
        image: "docker.io/library/postgres:16",
        ports: [{ name: "postgres", containerPort: 5432 }],
      }],
      portForward: at(ip),
    })),
  ];
}

/** The manager pod's spec for the stand-in. */
export function managerPod(netns: string): PodSpec {
  return {
    name: MANAGER_POD.name,
    namespace: MANAGER_POD.namespace,
    labels: { ...MANAGER_POD.labels },
    podIPs: [IPS.manager],
    containers: [{
      name: "manager",
      image: "docker.io/denoland/deno:2.5.6",
      ports: [{ name: "tunnel", containerPort: MANAGER_POD.port }],
    }],
    // The manager listens on 127.0.0.1:8081 in the cluster namespace; the kubelet dials
    // localhost.
    portForward: { netns, host: "127.0.0.1" },
    serviceAccountName: "traffic-manager",
  };
}

/** Services, with where the DNAT rules send each port (`to`: pod `ip:port`). */
export const SERVICES: (ServiceSpec & { to?: Record<string, string> })[] = [
  {
    name: "kubernetes",
    namespace: "default",
    labels: { component: "apiserver", provider: "kubernetes" },
    clusterIPs: [SERVICE_IPS.kubernetes],
    ports: [{ name: "https", port: 443, targetPort: API_PORT }],
    to: { "tcp/443": `${API_CLUSTER_IP}:${API_PORT}` },
  },
  {
    name: "kube-dns",
    namespace: "kube-system",
    labels: { "k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS" },
    clusterIPs: [SERVICE_IPS.kubeDns],
    ports: [
      { name: "dns", port: 53, targetPort: 53, protocol: "UDP" },
      { name: "dns-tcp", port: 53, targetPort: 53 },
      { name: "metrics", port: 9153, targetPort: 9153 },
    ],
    selector: { "k8s-app": "kube-dns" },
    to: { "udp/53": `${IPS.coredns}:53`, "tcp/53": `${IPS.coredns}:53` },
  },
  {
    name: "web",
    namespace: "default",
    clusterIPs: [SERVICE_IPS.web],
    ports: [{ name: "http", port: 80, targetPort: 8080 }],
    selector: { app: "web" },
    to: { "tcp/80": `${IPS.web}:8080` },
  },
  {
    name: "redis",
    namespace: "default",
    clusterIPs: [SERVICE_IPS.redis],
    ports: [{ name: "redis", port: 6379, targetPort: 6379 }],
    selector: { app: "redis" },
    to: { "tcp/6379": `${IPS.redis}:6379` },
  },
  {
    name: "echo",
    namespace: "default",
    clusterIPs: [SERVICE_IPS.echo],
    ports: [
      { name: "tcp-echo", port: 7, targetPort: 7 },
      { name: "udp-echo", port: 7, targetPort: 7, protocol: "UDP" },
      { name: "udp-peer", port: UDP_PEER_PORT, targetPort: UDP_PEER_PORT, protocol: "UDP" },
    ],
    selector: { app: "echo" },
    to: {
      "tcp/7": `${IPS.echo}:7`,
      "udp/7": `${IPS.echo}:7`,
      [`udp/${UDP_PEER_PORT}`]: `${IPS.echo}:${UDP_PEER_PORT}`,
    },
  },
  {
    name: "db",
    namespace: "default",
    clusterIPs: ["None"],
    ports: [{ name: "postgres", port: 5432, targetPort: 5432 }],
    selector: { app: "db" },
  },
];

/** Lines of the DNS server's hosts file (A and PTR records). */
export function dnsHosts(): string[] {
  return [
    `${SERVICE_IPS.kubernetes} kubernetes.default.svc.cluster.local`,
    `${SERVICE_IPS.kubeDns} kube-dns.kube-system.svc.cluster.local`,
    `${SERVICE_IPS.web} web.default.svc.cluster.local`,
    `${SERVICE_IPS.redis} redis.default.svc.cluster.local`,
    `${SERVICE_IPS.echo} echo.default.svc.cluster.local`,
    // Headless: the service name has every ready endpoint; PTR names the endpoint.
    `${IPS.db0} 10-244-0-20.db.default.svc.cluster.local db.default.svc.cluster.local`,
    `${IPS.db1} 10-244-0-21.db.default.svc.cluster.local db.default.svc.cluster.local`,
  ];
}

/** The pod-like resolv.conf of the cluster namespace. */
export const CLUSTER_RESOLV_CONF =
  "search kconnect.svc.cluster.local svc.cluster.local cluster.local\n" +
  `nameserver ${DNS_IP}\noptions ndots:5\n`;

/**
 * The laptop's upstream DNS (its "home router" or corporate resolver), run by dnsmasq in each
 * laptop namespace on the laptop's own address: everything outside the cluster goes there.
 * Names not listed are NXDOMAIN; `example.com` itself is NODATA (it has names below it). The
 * TTL is 0, so a caching resolver in front of it (systemd-resolved) asks again every time and
 * the query log shows every lookup.
 */
export const UPSTREAM_RECORDS: readonly { name: string; a: string; aaaa?: string }[] = [
  { name: "www.example.com", a: "192.0.2.10", aaaa: "2001:db8::10" },
  { name: "intranet.corp.example", a: "192.0.2.20" },
];

/** Addresses the laptop's upstream DNS answers with, by name. */
export const UPSTREAM_IPS = {
  www: "192.0.2.10",
  wwwV6: "2001:db8::10",
  intranet: "192.0.2.20",
} as const;

/** The laptop's own search domain (`intranet` → `intranet.corp.example`). */
export const LAPTOP_SEARCH_DOMAIN = "corp.example";

/** The resolv.conf of a laptop namespace whose upstream DNS listens on `ip`. */
export function laptopResolvConf(ip: string): string {
  return `nameserver ${ip}\nsearch ${LAPTOP_SEARCH_DOMAIN}\n`;
}

/**
 * Addresses of laptop number `index` (0 is the first laptop): a /30 of 100.64.0.0/24 shared
 * with the API server namespace, `gateway` on the API server's side and `ip` on the laptop's.
 * Laptop 0 is `100.64.0.1`–`100.64.0.2`; laptop 1 `100.64.0.5`–`100.64.0.6`, and so on.
 */
export function laptopAddresses(index: number): { gateway: string; ip: string } {
  if (!Number.isInteger(index) || index < 0 || index > 63) {
    throw new RangeError(`Laptop index ${index} is out of range 0..63`);
  }
  return { gateway: `100.64.0.${index * 4 + 1}`, ip: `100.64.0.${index * 4 + 2}` };
}
