/**
 * A small client for the few Kubernetes REST calls kconnect makes, over Deno's `fetch` with the
 * TLS settings and credentials of a {@linkcode ClusterAccess}.
 *
 * @module
 */
import type { ClusterAccess } from "./access.ts";
import { apiError, KubeApiError, KubeUnreachableError } from "./errors.ts";

/** Options of a request. */
export interface RequestOptions {
  signal?: AbortSignal;
  /** Milliseconds before the request is abandoned. Default 15000. */
  timeoutMs?: number;
}

/** Calls the Kubernetes API as the user of `access`. */
export class KubeClient {
  readonly access: ClusterAccess;
  constructor(access: ClusterAccess) {
    this.access = access;
  }

  /** GET `path` (e.g. `/api/v1/nodes`) and parse the JSON body; throws KubeApiError. */
  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", path, undefined, options);
  }

  /** POST a JSON body to `path`; throws KubeApiError. */
  post<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>("POST", path, body, options);
  }

  /**
   * Sends one request and parses the JSON answer. A 401 makes the access forget its cached
   * credentials (when it can) and the request is sent once more with fresh ones.
   */
  async request<T>(
    method: string,
    path: string,
    body: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    try {
      return await this.#request<T>(method, path, body, options);
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 401 || !this.access.invalidate) throw err;
      this.access.invalidate();
      return await this.#request<T>(method, path, body, options);
    }
  }

  async #request<T>(
    method: string,
    path: string,
    body: unknown,
    options: RequestOptions,
  ): Promise<T> {
    const url = `${this.access.server}${path}`;
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 15_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(await this.access.headers()),
          Accept: "application/json",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        client: this.access.httpClient,
        signal,
      });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const why = timeout.aborted ? "no answer in time" : describeFetchError(err);
      throw new KubeUnreachableError(
        `Cannot reach the Kubernetes API server at ${this.access.server} (context "${this.access.context}"): ${why}`,
        { cause: err },
      );
    }
    const text = await res.text();
    if (!res.ok) {
      throw apiError(`${method} ${path}`, res.status, text, {
        user: this.access.userName,
        context: this.access.context,
      });
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeUnreachableError(
        `The server at ${this.access.server} answered ${method} ${path} with something that is not JSON: is it a Kubernetes API server?`,
      );
    }
  }
}

/** The root cause of a fetch failure, in words. */
export function describeFetchError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (!parts.includes(e.message)) parts.push(e.message);
  }
  const text = parts.join(": ") || String(err);
  if (/certificate|UnknownIssuer|tls|handshake/i.test(text)) {
    return `TLS verification failed (${text}); check certificate-authority in the kubeconfig`;
  }
  return text;
}
