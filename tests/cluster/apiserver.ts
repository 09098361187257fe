/**
 * The Kubernetes API server stand-in: a standalone program, run inside its own network
 * namespace as
 *
 * ```sh
 * deno run -A tests/cluster/apiserver.ts --config <file.json> [--log]
 * ```
 *
 * It serves HTTPS (TLS with the test CA; optional client certificates, so it is built on
 * `node:https` with `requestCert`, which `Deno.serve` cannot do) and speaks kube-apiserver's
 * wire protocols: discovery, `/version`, list/get/create of the objects in the config
 * (`config.ts`), real `Status` errors (401, 403 with RBAC's wording, 404, 405, 409, 422), and
 * `pods/{name}/portforward`: after its own checks it proxies the upgraded connection, bytes
 * unchanged, to the node's kubelet over TLS with its kubelet client certificate
 * (`upgrade_proxy.ts`), and the stand-in's kubelet (`kubelet_server.ts`, its own process in the
 * node's network namespace) terminates the WebSocket and dials the pod. Prints
 * `listening on https://<addr>` on stdout when ready; with `--log`, one `METHOD path code user`
 * line per request on stderr (for port-forward, the kubelet's code once it answered). Exits on
 * SIGTERM/SIGINT.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a standalone program: its stdout and stderr are its interface
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { ApiServerConfig, Identity, PodSpec } from "./config.ts";
import * as st from "./status.ts";
import {
  apiGroup,
  apiGroupList,
  apiVersions,
  coreResourceList,
  groupResourceList,
  servesGroupVersion,
  versionInfo,
} from "./discovery.ts";
import { type RequestInfo, requestInfo } from "./request_info.ts";
import { resourceTable, Store } from "./store.ts";
import type { KObject } from "./objects.ts";
import { type Matcher, parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { createService } from "./services.ts";
import { refuseUpgrade } from "./websocket.ts";
import { Controllers } from "./controllers.ts";
import { createObject, type CrudContext, deleteObject, GENERIC, updateObject } from "./crud.ts";
import { Kubelet } from "./kubelet.ts";
import { quotaObject } from "./quota.ts";
import { allowed } from "./rbac.ts";
import {
  type Backend,
  type BackendRequest,
  canonicalHeader,
  closeAllProxies,
  type ProxyResult,
  proxyUpgrade,
} from "./upgrade_proxy.ts";
import { KUBELET_PORT, type PodSandbox, SANDBOX_HEADER, sandboxHeader } from "./kubelet_server.ts";

/** What a route answers. */
type Result =
  | { code: number; json: unknown }
  | { code: number; text: string }
  | { code: 200; watch: (res: ServerResponse) => void }
  | { code: 101; proxy: (socket: Duplex, head: Buffer) => Promise<ProxyResult> };

const PUBLIC_PATHS = ["/version", "/healthz", "/livez", "/readyz", "/version/"];

/** The server: routes, authentication, authorization. Exported for reuse in tests. */
export class ApiServer {
  readonly config: ApiServerConfig;
  readonly store: Store;
  readonly #table;
  readonly #kubelet: Kubelet | null;
  readonly #controllers: Controllers;
  readonly #crud: CrudContext;
  /** The kubelet client's TLS material (`config.kubeletClient`), read once. */
  readonly #kubeletTls: Omit<Backend, "hostname" | "port"> | null;
  #log: ((line: string) => void) | undefined;

  constructor(config: ApiServerConfig, log?: (line: string) => void) {
    this.config = config;
    this.store = new Store(config);
    this.#table = resourceTable(config.serviceCIDRApi);
    this.#log = log;
    for (const q of config.quotas ?? []) {
      this.store.create("resourcequotas", quotaObject(q, this.store.stamp()));
    }
    this.#kubelet = config.kubelet
      ? new Kubelet(config.kubelet, (user, groups) => this.issueToken(user, groups), log)
      : null;
    this.#controllers = new Controllers(this.store, this.#kubelet, config.quotas ?? []);
    this.#crud = {
      store: this.store,
      table: this.#table,
      quotas: config.quotas ?? [],
      controllers: this.#controllers,
    };
    const kc = config.kubeletClient;
    this.#kubeletTls = kc
      ? {
        caPem: Deno.readTextFileSync(kc.caFile),
        certPem: Deno.readTextFileSync(kc.certFile),
        keyPem: Deno.readTextFileSync(kc.keyFile),
      }
      : null;
  }

  /** A new bearer token for `user`, authorized by RBAC (a pod's projected service account). */
  issueToken(user: string, groups: string[]): string {
    const token = `kc-sa-${crypto.randomUUID().replaceAll("-", "")}`;
    this.config.tokens[token] = { user, groups, access: "rbac" };
    return token;
  }

  /** Stops the controllers and every pod process. */
  close(): void {
    this.#controllers.close();
  }

  /** Who is calling, `"invalid"` for a bad credential, null for none. */
  authenticate(req: IncomingMessage): Identity | "invalid" | null {
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) return "invalid";
      const id = this.config.tokens[m[1]];
      return id ?? "invalid";
    }
    const sock = req.socket as TLSSocket;
    if ((this.config.clientCertAuth ?? true) && sock.authorized) {
      const cert = sock.getPeerCertificate();
      const subject = cert?.subject as unknown as Record<string, string | string[]> | undefined;
      if (subject?.CN) {
        const org = subject.O;
        return {
          user: String(subject.CN),
          groups: org === undefined ? [] : Array.isArray(org) ? org : [org],
        };
      }
    }
    return null;
  }

  /** Answers one request (upgrade requests included). */
  route(req: IncomingMessage, body: string): Result {
    const url = new URL(req.url ?? "/", "https://apiserver");
    const path = url.pathname;
    const query = url.searchParams;
    const method = req.method ?? "GET";
    let who = this.authenticate(req);
    if (who === "invalid" || (who === null && !this.config.anonymousAuth)) {
      return { code: 401, json: st.unauthorized() };
    }
    who ??= { user: "system:anonymous", groups: ["system:unauthenticated"] };
    const info = requestInfo(method, path, query);
    const denied = this.#authorize(who, info);
    if (denied) return { code: 403, json: denied };

    if (!info.isResourceRequest) return this.#nonResource(info);
    return this.#resource(req, info, query, body);
  }

  #authorize(who: Identity, info: RequestInfo): st.Status | null {
    const anonymous = who.user === "system:anonymous";
    if (anonymous && !(info.verb === "get" && PUBLIC_PATHS.includes(info.path))) {
      return st.forbidden({
        user: who.user,
        verb: info.verb,
        resource: info.resource,
        subresource: info.subresource,
        group: info.group,
        namespace: info.namespace,
        name: info.name,
        path: info.path,
      });
    }
    if (!info.isResourceRequest) return null;
    const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource!;
    const rule = (this.config.deny ?? []).find((d) =>
      d.verb === info.verb && d.resource === res && (d.group ?? "") === info.group
    );
    const ask = {
      verb: info.verb,
      group: info.group,
      resource: res,
      namespace: info.namespace,
      name: info.name,
    };
    if (!rule && allowed(this.store, who, ask)) return null;
    return st.forbidden({
      user: who.user,
      verb: info.verb,
      resource: info.resource,
      subresource: info.subresource,
      group: info.group,
      namespace: info.namespace,
      name: info.name,
    });
  }

  #nonResource(info: RequestInfo): Result {
    const p = info.path.replace(/\/$/, "") || "/";
    const cidrApi = this.config.serviceCIDRApi;
    if (info.verb !== "get") return { code: 404, text: "404 page not found\n" };
    switch (p) {
      case "/version":
        return { code: 200, json: versionInfo(this.config.version) };
      case "/healthz":
      case "/livez":
      case "/readyz":
        return { code: 200, text: "ok" };
      case "/api":
        return { code: 200, json: apiVersions(this.config.advertiseAddress) };
      case "/api/v1":
        return { code: 200, json: coreResourceList() };
      case "/apis":
        return { code: 200, json: apiGroupList(cidrApi) };
    }
    const parts = p.split("/").filter(Boolean);
    if (parts[0] === "apis" && parts.length === 2) {
      const g = apiGroup(parts[1], cidrApi);
      if (g) return { code: 200, json: g };
    }
    if (
      parts[0] === "apis" && parts.length === 3 && servesGroupVersion(parts[1], parts[2], cidrApi)
    ) {
      return { code: 200, json: groupResourceList(parts[1], parts[2], cidrApi) };
    }
    return { code: 404, text: "404 page not found\n" };
  }

  #resource(req: IncomingMessage, info: RequestInfo, query: URLSearchParams, body: string): Result {
    const cidrApi = this.config.serviceCIDRApi;
    const served = info.prefix === "api"
      ? info.version === "v1"
      : servesGroupVersion(info.group, info.version, cidrApi);
    // No go-restful web service for this group/version: the mux's plain 404.
    if (!served) return { code: 404, text: "404 page not found\n" };
    const res = this.#table[info.resource!];
    if (
      !res || res.group !== info.group ||
      (info.namespace && !res.namespaced && info.resource !== "namespaces")
    ) {
      return { code: 404, json: st.unknownResource() };
    }
    const resource = info.resource!;
    if (info.subresource) {
      if (resource === "pods" && info.subresource === "portforward") {
        return this.#portForward(req, info, query);
      }
      return { code: 404, json: st.unknownResource() };
    }
    const ns = res.namespaced ? info.namespace : undefined;
    switch (info.verb) {
      case "list":
      case "watch":
        return this.#list(resource, ns, query, info.verb === "watch");
      case "get": {
        const o = this.store.get(resource, ns, info.name!);
        return o
          ? { code: 200, json: o }
          : { code: 404, json: st.notFound(resource, info.name!, res.group) };
      }
      case "create":
        return this.#create(resource, ns, query, body);
      case "update": {
        if (!GENERIC.has(resource) && !["configmaps", "namespaces"].includes(resource)) {
          return { code: 405, json: st.methodNotAllowed() };
        }
        const parsed = parseBody(body);
        if ("code" in parsed) return parsed;
        const dry = query.getAll("dryRun").length > 0;
        return updateObject(this.#crud, resource, ns, info.name!, parsed.value, dry);
      }
      case "delete": {
        if (
          !GENERIC.has(resource) && !["services", "configmaps", "namespaces"].includes(resource)
        ) {
          return { code: 405, json: st.methodNotAllowed() };
        }
        return deleteObject(this.#crud, resource, ns, info.name!);
      }
      default:
        return { code: 405, json: st.methodNotAllowed() };
    }
  }

  #list(resource: string, ns: string | undefined, query: URLSearchParams, watch: boolean): Result {
    const info = this.#table[resource];
    let labels: Matcher = () => true;
    let fields: Matcher = () => true;
    try {
      const ls = query.get("labelSelector");
      if (ls) labels = parseLabelSelector(ls);
      const fs = query.get("fieldSelector");
      if (fs) fields = parseFieldSelector(fs, supportedFields(resource));
    } catch (err) {
      return { code: 400, json: st.badRequest((err as Error).message) };
    }
    const match = (o: KObject) => labels(o.metadata.labels ?? {}) && fields(fieldsOf(resource, o));
    const items = this.store.list(resource, ns).filter(match);
    if (watch) {
      return {
        code: 200,
        watch: (res) => {
          res.writeHead(200, {
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache, private",
          });
          const send = (type: string, object: KObject) =>
            res.write(JSON.stringify({ type, object }) + "\n");
          if (query.get("resourceVersion") === null || query.get("resourceVersion") === "0") {
            for (const o of items) send("ADDED", o);
          }
          const stop = this.store.watch(resource, ns, (e) => {
            if (match(e.object)) send(e.type, e.object);
          });
          const timeout = Number(query.get("timeoutSeconds") ?? 1800);
          const timer = setTimeout(() => res.end(), timeout * 1000);
          res.on("close", () => {
            stop();
            clearTimeout(timer);
          });
        },
      };
    }
    const list = {
      kind: `${info.kind}List`,
      apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
      metadata: { resourceVersion: this.store.resourceVersion },
      items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    };
    return { code: 200, json: list };
  }

  #create(resource: string, ns: string | undefined, query: URLSearchParams, body: string): Result {
    const dry = query.getAll("dryRun");
    if (dry.some((d) => d !== "All")) {
      return {
        code: 400,
        json: st.badRequest(
          `dryRun: Unsupported value: ${JSON.stringify(dry.find((d) => d !== "All"))}: ` +
            `supported values: "All"`,
        ),
      };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      return {
        code: 400,
        json: st.badRequest(
          `the body of the request was in an unknown format - accepted ` +
            `media types include: application/json, application/yaml, ` +
            `application/vnd.kubernetes.protobuf, application/apply-patch+yaml ` +
            `(${(err as Error).message})`,
        ),
      };
    }
    if (resource === "services") {
      const [code, json] = createService(
        {
          store: this.store,
          serviceCIDRs: this.config.serviceCIDRs,
          metaAllocator: this.config.serviceCIDRApi,
        },
        ns!,
        parsed,
        dry.length > 0,
      );
      return { code, json };
    }
    if (GENERIC.has(resource) || resource === "configmaps" || resource === "namespaces") {
      return createObject(this.#crud, resource, ns, parsed, dry.length > 0);
    }
    return { code: 405, json: st.methodNotAllowed() };
  }

  #portForward(req: IncomingMessage, info: RequestInfo, query: URLSearchParams): Result {
    const name = info.name!;
    // k8s.io/apiserver pkg/endpoints/handlers/rest.go ConnectResource: the connect options are
    // decoded first (getRequestOptions; a failure is a 400 Status).
    const ports = convertPorts(query.getAll("ports"));
    if (typeof ports === "string") return { code: 400, json: st.badRequest(ports) };
    const pod = this.store.get("pods", info.namespace, name);
    if (!pod) return { code: 404, json: st.notFound("pods", name) };
    const isWebSocket = /websocket/i.test(String(req.headers.upgrade ?? "")) &&
      /upgrade/i.test(String(req.headers.connection ?? ""));
    if (!isWebSocket) {
      // UpgradeAwareHandler with upgradeRequired.
      return { code: 400, json: st.badRequest("Upgrade request required") };
    }
    const nodeName = (pod.spec as { nodeName?: string }).nodeName;
    if (!nodeName) {
      return { code: 400, json: st.badRequest(`pod ${name} does not have a host assigned`) };
    }
    // pkg/registry/core/pod/strategy.go PortForwardLocation: the node's kubelet (its connection
    // info: the node's address, the kubelet port), `/portForward/{namespace}/{name}` and the ports
    // as one comma-joined `port` value (streamParams).
    const node = this.config.nodes.find((n) => n.name === nodeName);
    if (!node) return { code: 404, json: st.notFound("nodes", nodeName) };
    const params = new URLSearchParams();
    if (ports.length > 0) params.set("port", ports.join(","));
    const target = `/portForward/${encodeURIComponent(info.namespace!)}/${
      encodeURIComponent(name)
    }${ports.length > 0 ? `?${params}` : ""}`;
    const tls = this.#kubeletTls;
    const backend: Backend | null = tls
      ? { hostname: node.internalIP, port: this.config.kubeletClient?.port ?? KUBELET_PORT, ...tls }
      : null;
    const request: BackendRequest = {
      method: req.method ?? "GET",
      target,
      headers: backendHeaders(req, this.#sandbox(pod, info.namespace!, name)),
    };
    return {
      code: 101,
      proxy: (socket, head) =>
        backend
          ? proxyUpgrade(socket, head, backend, request)
          : Promise.resolve({ error: "error dialing backend: no kubelet client is configured" }),
    };
  }

  /**
   * Where the pod's sandbox is, for the stand-in's kubelet (see `kubelet_server.ts`): the pods of
   * the config, or those the stand-in's pod runner (`kubelet.ts`) runs; null when not running.
   */
  #sandbox(pod: KObject, namespace: string, name: string): PodSandbox | null {
    const dynamic = this.#kubelet?.target(`${namespace}/${name}`);
    const spec: PodSpec | undefined =
      this.config.pods.find((p) => p.name === name && p.namespace === namespace) ??
        (dynamic
          ? {
            name,
            namespace,
            podIPs: [],
            containers: [],
            phase: (pod.status as { phase?: PodSpec["phase"] })?.phase ?? "Pending",
            portForward: dynamic,
          }
          : undefined);
    if (!spec?.portForward || (spec.phase ?? "Running") !== "Running") return null;
    return { host: spec.portForward.host ?? "127.0.0.1", netns: spec.portForward.netns };
  }
}

/**
 * k8s.io/apimachinery pkg/apis/meta/v1/conversion.go Convert_Slice_string_To_Slice_int32: each
 * `ports` value split on commas, each part `strconv.ParseUint(v, 10, 16)`. Returns the ports or
 * the error message.
 */
export function convertPorts(values: string[]): number[] | string {
  const out: number[] = [];
  for (const value of values) {
    for (const v of value.split(",")) {
      const why = !/^[0-9]+$/.test(v)
        ? "invalid syntax"
        : Number(v) > 65535
        ? "value out of range"
        : null;
      if (why) {
        return `cannot convert to []int32: strconv.ParseUint: parsing ${JSON.stringify(v)}: ${why}`;
      }
      out.push(Number(v));
    }
  }
  return out;
}

/**
 * The headers the API server sends the kubelet: the client's (Go's `Request.Write`: Host, then
 * User-Agent, then the rest sorted by canonical name), less `Authorization` (removed by the
 * authentication filter) and less any {@linkcode SANDBOX_HEADER} the client sent;
 * `X-Forwarded-For` gets the client's address appended; then the stand-in's sandbox header.
 */
function backendHeaders(req: IncomingMessage, sandbox: PodSandbox | null): [string, string][] {
  const drop = new Set([
    "host",
    "user-agent",
    "authorization",
    "x-forwarded-for",
    "content-length",
    "transfer-encoding",
    "trailer",
    SANDBOX_HEADER.toLowerCase(),
  ]);
  const byName = new Map<string, string[]>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (drop.has(raw[i].toLowerCase())) continue;
    const key = canonicalHeader(raw[i]);
    byName.set(key, [...(byName.get(key) ?? []), raw[i + 1]]);
  }
  const prior = req.headers["x-forwarded-for"];
  const client = req.socket.remoteAddress ?? "";
  const forwarded = prior
    ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${client}`
    : client;
  byName.set("X-Forwarded-For", [forwarded]);
  byName.set(canonicalHeader(SANDBOX_HEADER), [sandboxHeader(sandbox)]);
  const out: [string, string][] = [
    ["Host", String(req.headers.host ?? "")],
    ["User-Agent", String(req.headers["user-agent"] ?? "Go-http-client/1.1")],
  ];
  for (const key of [...byName.keys()].sort()) {
    for (const v of byName.get(key)!) out.push([key, v]);
  }
  return out;
}

function parseBody(body: string): { value: unknown } | { code: number; json: unknown } {
  try {
    return { value: JSON.parse(body) };
  } catch (err) {
    return {
      code: 400,
      json: st.badRequest(
        `the body of the request was in an unknown format - accepted ` +
          `media types include: application/json, application/yaml, ` +
          `application/vnd.kubernetes.protobuf, application/apply-patch+yaml ` +
          `(${(err as Error).message})`,
      ),
    };
  }
}

function supportedFields(resource: string): string[] {
  const common = ["metadata.name", "metadata.namespace"];
  switch (resource) {
    case "pods":
      // kubernetes/kubernetes pkg/registry/core/pod/strategy.go, ToSelectableFields (no
      // status.podIPs there).
      return [
        ...common,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
      ];
    case "nodes":
      return [...common, "spec.unschedulable"];
    case "services":
      return [...common, "spec.clusterIP", "spec.type"];
    case "namespaces":
      return [...common, "status.phase"];
    default:
      return common;
  }
}

function fieldsOf(resource: string, o: KObject): Record<string, string> {
  const f: Record<string, string> = {
    "metadata.name": o.metadata.name,
    "metadata.namespace": o.metadata.namespace ?? "",
  };
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const status = (o.status ?? {}) as Record<string, unknown>;
  if (resource === "pods") {
    f["spec.nodeName"] = String(spec.nodeName ?? "");
    f["spec.restartPolicy"] = String(spec.restartPolicy ?? "");
    f["spec.schedulerName"] = String(spec.schedulerName ?? "");
    f["spec.serviceAccountName"] = String(spec.serviceAccountName ?? "");
    f["spec.hostNetwork"] = String(spec.hostNetwork ?? false);
    f["status.phase"] = String(status.phase ?? "");
    f["status.podIP"] = String(status.podIP ?? "");
    f["status.nominatedNodeName"] = String(status.nominatedNodeName ?? "");
  } else if (resource === "services") {
    f["spec.clusterIP"] = String(spec.clusterIP ?? "");
    f["spec.type"] = String(spec.type ?? "");
  } else if (resource === "namespaces") {
    f["status.phase"] = String(status.phase ?? "");
  }
  return f;
}

function auditHeaders(): Record<string, string> {
  return {
    "Audit-Id": crypto.randomUUID(),
    "Cache-Control": "no-cache, private",
    "X-Kubernetes-Pf-Flowschema-Uid": "8c5d7e9f-1f0a-4b1e-9d7a-3c2b1a0f9e8d",
    "X-Kubernetes-Pf-Prioritylevel-Uid": "2b1c0d9e-8f7a-4c6b-9e5d-4a3b2c1d0e9f",
  };
}

function statusText(code: number): string {
  return ({
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
  } as Record<number, string>)[code] ?? "Error";
}

/** Writes a non-upgrade result as a raw HTTP response on an upgrade socket. */
function writeRaw(socket: Duplex, r: Result): void {
  if ("json" in r || "text" in r) {
    const isJson = "json" in r;
    const body = "json" in r ? JSON.stringify(r.json) : r.text;
    const head = [
      `HTTP/1.1 ${r.code} ${statusText(r.code)}`,
      ...Object.entries(auditHeaders()).map(([k, v]) => `${k}: ${v}`),
      `Content-Type: ${isJson ? "application/json" : "text/plain; charset=utf-8"}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      "Connection: close",
    ];
    socket.end(head.join("\r\n") + "\r\n\r\n" + body);
    return;
  }
  refuseUpgrade(socket, 500, "Internal Server Error");
}

async function main(): Promise<void> {
  const args = Deno.args;
  const configPath = args[args.indexOf("--config") + 1];
  if (!args.includes("--config") || !configPath) {
    console.error("usage: apiserver.ts --config <file.json> [--log]");
    Deno.exit(2);
  }
  const logging = args.includes("--log");
  const config: ApiServerConfig = JSON.parse(await Deno.readTextFile(configPath));
  const log = logging ? (line: string) => console.error(line) : undefined;
  const server = new ApiServer(config, log);
  const userOf = (req: IncomingMessage) => {
    const who = server.authenticate(req);
    return who === "invalid" ? "(invalid)" : who?.user ?? "(none)";
  };
  const logReq = (req: IncomingMessage, code: number) =>
    log?.(`${req.method} ${req.url} ${code} ${userOf(req)}`);

  const https_ = https.createServer({
    key: await Deno.readTextFile(config.tls.keyFile),
    cert: await Deno.readTextFile(config.tls.certFile),
    ca: await Deno.readTextFile(config.tls.caFile),
    requestCert: true,
    rejectUnauthorized: false,
  }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let r: Result;
      try {
        r = server.route(req, Buffer.concat(chunks).toString("utf8"));
      } catch (err) {
        r = { code: 500, json: st.badRequest(String(err)) };
      }
      logReq(req, r.code);
      if ("watch" in r) return r.watch(res);
      if ("proxy" in r) {
        res.writeHead(400, { "Content-Type": "application/json" });
        res.end(JSON.stringify(st.badRequest("Upgrade request required")));
        return;
      }
      const isJson = "json" in r;
      const body = "json" in r ? JSON.stringify(r.json) : r.text;
      res.writeHead(r.code, {
        ...auditHeaders(),
        "Content-Type": isJson ? "application/json" : "text/plain; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  https_.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    let r: Result;
    try {
      r = server.route(req, "");
    } catch (err) {
      r = { code: 500, json: st.badRequest(String(err)) };
    }
    if ("proxy" in r) {
      // The code is the kubelet's, known once it answered.
      r.proxy(socket, head).catch((err) => ({ error: String(err) })).then((p) => {
        if ("code" in p) return logReq(req, p.code);
        logReq(req, 500);
        writeRaw(socket, { code: 500, json: st.internalError(p.error) });
      });
      return;
    }
    logReq(req, r.code);
    writeRaw(socket, r);
  });
  const [host, port] = (config.listen ?? "0.0.0.0:6443").split(/:(?=\d+$)/);
  https_.listen(Number(port), host, () => {
    console.log(`listening on https://${config.advertiseAddress}`);
  });
  const stop = () => {
    closeAllProxies();
    server.close();
    https_.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

if (import.meta.main) await main();
