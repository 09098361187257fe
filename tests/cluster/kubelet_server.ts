/**
 * The stand-in's kubelet API: a standalone program, run inside the node's network namespace
 * (the test cluster's `cluster` namespace, where every pod lives too) as
 *
 * ```sh
 * deno run -A tests/cluster/kubelet_server.ts --config <file.json> [--log]
 * ```
 *
 * It is the second hop of `pods/{name}/portforward`: the API server stand-in (`apiserver.ts`)
 * authenticates and authorizes the client, then dials this server over TLS with its kubelet
 * client certificate, forwards the upgrade request and copies bytes both ways
 * (`upgrade_proxy.ts`). Here the WebSocket is terminated and each requested port is dialled in
 * this process, so in the pod's network namespace (`portforward.ts`). Each rule names the source it
 * copies (kubernetes/kubernetes unless said otherwise):
 *
 * - HTTPS with the kubelet's serving certificate; client certificates are requested and verified
 *   against the cluster CA (`--client-ca-file`); a request without one is `401 Unauthorized`, a
 *   user other than the API server's kubelet client gets `403 Forbidden (user=…, verb=…,
 *   resource=nodes, subresource=proxy)`: `pkg/kubelet/server/server.go`, `InstallAuthFilter`
 *   (`WriteErrorString`), attributes from `pkg/kubelet/server/auth.go`, `GetRequestAttributes`
 *   (every path without its own subresource is `nodes/proxy`; GET is `get`, POST `create`);
 * - the route `/portForward/{podNamespace}/{podID}` (and `…/{uid}`), GET or POST:
 *   `server.go`, `InstallDebuggingHandlers` and `getPortForward`, which the API server's
 *   `PortForwardLocation` (`pkg/registry/core/pod/strategy.go`) points at with the ports in one
 *   `port` query value (`streamParams`: comma-joined);
 * - `getPortForward`: `portforward.NewV4Options` (400 with its message), `GetPodByName`
 *   (`404 pod does not exist`), `GetPortForward` (the CRI call; containerd's `sandbox container
 *   is not running` comes back as `streaming.WriteError`'s 500), then the stream: the real kubelet
 *   proxies it to the container runtime's streaming server (`proxyStream`), which runs
 *   `k8s.io/kubelet/pkg/cri/streaming` and containerd's `portForward`; here both are this process;
 * - the WebSocket handshake and framing of `websocket.ts` and `portforward.ts`.
 *
 * What the stand-in adds: its pods are run by the API server process (`kubelet.ts`), so this
 * server does not know them by itself. The API server names the pod's sandbox in a request
 * header of the stand-in's own, {@linkcode SANDBOX_HEADER} (where to dial, or that the sandbox is
 * not running), which it strips from clients' requests; without it a pod "does not exist" here.
 * Sandbox IDs are this kubelet's, one per pod for its lifetime.
 *
 * Prints `listening on https://<listen>` on stdout when ready; with `--log`, one
 * `METHOD path code user` line per request on stderr. Exits on SIGTERM/SIGINT.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a standalone program: its stdout and stderr are its interface
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { KubeletServerConfig } from "./config.ts";
import { hex } from "./objects.ts";
import { negotiate, offeredProtocols, refuseUpgrade, WebSocketConnection } from "./websocket.ts";
import {
  closeAllPortForwards,
  parsePorts,
  PORTFORWARD_PROTOCOLS,
  type PortForwardTarget,
  servePortForward,
} from "./portforward.ts";

/**
 * The stand-in's own request header from the API server to this kubelet: `host=<address>;
 * netns=<ip netns name>` for a pod whose sandbox runs, `not-running` for one whose sandbox does
 * not. Not a Kubernetes header.
 */
export const SANDBOX_HEADER = "X-Stand-In-Pod-Sandbox";

/** The kubelet's port (`--port`, the node's `daemonEndpoints.kubeletEndpoint.Port`). */
export const KUBELET_PORT = 10250;

/** A pod's sandbox as the API server names it to the kubelet; null when it is not running. */
export interface PodSandbox {
  /** Address dialled for the pod's localhost (see `PortForwardTarget.host`). */
  host: string;
  /** `ip netns` name of the pod's network namespace. */
  netns: string;
}

/** The value of {@linkcode SANDBOX_HEADER} for `sandbox`. */
export function sandboxHeader(sandbox: PodSandbox | null): string {
  return sandbox ? `host=${sandbox.host}; netns=${sandbox.netns}` : "not-running";
}

/** Parses {@linkcode SANDBOX_HEADER}: the sandbox, null (not running), undefined (absent). */
export function parseSandboxHeader(value: string | undefined): PodSandbox | null | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === "not-running") return null;
  const fields = Object.fromEntries(
    value.split(";").map((f) => f.trim().split("=", 2) as [string, string]),
  );
  return fields.host && fields.netns ? { host: fields.host, netns: fields.netns } : undefined;
}

/** What one request gets. */
type Answer =
  | { code: number; text: string }
  | { code: 101 | 403; upgrade: (socket: Duplex, head: Buffer) => void };

/** The kubelet's request handling; exported for tests. */
export class KubeletServer {
  readonly config: KubeletServerConfig;
  readonly #sandboxes = new Map<string, string>();
  readonly #log?: (line: string) => void;

  constructor(config: KubeletServerConfig, log?: (line: string) => void) {
    this.config = config;
    this.#log = log;
  }

  /** The authenticated user (client certificate CN), or null. */
  user(req: IncomingMessage): string | null {
    const sock = req.socket as TLSSocket;
    if (!sock.authorized) return null;
    const subject = sock.getPeerCertificate()?.subject as unknown as
      | Record<string, string | string[]>
      | undefined;
    return subject?.CN ? String(subject.CN) : null;
  }

  /** Answers one request; `upgrade` requests get a function that takes over the socket. */
  route(req: IncomingMessage): Answer {
    const url = new URL(req.url ?? "/", "https://kubelet");
    const method = req.method ?? "GET";
    // InstallAuthFilter: authenticate, then authorize (auth.go GetRequestAttributes).
    const user = this.user(req);
    if (user === null) return { code: 401, text: "Unauthorized" };
    if (!this.config.allowedUsers.includes(user)) {
      const verb =
        ({ POST: "create", GET: "get", HEAD: "get", PUT: "update", PATCH: "patch" } as Record<
          string,
          string
        >)[method] ?? (method === "DELETE" ? "delete" : "");
      return {
        code: 403,
        text: `Forbidden (user=${user}, verb=${verb}, resource=nodes, subresource=proxy)`,
      };
    }
    if (url.pathname === "/healthz" && (method === "GET" || method === "HEAD")) {
      return { code: 200, text: "ok" };
    }
    const m = /^\/portForward\/([^/]+)\/([^/]+)(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (!m || (method !== "GET" && method !== "POST")) {
      // go-restful's answer when no route matches.
      return { code: 404, text: "404 page not found" };
    }
    const [namespace, pod] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    return this.#portForward(req, url, namespace, pod);
  }

  #portForward(req: IncomingMessage, url: URL, namespace: string, pod: string): Answer {
    const isWebSocket = /websocket/i.test(String(req.headers.upgrade ?? "")) &&
      /upgrade/i.test(String(req.headers.connection ?? ""));
    if (!isWebSocket) {
      // NewV4Options takes no ports from a SPDY request, and the streaming server would then
      // speak SPDY (handleHTTPStreams), which the stand-in does not.
      return {
        code: 400,
        text: "unable to upgrade: the stand-in's kubelet serves port-forward over WebSocket only",
      };
    }
    // getPortForward: NewV4Options first.
    const ports = parsePorts(url.searchParams.getAll("port"));
    if (typeof ports === "string") return { code: 400, text: ports };
    // GetPodByName.
    const header = req.headers[SANDBOX_HEADER.toLowerCase()];
    const sandbox = parseSandboxHeader(Array.isArray(header) ? header[0] : header);
    if (sandbox === undefined) return { code: 404, text: "pod does not exist" };
    // GetPortForward: containerd's PortForward refuses a sandbox that is not ready.
    if (sandbox === null) {
      return {
        code: 500,
        text: "rpc error: code = Unknown desc = sandbox container is not running",
      };
    }
    if (sandbox.netns !== this.config.netns) {
      return {
        code: 500,
        text: `rpc error: code = Unknown desc = the stand-in's kubelet runs in network namespace ` +
          `"${this.config.netns}" and cannot dial into "${sandbox.netns}"`,
      };
    }
    // The streaming server's WebSocket handshake (wsstream, golang.org/x/net/websocket).
    const offered = offeredProtocols(req.headers["sec-websocket-protocol"] as string | undefined);
    const protocol = negotiate(offered, PORTFORWARD_PROTOCOLS);
    if (protocol === null) {
      // golang.org/x/net/websocket newServerConn (vendored in kubernetes/kubernetes): when the
      // Handshake func (wsstream's protocol check) fails, a bare "HTTP/1.1 403 Forbidden" and
      // an empty line, no headers, no body.
      return { code: 403, upgrade: (socket) => refuseUpgrade(socket, 403, "Forbidden") };
    }
    const key = String(req.headers["sec-websocket-key"] ?? "");
    if (!key || req.headers["sec-websocket-version"] !== "13") {
      return { code: 400, text: "Bad Request" };
    }
    const target = this.#target(namespace, pod, sandbox);
    return {
      code: 101,
      upgrade: (socket, head) => {
        const ws = WebSocketConnection.accept(key, protocol, socket, head);
        servePortForward(ws, { protocol, ports, target, log: this.#log });
      },
    };
  }

  #target(namespace: string, pod: string, sandbox: PodSandbox): PortForwardTarget {
    const id = `${namespace}/${pod}`;
    let sandboxId = this.#sandboxes.get(id);
    if (!sandboxId) this.#sandboxes.set(id, sandboxId = hex(64));
    return { host: sandbox.host, sandboxId, netnsPath: `/var/run/netns/cni-${sandbox.netns}` };
  }
}

/** Headers of a plain-text answer as Go's net/http writes them after `WriteErrorString`. */
function textHead(code: number, body: string): string[] {
  return [
    `HTTP/1.1 ${code} ${statusText(code)}`,
    "Content-Type: text/plain; charset=utf-8",
    `Date: ${new Date().toUTCString()}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
}

function statusText(code: number): string {
  return ({
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
  } as Record<number, string>)[code] ?? "Error";
}

async function main(): Promise<void> {
  const args = Deno.args;
  const configPath = args[args.indexOf("--config") + 1];
  if (!args.includes("--config") || !configPath) {
    console.error("usage: kubelet_server.ts --config <file.json> [--log]");
    Deno.exit(2);
  }
  const config: KubeletServerConfig = JSON.parse(await Deno.readTextFile(configPath));
  const log = args.includes("--log") ? (line: string) => console.error(line) : undefined;
  const server = new KubeletServer(config, log);
  const logReq = (req: IncomingMessage, code: number) =>
    log?.(`${req.method} ${req.url} ${code} ${server.user(req) ?? "(none)"}`);

  const https_ = https.createServer({
    key: await Deno.readTextFile(config.tls.keyFile),
    cert: await Deno.readTextFile(config.tls.certFile),
    ca: await Deno.readTextFile(config.tls.caFile),
    // The kubelet requests a client certificate and answers 401 itself when there is none.
    requestCert: true,
    rejectUnauthorized: false,
  }, (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      const r = server.route(req);
      logReq(req, r.code);
      const body = "text" in r ? r.text : "unable to upgrade: missing upgrade headers in request";
      const code = "text" in r ? r.code : 400;
      res.writeHead(code, {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  https_.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    const r = server.route(req);
    logReq(req, r.code);
    if ("upgrade" in r) return r.upgrade(socket, head);
    // The API server proxies this answer to its client as it is; the connection then ends.
    socket.end(
      [...textHead(r.code, r.text), "Connection: close"].join("\r\n") + "\r\n\r\n" +
        r.text,
    );
  });
  const listen = config.listen ?? `0.0.0.0:${KUBELET_PORT}`;
  const [host, port] = listen.split(/:(?=\d+$)/);
  https_.listen(Number(port), host, () => {
    console.log(`listening on https://${listen}`);
  });
  const stop = () => {
    closeAllPortForwards();
    https_.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

if (import.meta.main) await main();
