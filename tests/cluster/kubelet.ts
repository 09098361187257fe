/**
 * The stand-in's kubelet: runs a pod of a Deployment as a process in the cluster's network
 * namespace and reports its status the way a kubelet does (Pending/ContainerCreating, then
 * Running, then Ready once the readiness probe passes; ErrImagePull and ImagePullBackOff for an
 * image that cannot be pulled; CrashLoopBackOff when the process exits).
 *
 * How a container becomes a process (the stand-in has no images and no mount namespaces):
 *
 * - `deno` (the first word of the command) is the Deno executable of the config;
 * - a volume's mount path is replaced by the pod's directory for that volume (configMap volumes
 *   get one file per key, emptyDir volumes an empty directory), in arguments and env values;
 * - the pods share one network namespace, so a pod's localhost is its pod IP: `127.0.0.1` and
 *   `localhost` in arguments become the pod IP, and port-forward dials the pod IP;
 * - the projected service-account token (a token the API server maps to
 *   `system:serviceaccount:<ns>:<sa>`, authorized by RBAC), `ca.crt` and `namespace` are written
 *   to the pod's directory, which `traffic-manager` is given with `--service-account-dir`, and
 *   KUBERNETES_SERVICE_HOST/PORT point at the API server.
 *
 * The readiness probe's exec command runs the same way, until it succeeds.
 *
 * @module
 */
import type { KubeletConfig } from "./config.ts";
import { hex, k8sTime, type KObject } from "./objects.ts";

/** A container as the Deployment's template has it. */
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { exec?: { command?: string[] }; periodSeconds?: number };
  ports?: { name?: string; containerPort: number }[];
}

interface Volume {
  name: string;
  configMap?: { name: string };
  emptyDir?: Record<string, unknown>;
}

/** What the kubelet tells the control plane. */
export type StatusUpdate = (status: Record<string, unknown>) => void;

/** A pod the kubelet runs. */
interface Running {
  key: string;
  podIP: string;
  child: Deno.ChildProcess | null;
  stopped: boolean;
  dir: string;
  exited: Promise<void>;
}

const PROBE_INTERVAL_MS = 250;

/** The default: repositories ending in `denoland/deno`, any tag. */
// A tag, a tag pinned by digest (what kconnect installs), or a digest alone.
const DEFAULT_PULLABLE =
  "^(?:[^/]+/)*denoland/deno(?::[\\w.-]+(?:@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$";
/** Where Kubernetes mounts a pod's service account token. */
const SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Docker Hub's full reference of a short image name, as containerd reports it. */
export function fullImageRef(image: string): string {
  const first = image.split("/")[0];
  const hasRegistry = image.includes("/") && (first.includes(".") || first.includes(":"));
  if (hasRegistry) return image;
  return `docker.io/${image.includes("/") ? image : `library/${image}`}`;
}

/** Runs pods as processes; see the module doc. */
export class Kubelet {
  readonly #config: KubeletConfig;
  readonly #issueToken: (user: string, groups: string[]) => string;
  readonly #pods = new Map<string, Running>();
  readonly #freeIPs: string[];
  readonly #log?: (line: string) => void;

  constructor(
    config: KubeletConfig,
    issueToken: (user: string, groups: string[]) => string,
    log?: (line: string) => void,
  ) {
    this.#config = config;
    this.#issueToken = issueToken;
    this.#freeIPs = [...config.podIPs];
    this.#log = log;
  }

  /** Where port-forward reaches a running pod: its IP in the cluster namespace. */
  target(key: string): { netns: string; host: string } | null {
    const r = this.#pods.get(key);
    return r && !r.stopped ? { netns: this.#config.netns, host: r.podIP } : null;
  }

  /** Whether `image` pulls; the kubelet's error message when it does not. */
  pullError(image: string): string | null {
    const pullable = new RegExp(this.#config.pullable ?? DEFAULT_PULLABLE);
    const ref = fullImageRef(image);
    if (pullable.test(image) && !(this.#config.unpullable ?? []).includes(image)) return null;
    if (pullable.test(image)) {
      return `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": ` +
        `failed to resolve reference "${ref}": ${ref}: not found`;
    }
    return `rpc error: code = Unknown desc = failed to pull and unpack image "${ref}": ` +
      `failed to resolve reference "${ref}": pull access denied, repository does not exist ` +
      `or may require authorization: server message: insufficient_scope: authorization failed`;
  }

  /**
   * Starts `pod` (already stored, scheduled, with status Pending) and reports each status
   * change through `update`. `configMap` reads a ConfigMap of the pod's namespace.
   */
  run(pod: KObject, configMap: (name: string) => KObject | undefined, update: StatusUpdate): void {
    const ns = pod.metadata.namespace!;
    const name = pod.metadata.name;
    const key = `${ns}/${name}`;
    const spec = pod.spec as {
      containers: Container[];
      volumes?: Volume[];
      serviceAccountName?: string;
      terminationGracePeriodSeconds?: number;
    };
    const c = spec.containers[0];
    const t0 = k8sTime();
    const base = {
      hostIP: "172.18.0.2",
      hostIPs: [{ ip: "172.18.0.2" }],
      startTime: t0,
      qosClass: "Burstable",
    };
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({
      type,
      status: ok ? "True" : "False",
      lastProbeTime: null,
      lastTransitionTime: k8sTime(),
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
    const notReady = (started: boolean) => [
      cond("PodReadyToStartContainers", started),
      cond("Initialized", true),
      cond("Ready", false, "ContainersNotReady", `containers with unready status: [${c.name}]`),
      cond(
        "ContainersReady",
        false,
        "ContainersNotReady",
        `containers with unready status: [${c.name}]`,
      ),
      cond("PodScheduled", true),
    ];
    const image = c.image ?? "";
    const cs = (state: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      containerStatuses: [{
        name: c.name,
        state,
        lastState: {},
        ready: false,
        restartCount: 0,
        image,
        imageID: "",
        started: false,
        ...extra,
      }],
    });
    update({
      phase: "Pending",
      conditions: notReady(false),
      ...base,
      ...cs({ waiting: { reason: "ContainerCreating" } }),
    });
    const running: Running = {
      key,
      podIP: "",
      child: null,
      stopped: false,
      dir: `${this.#config.dir}/${ns}_${name}`,
      exited: Promise.resolve(),
    };
    this.#pods.set(key, running);
    const pullError = this.pullError(image);
    if (pullError !== null) {
      setTimeout(() => {
        if (running.stopped) return;
        update({
          phase: "Pending",
          conditions: notReady(true),
          ...base,
          ...cs({ waiting: { reason: "ErrImagePull", message: pullError } }),
        });
        setTimeout(() => {
          if (running.stopped) return;
          update({
            phase: "Pending",
            conditions: notReady(true),
            ...base,
            ...cs({
              waiting: {
                reason: "ImagePullBackOff",
                message: `Back-off pulling image "${image}": ErrImagePull: ${pullError}`,
              },
            }),
          });
        }, 1500);
      }, 300);
      return;
    }
    const ip = this.#freeIPs.shift();
    if (ip === undefined) {
      update({
        phase: "Pending",
        conditions: notReady(false),
        ...base,
        ...cs({
          waiting: {
            reason: "ContainerCreating",
            message: "failed to allocate for range 0: no IP addresses available in range set",
          },
        }),
      });
      return;
    }
    running.podIP = ip;
    running.exited = this.#start(running, pod, spec, c, configMap, update, {
      base,
      notReady,
      cond,
      cs,
    }).catch((err) => {
      this.#log?.(`kubelet: pod ${key}: ${(err as Error).message}`);
      update({
        phase: "Pending",
        conditions: notReady(true),
        ...base,
        ...cs({
          waiting: { reason: "CreateContainerError", message: (err as Error).message },
        }),
      });
    });
  }

  async #start(
    running: Running,
    pod: KObject,
    spec: { volumes?: Volume[]; serviceAccountName?: string },
    c: Container,
    configMap: (name: string) => KObject | undefined,
    update: StatusUpdate,
    h: {
      base: Record<string, unknown>;
      notReady: (started: boolean) => unknown[];
      cond: (type: string, ok: boolean) => unknown;
      cs: (state: Record<string, unknown>, extra?: Record<string, unknown>) => unknown;
    },
  ): Promise<void> {
    const ns = pod.metadata.namespace!;
    const { dir, podIP } = running;
    await Deno.mkdir(dir, { recursive: true });
    // Volumes.
    const paths = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const vdir = `${dir}/volumes/${v.name}`;
      await Deno.mkdir(vdir, { recursive: true });
      if (v.configMap) {
        const cm = configMap(v.configMap.name);
        if (!cm) {
          throw new Error(`configmap "${v.configMap.name}" not found`);
        }
        for (const [k, text] of Object.entries((cm.data as Record<string, string>) ?? {})) {
          await Deno.writeTextFile(`${vdir}/${k}`, text);
        }
      }
    }
    for (const m of c.volumeMounts ?? []) {
      paths.set(m.mountPath.replace(/\/+$/, ""), `${dir}/volumes/${m.name}`);
    }
    // The projected service account.
    const sa = spec.serviceAccountName ?? "default";
    const saDir = `${dir}/sa`;
    await Deno.mkdir(saDir, { recursive: true });
    const token = this.#issueToken(`system:serviceaccount:${ns}:${sa}`, [
      "system:serviceaccounts",
      `system:serviceaccounts:${ns}`,
    ]);
    await Deno.writeTextFile(`${saDir}/token`, token);
    await Deno.copyFile(this.#config.caFile, `${saDir}/ca.crt`);
    await Deno.writeTextFile(`${saDir}/namespace`, ns);
    paths.set(SERVICE_ACCOUNT_MOUNT, saDir);

    // Longest mount path first; each argument is mapped once.
    const mounts = [...paths].sort(([a], [b]) => b.length - a.length);
    const mapPath = (a: string) => {
      const hit = mounts.find(([from]) => a === from || a.startsWith(`${from}/`));
      return hit ? hit[1] + a.slice(hit[0].length) : a;
    };
    // Deno's path permissions name mounted paths too: --allow-read=/kconnect,/etc/resolv.conf.
    const mapArg = (a: string) => {
      const perm = /^(--(?:allow|deny)-(?:read|write)=)(.*)$/.exec(a);
      const out = perm ? perm[1] + perm[2].split(",").map(mapPath).join(",") : mapPath(a);
      return out.replaceAll("127.0.0.1", podIP).replace(/\blocalhost\b/g, podIP);
    };
    const toCmd = (cmd: string[]) =>
      cmd.map((a, i) => i === 0 && a === "deno" ? this.#config.deno : mapArg(a));
    const cmd = toCmd([...(c.command ?? []), ...(c.args ?? [])]);
    if (cmd.includes("traffic-manager") && !cmd.includes("--service-account-dir")) {
      cmd.push("--service-account-dir", saDir);
    }
    const env: Record<string, string> = {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: dir,
      HOSTNAME: pod.metadata.name,
      KUBERNETES_SERVICE_HOST: this.#config.apiHost,
      KUBERNETES_SERVICE_PORT: String(this.#config.apiPort),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.#config.apiPort),
      ...this.#config.env,
    };
    for (const e of c.env ?? []) env[e.name] = mapArg(e.value ?? "");
    if (env.DENO_DIR) await Deno.mkdir(env.DENO_DIR, { recursive: true });
    if (running.stopped) return;
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.#config.netns, ...cmd],
      env,
      clearEnv: true,
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    running.child = child;
    const log = await Deno.open(`${dir}/${c.name}.log`, { create: true, append: true });
    const w = log.writable.getWriter();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) await w.write(chunk).catch(() => {});
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() =>
      w.close().catch(() => {})
    );
    const startedAt = k8sTime();
    const containerID = `containerd://${hex(64)}`;
    const imageID = `docker.io/denoland/deno@sha256:${hex(64)}`;
    const runningStatus = (ready: boolean) => ({
      phase: "Running",
      podIP,
      podIPs: [{ ip: podIP }],
      conditions: ready
        ? [
          h.cond("PodReadyToStartContainers", true),
          h.cond("Initialized", true),
          h.cond("Ready", true),
          h.cond("ContainersReady", true),
          h.cond("PodScheduled", true),
        ]
        : h.notReady(true),
      ...h.base,
      ...h.cs({ running: { startedAt } }, { ready, started: true, containerID, imageID }) as object,
    });
    update(runningStatus(false));
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    // Readiness: run the probe (mapped like the command) until it passes.
    const probe = c.readinessProbe?.exec?.command;
    let ready = probe === undefined;
    while (!ready && !exited && !running.stopped) {
      const p = await new Deno.Command("ip", {
        args: ["netns", "exec", this.#config.netns, ...toCmd(probe!)],
        env,
        clearEnv: true,
        cwd: dir,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output().catch(() => ({ success: false }));
      if (p.success) ready = true;
      else await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
    }
    if (ready && !exited && !running.stopped) update(runningStatus(true));
    const st = await status;
    await pumps;
    if (running.stopped) return;
    // Exited by itself: what a kubelet shows before it restarts the container.
    update({
      phase: "Running",
      podIP,
      podIPs: [{ ip: podIP }],
      conditions: h.notReady(true),
      ...h.base,
      ...h.cs({
        waiting: {
          reason: "CrashLoopBackOff",
          message:
            `back-off 10s restarting failed container=${c.name} pod=${pod.metadata.name}_${ns}(${pod.metadata.uid})`,
        },
      }, {
        restartCount: 1,
        lastState: {
          terminated: {
            exitCode: st.code,
            reason: "Error",
            startedAt,
            finishedAt: k8sTime(),
            containerID,
          },
        },
      }) as object,
    });
  }

  /** The log file of a pod's container (for tests). */
  logFile(key: string, container = "manager"): string | null {
    const r = this.#pods.get(key);
    return r ? `${r.dir}/${container}.log` : null;
  }

  /** Stops a pod's process (SIGTERM, SIGKILL after `graceMs`) and frees its IP. */
  async stop(key: string, graceMs = 3_000): Promise<void> {
    const r = this.#pods.get(key);
    if (!r || r.stopped) return;
    r.stopped = true;
    if (r.child) {
      try {
        r.child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          r.child?.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await r.child.status.catch(() => {});
      clearTimeout(timer);
    }
    await r.exited.catch(() => {});
    if (r.podIP) this.#freeIPs.push(r.podIP);
    this.#pods.delete(key);
  }

  /** Kills every pod process at once (the server is stopping). */
  killAll(): void {
    for (const r of this.#pods.values()) {
      r.stopped = true;
      try {
        r.child?.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }
}
