/**
 * Connecting to a cluster, up to the tunnel: kubeconfig, API server, traffic manager, a pool of
 * port-forward sessions, and the manager's session info. What `kconnect up` does before it
 * touches the machine.
 *
 * @module
 */
import type { ClusterAccess } from "../k8s/access.ts";
import { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { openPortForward } from "../k8s/portforward.ts";
import { logger } from "../log.ts";
import type { SessionInfo } from "../manager/session_info.ts";
import { TunnelDialer } from "../dial/tunnel.ts";
import { SessionPool } from "../tunnel/pool.ts";
import type { Progress } from "../cli/progress.ts";
import { type Control, openControl } from "./control.ts";
import { findTrafficManager, type ManagerPod } from "./find_manager.ts";

const log = logger("connect");

/** Options for {@linkcode connectCluster}. */
export interface ConnectOptions {
  access: ClusterAccess;
  /** Namespace of the traffic manager. */
  managerNamespace: string;
  /** Port-forward WebSockets to keep open. */
  transports: number;
  /** Called with each session info after the first. */
  onInfo?: (info: SessionInfo) => void;
  progress: Progress;
  signal?: AbortSignal;
}

/** A live tunnel to a cluster. */
export interface ClusterConnection extends AsyncDisposable {
  access: ClusterAccess;
  serverVersion: string;
  manager: ManagerPod;
  pool: SessionPool;
  dialer: TunnelDialer;
  info: SessionInfo;
  control: Control;
  close(): Promise<void>;
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

  const manager = await findTrafficManager(client, o.managerNamespace);
  progress.done(
    "traffic manager found",
    `${manager.namespace}/${manager.name}${
      manager.ip ? ` (${manager.ip})` : ""
    }, port ${manager.port}`,
  );

  let lastForwardError: string | null = null;
  const pool = new SessionPool({
    size: o.transports,
    connect: async (signal) => {
      const conn = await openPortForward(access, {
        namespace: manager.namespace,
        pod: manager.name,
        port: manager.port,
        signal,
      });
      conn.closed.then((text) => {
        if (text) {
          lastForwardError = text.trim();
          log.warn(`port-forward closed: ${lastForwardError}`);
        }
      });
      return conn;
    },
    session: { keepaliveIntervalMs: 5_000, keepaliveTimeoutMs: 10_000 },
  });
  try {
    try {
      await pool.start();
    } catch (err) {
      throw await diagnosePortForward(client, manager, err as Error);
    }
    let rtt: number;
    try {
      rtt = await pool.ping();
    } catch (err) {
      // Give the error channel a moment: its text says why the pod end refused.
      await new Promise((r) => setTimeout(r, 200));
      throw new Error(
        `The tunnel to ${manager.namespace}/${manager.name} port ${manager.port} does not answer: ${
          lastForwardError ?? (err as Error).message
        }`,
      );
    }
    progress.done(
      "tunnel open",
      `${o.transports} port-forward connection${o.transports === 1 ? "" : "s"}, round trip ${
        rtt.toFixed(1)
      } ms`,
    );
    const dialer = new TunnelDialer(pool);
    const control = await openControl(pool, (info) => {
      conn.info = info;
      o.onInfo?.(info);
    }, o.signal);
    const conn: ClusterConnection = {
      access,
      serverVersion,
      manager,
      pool,
      dialer,
      info: control.info,
      control,
      async close() {
        control.close();
        await pool.close();
      },
      async [Symbol.asyncDispose]() {
        await conn.close();
      },
    };
    return conn;
  } catch (err) {
    await pool.close();
    throw err;
  }
}
