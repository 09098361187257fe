/**
 * How to reach and authenticate to a cluster: read from a kubeconfig (or a pod's service
 * account) by `@kubernetes/client-node`, which handles contexts, tokens, token files, client
 * certificates and exec credential plugins; turned into what Deno's `fetch` and `WebSocket`
 * need.
 *
 * **TLS trusts the kubeconfig's CA alone**, as kubectl does. `Deno.createHttpClient({ caCerts })`
 * adds its CAs to the process's default roots (the Mozilla list) rather than replacing them, so
 * a publicly trusted certificate for the API server's name would be accepted too. So before any
 * TLS is used, {@linkcode pinTlsRoots} makes this process's default root store empty (Deno builds
 * it once, on first use, from `DENO_TLS_CA_STORE` — here a list that names no store — and
 * `DENO_CERT`, here unset; both are restored right after, so child processes see the
 * environment as it was). Every API client then carries exactly its trust anchors: the
 * kubeconfig's CA, or — when the kubeconfig names none — the system's CA bundle, which is what
 * kubectl uses then ({@linkcode apiHttpClient}).
 *
 * **Only `https://` servers**: a plain `http://` server would get bearer tokens in the clear.
 * Tests may use `http://` on loopback addresses with `KCONNECT_TEST_INSECURE_HTTP=1` in the
 * environment of the process that talks to the server (for the daemon, its own; never a
 * client's) ({@linkcode checkServerUrl}).
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import process from "node:process";
import { fetchMaterialAs, sudoRunAs } from "./as_user.ts";
import {
  accessFromMaterial,
  bearerToken,
  type CredentialMaterial,
  MATERIAL_VERSION,
} from "./material.ts";

/**
 * Which API server, as which user, from which kubeconfig context: what every form of cluster
 * credentials names (the live {@linkcode ClusterAccess}, and the plain `CredentialMaterial` of
 * `src/k8s/material.ts` that `kconnect credentials --json` prints).
 */
export interface ClusterIdentity {
  /** API server base URL, without a trailing slash. */
  server: string;
  /** Context name (or `in-cluster`). */
  context: string;
  /** Cluster name as the kubeconfig calls it. */
  clusterName: string;
  /** User name as the kubeconfig calls it. */
  userName: string;
  /** Namespace of the context (`default` when it names none). */
  namespace: string;
  /** Where the configuration came from (file paths, or `in-cluster`). */
  source: string;
}

/** Everything needed to talk to one API server as one user. */
export interface ClusterAccess extends ClusterIdentity {
  /** Fresh request headers (Authorization); exec plugins run again when their token expires. */
  headers(): Promise<Record<string, string>>;
  /** The HTTP client carrying the CA and client certificate, for `fetch` and `WebSocket`. */
  httpClient: Deno.HttpClient;
  /**
   * Forget cached credentials: the API server answered 401, so the next {@linkcode headers}
   * call fetches new ones (optional; static credentials have nothing to forget).
   */
  invalidate?(): void;
  /** The largest response body accepted, in bytes (default: the client's, 64 MiB). */
  maxResponseBytes?: number;
  /**
   * The uid the credentials were fetched as by `kconnect credentials` (a daemon client, or the
   * user who ran sudo); absent when this process read the kubeconfig itself.
   */
  credentialsUid?: number;
}

/** The largest API response a client on this machine reads: 8 MiB. */
export const CLIENT_MAX_RESPONSE_BYTES = 8 << 20;

let pinned = false;

/**
 * Makes this process's default TLS root store empty, once, before anything uses TLS: from then
 * on a TLS client trusts only the CAs it is created with (see the module doc). Restores
 * `DENO_TLS_CA_STORE` and `DENO_CERT` afterwards, so child processes inherit them unchanged.
 *
 * @example
 * ```ts
 * import { pinTlsRoots } from "./access.ts";
 * pinTlsRoots(); // later calls do nothing
 * ```
 */
export function pinTlsRoots(): void {
  if (pinned) return;
  pinned = true;
  const store = Deno.env.get("DENO_TLS_CA_STORE");
  const cert = Deno.env.get("DENO_CERT");
  try {
    // "," names no store (the runtime drops empty names), so the store starts empty, and no
    // DENO_CERT file is added; creating a client makes the runtime build the store now.
    Deno.env.set("DENO_TLS_CA_STORE", ",");
    Deno.env.delete("DENO_CERT");
    Deno.createHttpClient({}).close();
  } finally {
    if (store === undefined) Deno.env.delete("DENO_TLS_CA_STORE");
    else Deno.env.set("DENO_TLS_CA_STORE", store);
    if (cert !== undefined) Deno.env.set("DENO_CERT", cert);
  }
}

/** Where systems keep their CA bundle (as Go's crypto/x509 looks), after `SSL_CERT_FILE`. */
const SYSTEM_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL 6
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/pki/tls/cacert.pem", // OpenELEC
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
  "/etc/ssl/cert.pem", // Alpine, macOS
];

let systemBundle: string | null | undefined;

/** The system's CA bundle (PEM), read once; null when there is none. */
export function systemCaBundle(): string | null {
  if (systemBundle !== undefined) return systemBundle;
  systemBundle = null;
  const explicit = Deno.env.get("SSL_CERT_FILE");
  for (const p of explicit ? [explicit, ...SYSTEM_BUNDLES] : SYSTEM_BUNDLES) {
    try {
      const text = Deno.readTextFileSync(p);
      if (text.includes("-----BEGIN CERTIFICATE-----")) {
        systemBundle = text;
        break;
      }
    } catch { /* next */ }
  }
  return systemBundle;
}

/**
 * An HTTP client for an API server that trusts `ca` alone (PEM), or the system's CA bundle when
 * `ca` is null, with the client certificate when given. Pins the process's roots first
 * ({@linkcode pinTlsRoots}).
 *
 * @example
 * ```ts
 * import { apiHttpClient } from "./access.ts";
 * const client = apiHttpClient(null);
 * client.close();
 * ```
 */
export function apiHttpClient(
  ca: string | null | undefined,
  cert?: string | null,
  key?: string | null,
): Deno.HttpClient {
  pinTlsRoots();
  const roots = ca ? [ca] : [systemCaBundle()].filter((b): b is string => b !== null);
  const tls = cert && key ? { cert, key } : {};
  return Deno.createHttpClient({ caCerts: roots, ...tls });
}

/** Whether `host` (a URL's hostname) is a loopback address or `localhost`. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Checks an API server URL: `https://` only; `http://` only for loopback hosts, and only with
 * `KCONNECT_TEST_INSECURE_HTTP=1` in this process's environment (tests).
 *
 * @throws {TypeError} saying why the URL is refused.
 *
 * @example
 * ```ts
 * import { checkServerUrl } from "./access.ts";
 * checkServerUrl("https://10.0.0.1:6443"); // fine
 * let refused = false;
 * try {
 *   checkServerUrl("http://example.com");
 * } catch {
 *   refused = true;
 * }
 * refused; // true
 * ```
 */
export function checkServerUrl(server: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new TypeError(`The API server "${server}" is not a URL`);
  }
  if (url.protocol === "https:") return;
  if (url.protocol === "http:") {
    if (Deno.env.get("KCONNECT_TEST_INSECURE_HTTP") === "1" && isLoopback(url.hostname)) return;
    throw new TypeError(
      `The API server ${server} uses http://, which would send credentials in the clear: kconnect talks to API servers over https:// only`,
    );
  }
  throw new TypeError(`The API server "${server}" is not an https:// URL`);
}

/** Options for {@linkcode loadKubeconfig}. */
export interface LoadOptions {
  /** Kubeconfig path(s), `:`-separated like KUBECONFIG; default KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** Context to use; default the current context. */
  context?: string;
  /** Home directory for ~/.kube/config; default $HOME (under sudo, the invoking user's). */
  home?: string;
  /**
   * The environment that says whether this is `sudo`'s doing (its `SUDO_UID`): a root process's
   * own by default; the daemon passes a root client's. Under sudo the credentials are fetched as
   * that user instead of being read here (see {@linkcode loadKubeconfig}).
   */
  env?: Record<string, string>;
  /** The working directory the user's exec plugins start in (as that user). Default this one's. */
  cwd?: string;
  /**
   * Read the kubeconfig in a `kconnect credentials` child even when not under sudo, so that this
   * process never loads `@kubernetes/client-node`: loading it adds about 75 MB to the resident
   * size for good (33 → 108 MB measured with Deno 2.9), which a long-lived `up` should not carry.
   */
  outOfProcess?: boolean;
}

function pem(data: unknown): string | undefined {
  if (data === undefined || data === null) return undefined;
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return new TextDecoder().decode(data);
  return String(data);
}

/**
 * The expiry of the exec credential client-node cached for `user`. The library keeps an exec
 * plugin's whole `ExecCredential` in its `ExecAuth` authenticator's private `tokenCache` and
 * exposes no accessor, so this looks there; null when it is not found (the caller then
 * refreshes on a fixed period).
 */
function execExpiry(kc: KubeConfig, user: string | undefined): string | null {
  if (user === undefined) return null;
  const auths = (kc as unknown as { authenticators?: unknown[] }).authenticators ?? [];
  for (const a of auths) {
    const cache = (a as { tokenCache?: Record<string, unknown> }).tokenCache;
    const cred = cache?.[user] as { status?: { expirationTimestamp?: unknown } } | undefined;
    const ts = cred?.status?.expirationTimestamp;
    if (typeof ts === "string" && !Number.isNaN(Date.parse(ts))) {
      return new Date(Date.parse(ts)).toISOString();
    }
  }
  return null;
}

/**
 * Resolves the current context of `kc` into plain credentials, the material `kconnect
 * credentials --json` prints (running exec plugins and reading token and certificate files as
 * the calling process); a bearer token moves out of the headers into `token`. Errors name the
 * user, context and file.
 */
export async function resolveCredentials(
  kc: KubeConfig,
  source: string,
): Promise<CredentialMaterial> {
  const cluster = kc.getCurrentCluster();
  const contextName = kc.getCurrentContext();
  const context = kc.getContextObject(contextName);
  const user = kc.getCurrentUser();
  if (cluster === null) {
    throw new Error(
      `Cannot use kubeconfig ${source}: context "${contextName}" names no cluster that the file defines`,
    );
  }
  if (cluster.skipTLSVerify) {
    throw new Error(
      `Cluster "${cluster.name}" in ${source} sets insecure-skip-tls-verify, which kconnect does not support: give it certificate-authority(-data) instead`,
    );
  }
  // Let the library resolve files, data and plugins into https options once, to learn the CA and
  // client certificate and to fail early on a broken exec plugin.
  const probe: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, string> } =
    {};
  try {
    await kc.applyToHTTPSOptions(probe as never);
  } catch (err) {
    throw new Error(
      `Cannot get credentials for user "${user?.name}" of context "${contextName}" (${source}): ${
        (err as Error).message
      }`,
      { cause: err },
    );
  }
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(probe.headers ?? {})) all[k] = String(v);
  const { token, headers } = bearerToken(all);
  return {
    v: MATERIAL_VERSION,
    server: cluster.server.replace(/\/+$/, ""),
    context: contextName,
    clusterName: cluster.name,
    userName: user?.name ?? "",
    namespace: context?.namespace || "default",
    source,
    caPem: pem(probe.ca) ?? null,
    clientCertPem: pem(probe.cert) ?? null,
    clientKeyPem: pem(probe.key) ?? null,
    token,
    headers,
    expiresAt: execExpiry(kc, user?.name),
    dynamic: Boolean(
      user?.exec || user?.authProvider || (user as { tokenFile?: string } | null)?.tokenFile,
    ),
  };
}

async function fromConfig(kc: KubeConfig, source: string): Promise<ClusterAccess> {
  const r = await resolveCredentials(kc, source);
  checkServerUrl(r.server);
  const httpClient = apiHttpClient(r.caPem, r.clientCertPem, r.clientKeyPem);
  return {
    server: r.server,
    context: r.context,
    clusterName: r.clusterName,
    userName: r.userName,
    namespace: r.namespace,
    source,
    async headers() {
      const o: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(o as never);
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.headers ?? {})) h[k] = String(v);
      return h;
    },
    httpClient,
    maxResponseBytes: CLIENT_MAX_RESPONSE_BYTES,
  };
}

/**
 * The home directory whose `~/.kube/config` and `~/.config/kconnect` count: under `sudo`, the
 * invoking user's (from /etc/passwd), else $HOME.
 */
export function defaultHome(): string | undefined {
  // `sudo kconnect up` should use the invoking user's kubeconfig, not root's.
  const sudoUser = Deno.env.get("SUDO_USER");
  if (sudoUser && sudoUser !== "root" && Deno.uid?.() === 0) {
    try {
      const passwd = Deno.readTextFileSync("/etc/passwd");
      const line = passwd.split("\n").find((l) => l.startsWith(`${sudoUser}:`));
      const home = line?.split(":")[5];
      if (home) return home;
    } catch { /* fall back to HOME */ }
  }
  return Deno.env.get("HOME") ??
    (Deno.build.os === "windows" ? Deno.env.get("USERPROFILE") : undefined);
}

/**
 * Loads a kubeconfig: `--kubeconfig`, else KUBECONFIG, else ~/.kube/config; then picks the
 * context. Errors name the file and what is wrong with it.
 *
 * A root process under sudo (`SUDO_UID` of a non-root user in `options.env`, by default this
 * process's environment) does not read the kubeconfig itself: it runs `kconnect credentials` as
 * that user (`src/k8s/as_user.ts`, the daemon's way for its members) and builds its access from
 * what that prints, fetching it again the same way before it expires. So `sudo kconnect …` never
 * runs the user's exec plugins, or reads their token files, as root. With `outOfProcess`, root's
 * own credentials are read the same way, as root (see {@linkcode LoadOptions.outOfProcess}).
 */
export async function loadKubeconfig(options: LoadOptions = {}): Promise<ClusterAccess> {
  // Before anything in this process can use TLS (an auth provider refreshing its token would).
  pinTlsRoots();
  if (Deno.build.os !== "windows" && Deno.uid() === 0) {
    const env = options.env ?? Deno.env.toObject();
    const cwd = options.cwd ?? Deno.cwd();
    const sudo = await sudoRunAs(env, cwd);
    const who = sudo ??
      (options.outOfProcess ? { uid: 0, gid: Deno.gid() ?? 0, env, cwd } : null);
    if (who !== null) {
      const kubeconfig = options.kubeconfig
        ? options.kubeconfig.split(":").filter((p) => p !== "")
          .map((p) => p.startsWith("/") ? p : `${cwd}/${p}`).join(":")
        : null;
      const first = await fetchMaterialAs(who, { kubeconfig, context: options.context ?? null });
      // Refreshes keep to the context first resolved, even if the file's current-context changes.
      const again = () => fetchMaterialAs(who, { kubeconfig, context: first.context });
      return accessFromMaterial(first, {
        refresh: again,
        ...(sudo !== null ? { credentialsUid: sudo.uid } : {}),
      });
    }
  }
  const { kc, source } = await readKubeconfig(options);
  return await fromConfig(kc, source);
}

/**
 * The kubeconfig path list {@linkcode loadKubeconfig} would read: `kubeconfig`, else KUBECONFIG,
 * else `<home>/.kube/config`.
 */
export function kubeconfigPaths(options: LoadOptions = {}): string[] {
  const home = options.home ?? defaultHome();
  return (options.kubeconfig ?? Deno.env.get("KUBECONFIG") ?? `${home}/.kube/config`)
    .split(KUBECONFIG_SEPARATOR)
    .filter((p) => p !== "");
}

/** What separates the paths of KUBECONFIG: `;` on Windows (drive letters have colons), else `:`. */
export const KUBECONFIG_SEPARATOR = Deno.build.os === "windows" ? ";" : ":";

/**
 * Reads and merges the kubeconfig files and selects the context, without resolving
 * credentials. Errors name the file and what is wrong with it.
 */
export async function readKubeconfig(
  options: LoadOptions = {},
): Promise<{ kc: KubeConfig; source: string }> {
  const paths = kubeconfigPaths(options);
  const existing = paths.filter((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (existing.length === 0) {
    throw new Error(
      `No kubeconfig found (looked for ${
        paths.join(", ") || "nothing"
      }): pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config`,
    );
  }
  // The library pulls in node's deprecated punycode module, whose warning would end up on the
  // user's terminal; load it lazily with deprecation warnings off.
  process.noDeprecation = true;
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  try {
    if (existing.length === 1) kc.loadFromFile(existing[0]);
    else {
      for (const p of existing) {
        const one = new KubeConfig();
        one.loadFromFile(p);
        kc.mergeConfig(one);
      }
    }
  } catch (err) {
    throw new Error(`Cannot read kubeconfig ${existing.join(":")}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const source = existing.join(":");
  if (options.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === options.context)) {
      const names = kc.getContexts().map((c) => c.name).join(", ") || "none";
      throw new Error(`No context "${options.context}" in ${source} (contexts: ${names})`);
    }
    kc.setCurrentContext(options.context);
  } else if (!kc.getCurrentContext()) {
    throw new Error(`${source} has no current-context: pass --context`);
  }
  return { kc, source };
}

/** The standard place of a pod's service-account files. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Access from inside a pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's `ca.crt`,
 * `token` and `namespace` in `dir`. The token is read again for every request, because the
 * kubelet rotates projected tokens.
 */
export async function loadInCluster(dir = SERVICE_ACCOUNT_DIR): Promise<ClusterAccess> {
  const host = Deno.env.get("KUBERNETES_SERVICE_HOST");
  const port = Deno.env.get("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new Error("Not running in a pod: KUBERNETES_SERVICE_HOST/PORT are not set");
  }
  let ca: string, ns: string;
  try {
    ca = await Deno.readTextFile(`${dir}/ca.crt`);
    ns = (await Deno.readTextFile(`${dir}/namespace`)).trim();
    await Deno.stat(`${dir}/token`);
  } catch (err) {
    throw new Error(`Cannot read the service account in ${dir}: ${(err as Error).message}`);
  }
  const tokenFile = `${dir}/token`;
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    context: "in-cluster",
    clusterName: "in-cluster",
    userName: "service-account",
    namespace: ns || "default",
    source: dir,
    headers: async () => ({
      Authorization: `Bearer ${(await Deno.readTextFile(tokenFile)).trim()}`,
    }),
    httpClient: apiHttpClient(ca),
  };
}
