/**
 * A small client for the few Kubernetes REST calls kconnect makes, over Deno's `fetch` with the
 * TLS settings and credentials of a {@linkcode ClusterAccess}.
 *
 * A response body is read up to the access's `maxResponseBytes` (8 MiB for a kubeconfig on this
 * machine, {@linkcode DEFAULT_MAX_RESPONSE_BYTES} otherwise); a larger one is abandoned with an
 * error, so a fake or broken server cannot make the (root) daemon buffer without bound.
 *
 * @module
 */
import type { ClusterAccess } from "./access.ts";
import { apiError, KubeApiError, KubeUnreachableError } from "./errors.ts";

/** The largest response body read when the access names no limit: 64 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 << 20;

/**
 * Reads a response body as text, at most `max` bytes.
 *
 * @throws {RangeError} when the body is larger (the rest is not read).
 */
export async function readLimited(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw new RangeError(`the answer is ${declared} bytes, more than the ${max} accepted`);
  }
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new RangeError(`the answer is more than the ${max} bytes accepted`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

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
    let text: string;
    try {
      text = await readLimited(res, this.access.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new KubeUnreachableError(
        `The server at ${this.access.server} answered ${method} ${path} with too much: ${err.message}`,
        { cause: err },
      );
    }
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
