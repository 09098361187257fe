/**
 * Credential material: a kubeconfig context resolved into plain values (server, CA, client
 * certificate, token, expiry), as `kconnect credentials --json` prints it. The daemon runs that
 * command as the requesting user, so it never reads the user's kubeconfig or runs the user's
 * exec plugins as root, and builds a {@linkcode ClusterAccess} from what it prints with
 * {@linkcode accessFromMaterial}.
 *
 * @module
 */
import {
  apiHttpClient,
  checkServerUrl,
  CLIENT_MAX_RESPONSE_BYTES,
  type ClusterAccess,
  type ClusterIdentity,
} from "./access.ts";
import { logger } from "../log.ts";

const log = logger("credentials");

/** Version of the material's JSON shape. */
export const MATERIAL_VERSION = 1;

/** How often material with no known expiry is fetched again: 5 minutes. */
export const DEFAULT_REFRESH_MS = 5 * 60_000;

/** Credentials of one context as plain values; what `kconnect credentials --json` prints. */
export interface CredentialMaterial extends ClusterIdentity {
  v: typeof MATERIAL_VERSION;
  caPem: string | null;
  clientCertPem: string | null;
  clientKeyPem: string | null;
  /** Bearer token, without `Bearer `. */
  token: string | null;
  /** Other request headers the kubeconfig asks for (e.g. a basic-auth `Authorization`). */
  headers: Record<string, string>;
  /** ISO 8601 time the credentials expire, when known (an exec plugin's expirationTimestamp). */
  expiresAt: string | null;
  /** Whether they can change (exec plugin, auth provider, token file), so must be re-fetched. */
  dynamic: boolean;
}

/**
 * Splits a bearer token (`Authorization: Bearer <token>`, either case of the header name) from
 * the other request headers, as material keeps it.
 *
 * @example
 * ```ts
 * import { bearerToken } from "./material.ts";
 * const { token, headers } = bearerToken({ Authorization: "Bearer abc", "X-Extra": "1" });
 * token; // "abc"
 * headers; // { "X-Extra": "1" }
 * ```
 */
export function bearerToken(
  all: Record<string, string>,
): { token: string | null; headers: Record<string, string> } {
  const headers = { ...all };
  const auth = headers["Authorization"] ?? headers["authorization"];
  const bearer = auth?.match(/^Bearer\s+(.+)$/i);
  if (!bearer) return { token: null, headers };
  delete headers["Authorization"];
  delete headers["authorization"];
  return { token: bearer[1], headers };
}

function str(o: Record<string, unknown>, key: string, nullable: boolean): string | null {
  const v = o[key];
  if (typeof v === "string") return v;
  if (nullable && (v === null || v === undefined)) return null;
  throw new TypeError(`Invalid credential material: "${key}" must be a string`);
}

/**
 * Parses and checks the JSON `kconnect credentials --json` printed.
 *
 * @throws {TypeError} naming the field that is missing or of the wrong type.
 *
 * @example
 * ```ts
 * import { parseMaterial } from "./material.ts";
 * const m = parseMaterial(JSON.stringify({
 *   v: 1, server: "https://k:6443", context: "c", clusterName: "k", userName: "u",
 *   namespace: "default", source: "/kc", caPem: null, clientCertPem: null, clientKeyPem: null,
 *   token: "t", headers: {}, expiresAt: null, dynamic: false,
 * }));
 * m.context; // "c"
 * ```
 */
export function parseMaterial(text: string): CredentialMaterial {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`Invalid credential material: not JSON (${(err as Error).message})`);
  }
  if (typeof o !== "object" || o === null) throw new TypeError("Invalid credential material");
  if (o.v !== MATERIAL_VERSION) {
    throw new TypeError(
      `Invalid credential material: version ${o.v}, expected ${MATERIAL_VERSION}`,
    );
  }
  const headers: Record<string, string> = {};
  if (typeof o.headers === "object" && o.headers !== null) {
    for (const [k, v] of Object.entries(o.headers)) {
      // Header names are HTTP tokens and values one line; anything else is not a header.
      if (typeof v === "string" && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) && !/[\r\n\0]/.test(v)) {
        headers[k] = v;
      }
    }
  }
  const server = str(o, "server", false)!;
  try {
    checkServerUrl(server);
  } catch (err) {
    throw new TypeError(`Invalid credential material: server: ${(err as Error).message}`);
  }
  const expiresAt = str(o, "expiresAt", true);
  if (expiresAt !== null && Number.isNaN(Date.parse(expiresAt))) {
    throw new TypeError(`Invalid credential material: expiresAt "${expiresAt}" is not a time`);
  }
  return {
    v: MATERIAL_VERSION,
    server,
    context: str(o, "context", false)!,
    clusterName: str(o, "clusterName", false)!,
    userName: str(o, "userName", false)!,
    namespace: str(o, "namespace", false)!,
    source: str(o, "source", false)!,
    caPem: str(o, "caPem", true),
    clientCertPem: str(o, "clientCertPem", true),
    clientKeyPem: str(o, "clientKeyPem", true),
    token: str(o, "token", true),
    headers,
    expiresAt,
    dynamic: o.dynamic === true,
  };
}

/** Options of {@linkcode accessFromMaterial}. */
export interface MaterialAccessOptions {
  /** Fetches the material again (e.g. runs `kconnect credentials` as the user). */
  refresh: () => Promise<CredentialMaterial>;
  /** How long material without an expiry is used before it is fetched again. Default 5 min. */
  refreshMs?: number;
  /** How long before the expiry new material is fetched. Default 60 s. */
  earlyMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
  /** The uid `refresh` fetches as, reported as the access's `credentialsUid`. */
  credentialsUid?: number;
}

/** The material's HTTP client: its CA alone (else the system's bundle), its client certificate. */
function httpClientFor(m: CredentialMaterial): Deno.HttpClient {
  return apiHttpClient(m.caPem, m.clientCertPem, m.clientKeyPem);
}

/**
 * A {@linkcode ClusterAccess} over material. `headers()` always returns a usable token: static
 * material is fetched again every `refreshMs` (default 5 min), material with an expiry
 * `earlyMs` before it; a fetch in progress is shared, and a failed fetch keeps the old material
 * until it has expired. `invalidate()` (on a 401) forces the next call to fetch. The HTTP
 * client follows the newest client certificate.
 *
 * @example
 * ```ts
 * import { accessFromMaterial, parseMaterial } from "./material.ts";
 * const m = parseMaterial(JSON.stringify({
 *   v: 1, server: "https://k:6443", context: "c", clusterName: "k", userName: "u",
 *   namespace: "default", source: "/kc", caPem: null, clientCertPem: null, clientKeyPem: null,
 *   token: "t", headers: {}, expiresAt: null, dynamic: false,
 * }));
 * const access = accessFromMaterial(m, { refresh: () => Promise.resolve(m) });
 * await access.headers(); // { Authorization: "Bearer t" }
 * access.httpClient.close();
 * ```
 */
export function accessFromMaterial(
  first: CredentialMaterial,
  options: MaterialAccessOptions,
): ClusterAccess {
  const now = options.now ?? Date.now;
  const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
  const earlyMs = options.earlyMs ?? 60_000;
  let current = first;
  let client = httpClientFor(first);
  let fetchedAt = now();
  let pending: Promise<void> | null = null;
  let forced = false;

  const expiry = (m: CredentialMaterial) => m.expiresAt === null ? null : Date.parse(m.expiresAt);
  const dueAt = () => {
    const e = expiry(current);
    return e === null ? fetchedAt + refreshMs : Math.min(e - earlyMs, fetchedAt + refreshMs);
  };
  const fetchNew = () => {
    pending ??= options.refresh().then((m) => {
      const pemChanged = m.caPem !== current.caPem || m.clientCertPem !== current.clientCertPem ||
        m.clientKeyPem !== current.clientKeyPem;
      if (pemChanged) {
        // Requests already under way keep the old client a while; then it goes.
        const old = client;
        client = httpClientFor(m);
        Deno.unrefTimer(setTimeout(() => old.close(), 60_000));
      }
      current = m;
      fetchedAt = now();
      forced = false;
      log.debug("credentials refreshed", { context: m.context, expiresAt: m.expiresAt });
    }).finally(() => pending = null);
    return pending;
  };

  return {
    server: first.server,
    context: first.context,
    clusterName: first.clusterName,
    userName: first.userName,
    namespace: first.namespace,
    source: first.source,
    get httpClient() {
      return client;
    },
    maxResponseBytes: CLIENT_MAX_RESPONSE_BYTES,
    ...(options.credentialsUid !== undefined ? { credentialsUid: options.credentialsUid } : {}),
    async headers() {
      const t = now();
      if (forced || t >= dueAt()) {
        const e = expiry(current);
        const usable = !forced && (e === null || t < e);
        if (usable) {
          // Still valid: refresh in the background and answer with what we have.
          fetchNew().catch((err) => log.warn(`refreshing credentials: ${err.message}`));
        } else {
          await fetchNew();
        }
      }
      const h = { ...current.headers };
      if (current.token !== null) h["Authorization"] = `Bearer ${current.token}`;
      return h;
    },
    invalidate() {
      forced = true;
    },
  };
}
