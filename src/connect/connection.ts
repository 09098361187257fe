/**
 * Connecting to a cluster, up to the tunnel: kubeconfig, API server, traffic manager, a pool of
 * port-forward sessions, and the manager's cluster info. What `kconnect up` does before it
 * touches the machine.
 *
 * @module
 */
import type { ClusterAccess } from "../k8s/access.ts";
import { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { openPortForward } from "../k8s/portforward.ts";
import { logger, type Progress } from "../log.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import { TunnelDialer } from "../dial/tunnel.ts";
import { type ResumeEvent, SessionPool } from "../tunnel/pool.ts";
import { WindowBudget } from "../tunnel/window_budget.ts";
import { watchNetwork } from "./network_watch.ts";
import { HandshakeError } from "../tunnel/hello.ts";
import { openControl } from "./control.ts";
import { findTrafficManager } from "../manager_identity/find.ts";
import type { ManagerPod } from "../manager_identity/identity.ts";
import { ensureTrafficManager } from "../install/ensure.ts";

const log = logger("connect");

/**
 * Each stream's receive window on the laptop at its start, bytes (the tunnel's spec starts at
 * 256 KiB). A new connection's download moves this much in its first round trip instead of
 * ramping from 256 KiB; it is credit, not memory: bytes are only held here while the program on
 * the laptop reads slower than they come (as a TCP socket's receive buffer holds up to a few MiB).
 * Measured (64 MiB download at +20 ms, six each, fourfold window growth): the first 8 MiB in
 * 76–117 ms against 115–187 ms from 256 KiB.
 */
const LAPTOP_INITIAL_WINDOW = 4 * 1024 * 1024;
/**
 * Bytes of stream window beyond the spec's 256 KiB that all of the laptop's streams together may
 * hold (`WindowBudget`): what the cluster can make kconnect buffer for programs that read slowly
 * is at most this plus 256 KiB per open stream. About 68 streams opening at 4 MiB, or 8 downloads at
 * the 32 MiB cap; past it new streams open at 256 KiB and windows stop growing.
 */
const LAPTOP_WINDOW_BUDGET = 256 * 1024 * 1024;

/** Options for {@linkcode connectCluster}. */
export interface ConnectOptions {
  access: ClusterAccess;
  /** Namespace of the traffic manager. */
  managerNamespace: string;
  /** Port-forward WebSockets to keep open. */
  transports: number;
  /** Seconds open flows are held while the tunnel is down; 0: resumption off. Default 0. */
  resumeGraceSeconds?: number;
  /** The TUN's name: its own address changes are not a network change. */
  tunName?: string;
  /** Called with each cluster info after the first. */
  onInfo?: (info: ClusterInfo) => void;
  progress: Progress;
  signal?: AbortSignal;
  // --- traffic manager install/upgrade (src/install/ensure.ts) ---
  /** Install the traffic manager when none is found (`up --install`). Default false. */
  installManager?: boolean;
  /** Upgrade a kconnect-installed manager of another version (`--no-upgrade`: false). Default true. */
  upgradeManager?: boolean;
  /** Image for an install or upgrade (`--manager-image`). Default `denoland/deno:<Deno version>`. */
  managerImage?: string;
}

/** A live tunnel to a cluster. */
export interface ClusterConnection extends AsyncDisposable {
  access: ClusterAccess;
  serverVersion: string;
  /** The manager pod in use now (it changes when the pod is replaced). */
  readonly manager: ManagerPod;
  pool: SessionPool;
  dialer: TunnelDialer;
  /** The newest cluster info. */
  info: ClusterInfo;
  /** Why the last transport closed, if one did. */
  lastError: string | null;
  /** True while no transport is up (the pool is reconnecting). */
  readonly reconnecting: boolean;
  /** Resumption of the tunnel's sessions: in force or not, and what happened last. */
  readonly resume: ResumeState;
  close(): Promise<void>;
}

/** What `status` says about resumption. */
export interface ResumeState {
  /** `on`: sessions resume; `off`: `--resume-grace 0`; `unsupported`: a protocol-1 manager. */
  mode: "on" | "off" | "unsupported";
  /** Seconds the manager holds flows (what it granted; 0 when not on). */
  graceSeconds: number;
  /**
   * Bytes each side keeps at most per session to send again (the manager's limit, which this
   * side adopts; 0 when not on), and what this side keeps now over all sessions.
   */
  retainLimit: number;
  retainedBytes: number;
  /**
   * Detached sessions now: their streams, the bytes this side holds for them (kept to send
   * again, buffered and queued), and the seconds left of the soonest grace period.
   */
  held: { streams: number; bytes: number; secondsLeft: number } | null;
  /** The last resume, refusal or expiry: streams back or lost, and why. */
  last: {
    at: string;
    outcome: "resumed" | "refused" | "expired";
    streams: number;
    reason: string;
    afterMs?: number;
  } | null;
}

async function diagnosePortForward(
  client: KubeClient,
  pod: ManagerPod,
  err: Error,
): Promise<Error> {
  // The WebSocket handshake hides the HTTP status; a plain GET of the pod tells 401/403/404.
  try {
    await client.get(`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`);
  } catch (e) {
    if (e instanceof KubeApiError) return e;
  }
  return new Error(
    `${err.message}. The API server refused the port-forward to ${pod.namespace}/${pod.name}: ` +
      `check that the user may "create" pods/portforward in namespace "${pod.namespace}"`,
    { cause: err },
  );
}

/** Connects; every step is reported to `progress`. Errors say what failed and what to do. */
export async function connectCluster(o: ConnectOptions): Promise<ClusterConnection> {
  const { access, progress } = o;
  const client = new KubeClient(access);
  const version = await client.get<{ gitVersion?: string }>("/version", { signal: o.signal });
  const serverVersion = version.gitVersion ?? "unknown version";
  progress.done("cluster reached", `${access.server} (Kubernetes ${serverVersion})`);

  // Finds the manager; installs or upgrades it first when asked to (src/install/ensure.ts).
  const manager = await ensureTrafficManager({
    client,
    namespace: o.managerNamespace,
    progress,
    install: o.installManager ?? false,
    upgrade: o.upgradeManager ?? true,
    image: o.managerImage,
    signal: o.signal,
  });
  progress.done(
    "traffic manager found",
    `${manager.namespace}/${manager.name}${
      manager.ip ? ` (${manager.ip})` : ""
    }, port ${manager.port}`,
  );

  let lastForwardError: string | null = null;
  let current = manager;
  const grace = o.resumeGraceSeconds ?? 0;
  let legacy = false;
  let last: ResumeState["last"] = null;
  const onResumeEvent = (e: ResumeEvent) => {
    const at = new Date().toISOString();
    switch (e.kind) {
      case "legacy":
        legacy = true;
        log.warn(
          `${e.message}: open flows end when the tunnel drops (upgrade the traffic manager to keep them)`,
        );
        return;
      case "detached":
        log.info(
          `tunnel transport lost (${e.reason}); holding ${e.streams} flows for up to ${e.graceSeconds} s`,
        );
        return;
      case "resumed":
        last = {
          at,
          outcome: "resumed",
          streams: e.streams,
          reason: "the tunnel came back",
          afterMs: e.afterMs,
        };
        log.info(
          `tunnel resumed after ${(e.afterMs / 1000).toFixed(1)} s: ${e.streams} flows back`,
        );
        return;
      case "refused":
        last = { at, outcome: "refused", streams: e.streams, reason: e.reason };
        log.warn(`resume refused (${e.reason}): ${e.streams} flows ended`);
        return;
      case "expired":
        last = {
          at,
          outcome: "expired",
          streams: e.streams,
          reason: `the tunnel was down longer than the ${e.graceSeconds} s grace period`,
        };
        log.warn(
          `tunnel down longer than the ${e.graceSeconds} s grace period: ${e.streams} flows ended`,
        );
        return;
    }
  };
  const forward = async (m: ManagerPod, signal: AbortSignal) => {
    const pf = await openPortForward(access, {
      namespace: m.namespace,
      pod: m.name,
      port: m.port,
      signal,
      timeoutMs: 5_000,
    });
    pf.closed.then((text) => {
      if (text) {
        lastForwardError = text.trim();
        log.warn(`port-forward closed: ${lastForwardError}`);
      }
    });
    return pf;
  };
  const pool = new SessionPool({
    size: o.transports,
    connect: async (signal) => {
      try {
        return await forward(current, signal);
      } catch (err) {
        // The manager pod may have been replaced (rollout, eviction): look again.
        const again = await findTrafficManager(client, current.namespace).catch(() => null);
        if (again === null || again.name === current.name) throw err;
        log.info(`traffic manager moved to ${again.namespace}/${again.name}`);
        current = again;
        return await forward(current, signal);
      }
    },
    // A silently dead path (laptop asleep, network changed, traffic black-holed) is noticed
    // within about ten seconds: with resumption its flows are held and the session comes back
    // on a new transport; without, they end instead of hanging.
    session: {
      keepaliveIntervalMs: 3_000,
      keepaliveTimeoutMs: 6_000,
      initialWindow: LAPTOP_INITIAL_WINDOW,
    },
    policy: new WindowBudget(LAPTOP_WINDOW_BUDGET, (b) =>
      log.info(
        `stream window budget spent (${b.used >> 20} of ${b.capBytes >> 20} MiB held by open ` +
          "connections): new connections start at 256 KiB and windows stop growing until some end",
      )).policy,
    ...(grace > 0 ? { resume: { graceSeconds: grace, onEvent: onResumeEvent } } : {}),
    onSessionClosed: (info) => {
      if (conn !== undefined) {
        conn.lastError = `${info.reason}${info.error ? `: ${info.error.message}` : ""}`;
      }
      log.info(`tunnel transport closed (${info.reason}); reconnecting`);
    },
    retryMinMs: 250,
    retryMaxMs: 3_000,
  });
  let conn: ClusterConnection | undefined;
  try {
    // The port-forward opened but nothing answers at the pod's end (the handshake or the first
    // ping fails): the error channel's text says why.
    const silent = async (err: unknown) => {
      // Give the error channel a moment.
      await new Promise((r) => setTimeout(r, 200));
      return new Error(
        `The tunnel to ${manager.namespace}/${manager.name} port ${manager.port} does not answer: ${
          lastForwardError ?? (err as Error).message
        }`,
      );
    };
    try {
      await pool.start();
    } catch (err) {
      if (err instanceof HandshakeError) throw await silent(err);
      throw await diagnosePortForward(client, manager, err as Error);
    }
    let rtt: number;
    try {
      rtt = await pool.ping();
    } catch (err) {
      throw await silent(err);
    }
    progress.done(
      "tunnel open",
      `${o.transports} port-forward connection${o.transports === 1 ? "" : "s"}, round trip ${
        rtt.toFixed(1)
      } ms`,
    );
    const dialer = new TunnelDialer(pool);
    // A wake from sleep or a new network: try now instead of waiting out a keepalive or backoff.
    const watch = watchNetwork({
      ignore: o.tunName ? [o.tunName] : [],
      onChange: (why) => {
        log.info(`${why}: checking the tunnel`);
        pool.nudge();
      },
    });
    const onInfo = (info: ClusterInfo) => {
      conn!.info = info;
      o.onInfo?.(info);
    };
    const first = await openControl(pool, onInfo, o.signal);
    let closed = false;
    let control = first;
    // The control stream lives on one transport; when that one drops, open it again on another
    // (waiting for the pool to reconnect) and take the fresh cluster info it starts with.
    const controlLoop = (async () => {
      for (;;) {
        await control.done;
        if (closed) return;
        for (let delay = 250; !closed; delay = Math.min(delay * 2, 3_000)) {
          try {
            control = await openControl(pool, onInfo);
            onInfo(control.info);
            break;
          } catch {
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      }
    })();
    conn = {
      access,
      serverVersion,
      get manager() {
        return current;
      },
      pool,
      dialer,
      info: first.info,
      lastError: null,
      get reconnecting() {
        return pool.sessions.every((s) => s.isDetached);
      },
      get resume(): ResumeState {
        const detached = pool.detached;
        const now = performance.now();
        return {
          mode: grace === 0 ? "off" : legacy ? "unsupported" : "on",
          graceSeconds: pool.graceSeconds,
          retainLimit: pool.retainLimit,
          retainedBytes: pool.sessions.reduce((n, s) => n + s.retainedBytes, 0),
          held: detached.length === 0 ? null : {
            streams: detached.reduce((n, d) => n + d.session.numStreams, 0),
            bytes: detached.reduce((n, d) => n + d.session.retainedBytes + d.session.heldBytes, 0),
            secondsLeft: Math.max(
              0,
              Math.round(Math.min(...detached.map((d) => d.deadline - now)) / 1000),
            ),
          },
          last,
        };
      },
      async close() {
        closed = true;
        watch.stop();
        control.close();
        await pool.close();
        await controlLoop;
      },
      async [Symbol.asyncDispose]() {
        await conn!.close();
      },
    };
    return conn;
  } catch (err) {
    await pool.close();
    throw err;
  }
}
