/**
 * The test cluster: three network namespaces, a Kubernetes API server stand-in, the node's
 * kubelet stand-in, workloads, cluster DNS, kube-proxy-style service NAT, and the traffic manager
 * as a process "in a pod".
 *
 * ```
 * laptop ──veth── apiserver (https://100.64.0.1:6443) ──veth── cluster = node-1
 * 100.64.0.2        100.64.0.1 | 100.64.1.1                      100.64.1.2, kubelet :10250 (TLS),
 *                                                                 pods 10.244.0.0/24,
 *                                                                 services 10.96.0.0/12 (DNAT),
 *                                                                 DNS 10.96.0.10, manager 127.0.0.1:8081
 * ```
 *
 * The laptop reaches only the API server; pods and services are reachable only through
 * `pods/portforward` to a pod (the manager). As in a real cluster that takes two hops: the API
 * server proxies the upgraded connection over TLS to the node's kubelet (`kubelet_server.ts`,
 * one process in the cluster namespace, which is the node's and every pod's network namespace,
 * so it dials each pod in-process, like containerd inside the pod's namespace).
 *
 * Each laptop namespace has its own `/etc/netns/<ns>/resolv.conf` (`nameserver <laptop ip>`,
 * `search corp.example`; see {@linkcode laptopResolvConf}), so nothing run in it can change the
 * host's `/etc/resolv.conf`, and its own upstream DNS server (dnsmasq on the laptop's address,
 * records in {@linkcode UPSTREAM_RECORDS}) whose query log shows which names left the laptop.
 * {@linkcode TestCluster.addLaptop} adds more laptops wired the same way.
 *
 * @example
 * ```ts ignore
 * import { TestCluster } from "./cluster/cluster.ts";
 * Deno.test({ name: "kconnect up reaches web", ignore: Deno.uid() !== 0 }, async () => {
 *   await using cluster = await TestCluster.start({ k8sVersion: "1.29" });
 *   await cluster.laptop.exec(["curl", "-sf", "--cacert", cluster.caFile,
 *     "-H", `Authorization: Bearer ${cluster.token}`, `${cluster.apiUrl}/version`]);
 * });
 * ```
 *
 * @module
 */
import { Netns } from "../_netns.ts";
import { type DnsQuery, Laptop } from "./laptop.ts";
import type { LineWatcher } from "../_lines.ts";
import type {
  ApiServerConfig,
  DenyRule,
  Identity,
  KubeletServerConfig,
  PodSpec,
  QuotaSpec,
} from "./config.ts";
import { kubeconfigYaml, type KubeContext } from "./kubeconfig.ts";
import { type KubeletPki, makeKubeletPki, makePki, type Pki } from "./pki.ts";
import { KUBELET_PORT } from "./kubelet_server.ts";
import {
  API_CLUSTER_IP,
  API_LAPTOP_IP,
  API_PORT,
  CLUSTER_RESOLV_CONF,
  IPS,
  KUBELET_POD_IPS,
  laptopResolvConf,
  MANAGER_POD,
  MANAGER_USER,
  managerPod,
  NODE,
  NODE_IP,
  SERVICE_CIDR,
  SERVICE_IPS,
  SERVICES,
  UPSTREAM_IPS,
  UPSTREAM_RECORDS,
  workloadPods,
} from "./topology.ts";
import {
  setUpClusterNetwork,
  startProcess,
  startWorkloads,
  waitListening,
  type Workload,
} from "./workloads.ts";
import { DENO_RUN } from "../_dataplane.ts";
import { MANAGER_V8_FLAGS, v8FlagsArg } from "../../src/v8_flags.ts";

/** Run flags the traffic manager gets in its pod, beyond permissions: its V8 flags. */
export const MANAGER_RUN_FLAGS: readonly string[] = [v8FlagsArg(MANAGER_V8_FLAGS)];

const ROOT = new URL("../../", import.meta.url).pathname;
const SA_SUFFIX = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A workload of a test's own, as one more pod. */
export interface ExtraWorkload {
  /** The pod as listed by the API server. Its IPs are added to the cluster namespace. */
  pod: PodSpec;
  /** Command run in the cluster namespace; none for a pod that is only listed. */
  command?: string[];
  /** Wait until the command listens on this port of the pod's first IP. */
  waitFor?: { port: number; proto?: "tcp" | "udp" };
}

/** Options of {@linkcode TestCluster.start}. */
export interface TestClusterOptions {
  /** Version played: 1.33 serves the ServiceCIDR API, 1.29 does not. Default `"1.33"`. */
  k8sVersion?: "1.33" | "1.29";
  /** 403 on listing (and getting, watching) nodes. Default false. */
  denyNodes?: boolean;
  /** 403 on creating services (dry run included). Default false. */
  denyServiceCreate?: boolean;
  /**
   * `true` (default): run a traffic manager process and list its pod (no Deployment).
   * `false`: no manager. `"deployment"`: no manager and no `kconnect` namespace, for
   * `kconnect install` to create them; the stand-in's kubelet runs the Deployment's pod.
   * (The kubelet runs the pods of any Deployment whatever this says.)
   */
  manager?: boolean | "deployment";
  /** `spec.hard` of a ResourceQuota `kconnect-quota` in namespace `kconnect` (which then exists). */
  quota?: QuotaSpec["hard"];
  /** Images the kubelet fails to pull (besides every image that is not `…denoland/deno:<tag>`). */
  unpullableImages?: string[];
  /** Extra environment of the pods the kubelet runs (e.g. `KCONNECT_LOG_LEVEL`). */
  podEnv?: Record<string, string>;
  /**
   * The manager's command, run in the cluster namespace. Default `deno run -A main.ts
   * traffic-manager --listen 127.0.0.1:8081 --service-account-dir <dir>`.
   */
  managerCommand?: string[];
  /** Extra environment of the manager. */
  managerEnv?: Record<string, string>;
  /** Seconds between the manager's network discovery runs. Default 30. */
  managerRefreshSeconds?: number;
  /** Wait until the manager listens on 127.0.0.1:8081. Default true. */
  waitForManager?: boolean;
  /** More pods and processes. */
  extraWorkloads?: ExtraWorkload[];
  /** Requests without credentials are `system:anonymous` instead of 401. Default false. */
  anonymousAuth?: boolean;
  /**
   * API server and kubelet log each request on their stderr (see `apiServerLog`, `kubeletLog`).
   * Default false.
   */
  apiServerLog?: boolean;
}

/** A running test cluster; `await using` it so that everything is removed. */
export class TestCluster implements AsyncDisposable {
  /** The laptop's namespace: it reaches only the API server. */
  readonly laptop: Netns;
  /**
   * All laptops: the first one (`laptop`, with its resolver set-up) and those added with
   * {@linkcode addLaptop}.
   */
  readonly laptops: Laptop[] = [];
  /** The API server's namespace. */
  readonly apiserverNs: Netns;
  /** The cluster's namespace: pods, services, DNS, the manager. */
  readonly clusterNs: Netns;
  /** Scratch directory (removed on dispose). */
  readonly dir: string;
  /** Directory the web pod serves over HTTP (`http://10.96.0.20/<file>`). */
  readonly webDir: string;
  /** The test PKI. */
  readonly pki: Pki;
  /** The kubelet's serving certificate and the API server's kubelet client certificate. */
  readonly kubeletPki: KubeletPki;
  /** API server URL for the laptop. */
  readonly apiUrl = `https://${API_LAPTOP_IP}:${API_PORT}`;
  /** Token of the laptop's `test` user (`kubernetes-admin`). */
  readonly token: string;
  /** Token of the manager's service account. */
  readonly managerToken: string;
  /** Token of the `viewer` user (context `viewer`): may only get, list and watch. */
  readonly viewerToken: string;
  /** Token the exec credential plugin hands out. */
  readonly execToken: string;
  /** Kubeconfig for the laptop (current context `test`). */
  readonly kubeconfig: string;
  /** `pathPrefix` for client-node's `loadFromCluster` (files under `<prefix>/var/run/…`). */
  readonly serviceAccountPathPrefix: string;
  /** The service account directory itself (`token`, `ca.crt`, `namespace`). */
  readonly serviceAccountDir: string;
  /** The API server's JSON config. */
  readonly apiServerConfig: ApiServerConfig;
  /** The kubelet's JSON config. */
  readonly kubeletConfig: KubeletServerConfig;
  readonly #options: TestClusterOptions;
  readonly #configFile: string;
  readonly #kubeletConfigFile: string;
  #apiServer: Workload | null = null;
  #kubelet: Workload | null = null;
  #manager: Workload | null = null;
  #pastManagers: Workload[] = [];
  #workloads: Workload[] = [];
  #nextLaptop = 1;
  #disposed = false;

  private constructor(
    namespaces: [Netns, Netns, Netns],
    dir: string,
    pki: Pki,
    kubeletPki: KubeletPki,
    options: TestClusterOptions,
  ) {
    [this.laptop, this.apiserverNs, this.clusterNs] = namespaces;
    this.laptops.push(new Laptop(this.laptop, 0, dir));
    this.dir = dir;
    this.webDir = `${dir}/web`;
    this.pki = pki;
    this.kubeletPki = kubeletPki;
    this.#options = options;
    this.token = `kc-admin-${randomHex(24)}`;
    this.execToken = `kc-exec-${randomHex(24)}`;
    this.viewerToken = `kc-viewer-${randomHex(24)}`;
    this.managerToken = fakeServiceAccountJwt();
    this.kubeconfig = `${dir}/kubeconfig`;
    this.serviceAccountPathPrefix = `${dir}/sa`;
    this.serviceAccountDir = `${dir}/sa${SA_SUFFIX}`;
    this.#configFile = `${dir}/apiserver.json`;
    this.#kubeletConfigFile = `${dir}/kubelet.json`;
    this.apiServerConfig = this.#makeConfig();
    this.kubeletConfig = {
      listen: `0.0.0.0:${KUBELET_PORT}`,
      nodeName: NODE.name,
      netns: this.clusterNs.name,
      tls: {
        certFile: kubeletPki.servingCertFile,
        keyFile: kubeletPki.servingKeyFile,
        caFile: pki.caFile,
      },
      allowedUsers: [kubeletPki.clientUser],
    };
  }

  /**
   * Builds and starts the cluster. On any failure everything made so far is removed and the
   * error (with the failing child's stderr) is thrown.
   */
  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const dir = await Deno.makeTempDir({ prefix: "kc-cluster-" });
    const made: Netns[] = [];
    let cluster: TestCluster | null = null;
    try {
      for (const p of ["laptop", "apisrv", "cluster"]) made.push(await Netns.create(p));
      await Deno.mkdir(`${dir}/pki`);
      const pki = await makePki(`${dir}/pki`, {
        serverIps: [API_LAPTOP_IP, API_CLUSTER_IP, SERVICE_IPS.kubernetes, "127.0.0.1"],
      });
      const kubeletPki = await makeKubeletPki(pki, { nodeName: NODE.name, nodeIps: [NODE_IP] });
      cluster = new TestCluster(made as [Netns, Netns, Netns], dir, pki, kubeletPki, options);
      await cluster.#build();
      return cluster;
    } catch (err) {
      if (cluster) await cluster[Symbol.asyncDispose]();
      else {
        for (const ns of made.reverse()) await ns[Symbol.asyncDispose]();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
      throw err;
    }
  }

  async #build(): Promise<void> {
    const { apiserverNs, clusterNs } = this;
    // The laptop's resolv.conf first: nothing may run in its namespace before it exists.
    await this.laptops[0].setUp(apiserverNs);
    await apiserverNs.veth(clusterNs, {
      name: "node0",
      peerName: "eth0",
      address: `${API_CLUSTER_IP}/30`,
      peerAddress: `${NODE_IP}/30`,
    });
    await Deno.mkdir(`/etc/netns/${clusterNs.name}`, { recursive: true });
    await Deno.writeTextFile(`/etc/netns/${clusterNs.name}/resolv.conf`, CLUSTER_RESOLV_CONF);
    await Deno.mkdir(this.webDir);
    await Deno.writeTextFile(`${this.webDir}/index.html`, "hello from web\n");
    const podIPs = [...this.apiServerConfig.pods.flatMap((p) => p.podIPs), ...KUBELET_POD_IPS];
    await setUpClusterNetwork(clusterNs, podIPs);
    this.#workloads = await startWorkloads(clusterNs, { dir: this.dir, webDir: this.webDir });
    for (const x of this.#options.extraWorkloads ?? []) {
      if (!x.command) continue;
      const w = startProcess(clusterNs, x.pod.name, x.command);
      this.#workloads.push(w);
      if (x.waitFor) {
        await waitListening(clusterNs, w, x.pod.podIPs[0], x.waitFor.port, x.waitFor.proto);
      }
    }
    await Deno.mkdir(this.serviceAccountDir, { recursive: true });
    await Deno.writeTextFile(`${this.serviceAccountDir}/token`, this.managerToken);
    await Deno.writeTextFile(`${this.serviceAccountDir}/ca.crt`, this.pki.caPem);
    await Deno.writeTextFile(`${this.serviceAccountDir}/namespace`, MANAGER_POD.namespace);
    await Deno.writeTextFile(this.#configFile, JSON.stringify(this.apiServerConfig, null, 2));
    await Deno.writeTextFile(this.#kubeletConfigFile, JSON.stringify(this.kubeletConfig, null, 2));
    await Deno.writeTextFile(this.kubeconfig, this.kubeconfigText("test"));
    await this.#startKubelet();
    await this.startApiServer();
    if ((this.#options.manager ?? true) === true) await this.#startManager();
  }

  #makeConfig(): ApiServerConfig {
    const v133 = (this.#options.k8sVersion ?? "1.33") === "1.33";
    const deny: DenyRule[] = [];
    if (this.#options.denyNodes) {
      for (const verb of ["list", "get", "watch"]) deny.push({ verb, resource: "nodes" });
    }
    if (this.#options.denyServiceCreate) deny.push({ verb: "create", resource: "services" });
    const admin: Identity = { user: "kubernetes-admin", groups: ["kubeadm:cluster-admins"] };
    const pods = workloadPods(this.clusterNs.name);
    const manager = this.#options.manager ?? true;
    if (manager === true) pods.push(managerPod(this.clusterNs.name));
    const quotas: QuotaSpec[] = this.#options.quota
      ? [{ namespace: "kconnect", name: "kconnect-quota", hard: this.#options.quota }]
      : [];
    const namespaces = ["default", "kube-system", "kube-public", "kube-node-lease"];
    if (manager !== "deployment" || quotas.length) namespaces.push("kconnect");
    for (const x of this.#options.extraWorkloads ?? []) {
      pods.push({
        ...x.pod,
        portForward: x.pod.portForward ?? { netns: this.clusterNs.name, host: x.pod.podIPs[0] },
      });
    }
    // The kubelet dials pods in-process in its own namespace: a pod elsewhere it cannot reach.
    for (const p of pods) {
      if (p.portForward && p.portForward.netns !== this.clusterNs.name) {
        throw new Error(
          `Pod ${p.namespace}/${p.name} lives in network namespace ${p.portForward.netns}, not ` +
            `in the node's (${this.clusterNs.name}), where the stand-in's kubelet dials pods`,
        );
      }
    }
    return {
      listen: `0.0.0.0:${API_PORT}`,
      advertiseAddress: `${API_LAPTOP_IP}:${API_PORT}`,
      tls: {
        certFile: this.pki.serverCertFile,
        keyFile: this.pki.serverKeyFile,
        caFile: this.pki.caFile,
      },
      version: v133
        ? { major: "1", minor: "33", gitVersion: "v1.33.1" }
        : { major: "1", minor: "29", gitVersion: "v1.29.14" },
      serviceCIDRApi: v133,
      tokens: {
        [this.token]: admin,
        [this.execToken]: { user: "exec-user@example.com", groups: ["kconnect:testers"] },
        [this.managerToken]: {
          user: MANAGER_USER,
          groups: ["system:serviceaccounts", "system:serviceaccounts:kconnect"],
        },
        [this.viewerToken]: { user: "viewer@example.com", groups: ["viewers"], access: "view" },
      },
      clientCertAuth: true,
      anonymousAuth: this.#options.anonymousAuth ?? false,
      deny,
      serviceCIDRs: [SERVICE_CIDR],
      namespaces,
      quotas,
      kubeletClient: {
        certFile: this.kubeletPki.clientCertFile,
        keyFile: this.kubeletPki.clientKeyFile,
        caFile: this.pki.caFile,
        port: KUBELET_PORT,
      },
      kubelet: {
        netns: this.clusterNs.name,
        deno: Deno.execPath(),
        dir: `${this.dir}/kubelet`,
        apiHost: API_CLUSTER_IP,
        apiPort: API_PORT,
        caFile: this.pki.caFile,
        podIPs: [...KUBELET_POD_IPS],
        unpullable: this.#options.unpullableImages ?? [],
        env: { DENO_NO_UPDATE_CHECK: "1", ...this.#options.podEnv },
      },
      nodes: [NODE],
      pods,
      services: SERVICES.map(({ to: _to, ...s }) => s),
    };
  }

  /**
   * A kubeconfig for this cluster whose current context is `context`. With `recordUidsTo`, the
   * exec plugin first appends `id -u` to that file, so a test sees which user ran it.
   */
  kubeconfigText(context: KubeContext, recordUidsTo?: string): string {
    const plugin = [...DENO_RUN, "--allow-env", `${ROOT}tests/cluster/exec_credential.ts`];
    return kubeconfigYaml({
      server: this.apiUrl,
      caPem: this.pki.caPem,
      token: this.token,
      clientCertPem: this.pki.clientCertPem,
      clientKeyPem: this.pki.clientKeyPem,
      execCommand: recordUidsTo === undefined
        ? plugin
        : ["/bin/sh", "-c", `id -u >> ${recordUidsTo}; exec ${plugin.join(" ")}`],
      execToken: this.execToken,
      viewerToken: this.viewerToken,
      currentContext: context,
    });
  }

  /** Writes a kubeconfig whose current context is `context` and returns its path. */
  async kubeconfigFor(context: KubeContext): Promise<string> {
    const path = `${this.dir}/kubeconfig-${context}`;
    await Deno.writeTextFile(path, this.kubeconfigText(context));
    return path;
  }

  /**
   * The first laptop's resolv.conf, `/etc/netns/<laptop ns>/resolv.conf`: inside the laptop
   * namespace it is `/etc/resolv.conf`. Removed on dispose.
   */
  get laptopResolvConf(): string {
    return this.laptops[0].resolvConf;
  }

  /** The query log of the first laptop's upstream DNS server (dnsmasq `--log-queries`). */
  get laptopDnsLog(): string {
    return this.laptops[0].dnsLog;
  }

  /** The queries the first laptop's upstream DNS server has received (since the last clear). */
  laptopDnsQueries(): Promise<DnsQuery[]> {
    return this.laptops[0].dnsQueries();
  }

  /**
   * Adds a laptop namespace (`kc-<prefix>-…`) wired like the first: a veth /30 to the API
   * server namespace (see {@linkcode laptopAddresses}), a route to the API server through it,
   * its own `/etc/netns` resolv.conf and upstream DNS server. It is removed on the cluster's
   * dispose, or earlier with `await using`.
   *
   * @example
   * ```ts ignore
   * await using second = await cluster.addLaptop("laptop2");
   * await second.ns.exec(["curl", "-sf", "--cacert", cluster.caFile, `${cluster.apiUrl}/healthz`]);
   * ```
   */
  async addLaptop(prefix = "laptop"): Promise<Laptop> {
    if (this.#disposed) throw new Error("Cannot add a laptop: the test cluster is disposed");
    const ns = await Netns.create(prefix);
    const laptop = new Laptop(ns, this.#nextLaptop++, this.dir);
    this.laptops.push(laptop);
    try {
      await laptop.setUp(this.apiserverNs);
    } catch (err) {
      await laptop[Symbol.asyncDispose]();
      throw err;
    }
    return laptop;
  }

  /**
   * The log file (stdout and stderr) of a pod the stand-in's kubelet runs, e.g.
   * `podLogFile("kconnect", "kconnect-traffic-manager-…")`.
   */
  podLogFile(namespace: string, pod: string, container = "manager"): string {
    return `${this.dir}/kubelet/${namespace}_${pod}/${container}.log`;
  }

  /** The CA certificate file (PEM). */
  get caFile(): string {
    return this.pki.caFile;
  }

  /**
   * The running manager's stdout, line by line (throws when no manager runs); those of managers
   * stopped are in {@linkcode pastManagers}.
   */
  get managerOutput(): LineWatcher {
    if (!this.#manager) throw new Error("No traffic manager runs in this test cluster");
    return this.#manager.out;
  }

  /** The running manager's stderr, line by line (throws when no manager runs). */
  get managerErrors(): LineWatcher {
    if (!this.#manager) throw new Error("No traffic manager runs in this test cluster");
    return this.#manager.err;
  }

  /** The manager process, or null. */
  get managerProcess(): Deno.ChildProcess | null {
    return this.#manager?.child ?? null;
  }

  /** The API server's stderr (its request log with `apiServerLog`). */
  get apiServerLog(): LineWatcher {
    if (!this.#apiServer) throw new Error("The API server is not running");
    return this.#apiServer.err;
  }

  /** The kubelet's stderr (its request log and port-forward errors with `apiServerLog`). */
  get kubeletLog(): LineWatcher {
    if (!this.#kubelet) throw new Error("The kubelet is not running");
    return this.#kubelet.err;
  }

  /** The kubelet process (the node's; it outlives API server restarts), or null. */
  get kubeletProcess(): Deno.ChildProcess | null {
    return this.#kubelet?.child ?? null;
  }

  /** Starts the kubelet in the cluster (node) namespace; resolves when it listens. */
  async #startKubelet(): Promise<void> {
    const w = startProcess(this.clusterNs, "kubelet", [
      ...DENO_RUN,
      "-A",
      `${ROOT}tests/cluster/kubelet_server.ts`,
      "--config",
      this.#kubeletConfigFile,
      ...(this.#options.apiServerLog ? ["--log"] : []),
    ]);
    this.#kubelet = w;
    try {
      await w.out.waitFor(/^listening on /, 30_000);
    } catch (err) {
      this.#kubelet = null;
      try {
        w.child.kill("SIGKILL");
      } catch { /* gone */ }
      throw new Error(
        `Cannot start the kubelet stand-in: ${(err as Error).message}\nstderr:\n${w.err.text()}`,
      );
    }
  }

  async #stopKubelet(): Promise<void> {
    const w = this.#kubelet;
    if (!w) return;
    this.#kubelet = null;
    try {
      w.child.kill("SIGTERM");
    } catch { /* gone */ }
    await w.child.status;
    await Promise.all([w.out.done, w.err.done]);
  }

  /** Starts the API server (after {@linkcode stopApiServer}); resolves when it listens. */
  async startApiServer(): Promise<void> {
    if (this.#apiServer) return;
    const w = startProcess(this.apiserverNs, "apiserver", [
      ...DENO_RUN,
      "-A",
      `${ROOT}tests/cluster/apiserver.ts`,
      "--config",
      this.#configFile,
      ...(this.#options.apiServerLog ? ["--log"] : []),
    ]);
    this.#apiServer = w;
    try {
      await w.out.waitFor(/^listening on /, 30_000);
    } catch (err) {
      this.#apiServer = null;
      try {
        w.child.kill("SIGKILL");
      } catch { /* gone */ }
      throw new Error(
        `Cannot start the API server stand-in: ${(err as Error).message}\nstderr:\n${w.err.text()}`,
      );
    }
  }

  /** Stops the API server (SIGTERM); open port-forwards break. */
  async stopApiServer(): Promise<void> {
    const w = this.#apiServer;
    if (!w) return;
    this.#apiServer = null;
    try {
      w.child.kill("SIGTERM");
    } catch { /* gone */ }
    await w.child.status;
    await Promise.all([w.out.done, w.err.done]);
  }

  /**
   * Stops and starts the API server: its connections close (open port-forwards break), and
   * objects created through the API are forgotten. The fixture's own objects (its pods, the
   * manager's included, services, nodes) come back from its config file, and the kubelet and the
   * manager keep running.
   */
  async restartApiServer(): Promise<void> {
    await this.stopApiServer();
    await this.startApiServer();
  }

  /**
   * Kills the traffic manager (SIGKILL by default: no goodbye to its clients, as when a node
   * dies) and waits until it has exited. The manager pod stays listed, so port-forwards to it
   * fail until {@linkcode startManager}. Does nothing when no manager runs.
   *
   * @throws {Error} when the cluster runs no manager of its own (`manager: false` or
   *   `"deployment"`).
   */
  async stopManager(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    this.#ownManager("stop");
    const w = this.#manager;
    if (!w) return;
    this.#manager = null;
    this.#pastManagers.push(w);
    try {
      w.child.kill(signal);
    } catch { /* gone */ }
    await w.child.status;
    await Promise.all([w.out.done, w.err.done]);
  }

  /**
   * Starts a traffic manager (after {@linkcode stopManager}) with the command and environment
   * of the first: same pod name, IP and port, and nothing of what the last one knew (its
   * sessions). Resolves when it listens (unless `waitForManager: false`). Does nothing when one
   * runs.
   *
   * @throws {Error} when the cluster runs no manager of its own, or when the new one does not
   *   start (with its stderr).
   */
  async startManager(): Promise<void> {
    this.#ownManager("start");
    if (this.#manager) return;
    await this.#startManager();
  }

  /**
   * The manager pod replaced: kills the traffic manager (SIGKILL) and starts a fresh one in its
   * place (see {@linkcode stopManager}, {@linkcode startManager}). Resolves when the new one
   * listens.
   */
  async restartManager(): Promise<void> {
    await this.stopManager();
    await this.startManager();
  }

  /** The managers stopped so far, oldest first (their processes and output, for diagnostics). */
  get pastManagers(): readonly Workload[] {
    return this.#pastManagers;
  }

  #ownManager(what: string): void {
    if ((this.#options.manager ?? true) !== true) {
      throw new Error(
        `Cannot ${what} the traffic manager: this test cluster runs none of its own ` +
          `(manager: ${JSON.stringify(this.#options.manager)})`,
      );
    }
    if (this.#disposed) {
      throw new Error(`Cannot ${what} the traffic manager: the cluster is disposed`);
    }
  }

  /**
   * Writes `size` bytes of pseudo-random content (the same for the same `seed`) as `name` in
   * the web pod's directory, and returns its URL through the `web` service and its sha256 (hex).
   * Large files cost only their disk space in the scratch dir.
   *
   * @example
   * ```ts ignore
   * const blob = await cluster.writeWebFile("blob.bin", 64 << 20);
   * await laptop.exec(["curl", "-sSf", "-o", "/tmp/x", blob.url]); // then compare blob.sha256
   * ```
   */
  async writeWebFile(
    name: string,
    size: number,
    seed = 1,
  ): Promise<{ path: string; url: string; sha256: string }> {
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
      throw new TypeError(`Cannot write web file "${name}": expected a plain file name`);
    }
    const data = pseudoRandomBytes(size, seed);
    const path = `${this.webDir}/${name}`;
    await Deno.writeFile(path, data);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return { path, url: `http://${SERVICE_IPS.web}/${name}`, sha256 };
  }

  async #startManager(): Promise<void> {
    const cmd = this.#options.managerCommand ?? [
      ...DENO_RUN,
      ...MANAGER_RUN_FLAGS,
      "-A",
      `${ROOT}main.ts`,
      "traffic-manager",
      "--listen",
      `127.0.0.1:${MANAGER_POD.port}`,
      "--service-account-dir",
      this.serviceAccountDir,
      "--refresh",
      String(this.#options.managerRefreshSeconds ?? 30),
    ];
    const w = startProcess(this.clusterNs, "traffic-manager", cmd, {
      KUBERNETES_SERVICE_HOST: API_CLUSTER_IP,
      KUBERNETES_SERVICE_PORT: String(API_PORT),
      KUBERNETES_SERVICE_PORT_HTTPS: String(API_PORT),
      HOSTNAME: MANAGER_POD.name,
      ...this.#options.managerEnv,
    });
    this.#manager = w;
    if (this.#options.waitForManager ?? true) {
      await waitListening(this.clusterNs, w, "127.0.0.1", MANAGER_POD.port, "tcp", 30_000);
    }
  }

  /**
   * Kills everything, deletes the namespaces, `/etc/netns/<cluster>` and `/etc/netns/<laptop>`
   * of every laptop, and the scratch dir.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.stopApiServer().catch(() => {});
    await this.#stopKubelet().catch(() => {});
    for (const laptop of this.laptops) await laptop[Symbol.asyncDispose]();
    for (const ns of [this.apiserverNs, this.clusterNs]) {
      await ns[Symbol.asyncDispose]();
    }
    await Deno.remove(`/etc/netns/${this.clusterNs.name}`, { recursive: true }).catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** `size` bytes from xorshift32 seeded with `seed`: the same bytes for the same seed. */
function pseudoRandomBytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = (Math.imul(seed, 2654435761) >>> 0) || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, size);
}

function randomHex(n: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(n / 2)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A token shaped like a projected service-account JWT (not signed; the stand-in only maps it). */
function fakeServiceAccountJwt(): string {
  const b64url = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "RS256", kid: randomHex(16) };
  const payload = {
    aud: ["https://kubernetes.default.svc.cluster.local"],
    exp: now + 3607,
    iat: now,
    iss: "https://kubernetes.default.svc.cluster.local",
    "kubernetes.io": {
      namespace: MANAGER_POD.namespace,
      pod: { name: MANAGER_POD.name, uid: crypto.randomUUID() },
      serviceaccount: { name: "traffic-manager", uid: crypto.randomUUID() },
    },
    nbf: now,
    sub: MANAGER_USER,
  };
  return `${b64url(header)}.${b64url(payload)}.${randomHex(64)}`;
}

/** Pod IPs of the standard workloads, for tests. */
export { IPS, MANAGER_POD, SERVICE_IPS };
/** The laptops' upstream DNS records and resolv.conf, for tests. */
export { laptopResolvConf, UPSTREAM_IPS, UPSTREAM_RECORDS };
export { type DnsQuery, Laptop } from "./laptop.ts";
