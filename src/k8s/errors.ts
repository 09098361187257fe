/**
 * Errors from the Kubernetes API, carrying the `Status` the server sent, with messages that say
 * what the user can do about them.
 *
 * @module
 */

/** The `Status` object the API server sends with an error. */
export interface KubeStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    kind?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
  };
}

/** The API server answered with an error status. */
export class KubeApiError extends Error {
  /** HTTP status code. */
  readonly code: number;
  /** `Status.reason` (`Unauthorized`, `Forbidden`, `NotFound`, `Invalid`, …) when sent. */
  readonly reason: string;
  /** The whole `Status`, or null when the body was not one. */
  readonly status: KubeStatus | null;
  constructor(message: string, code: number, status: KubeStatus | null) {
    super(message);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = status?.reason ?? "";
    this.status = status;
  }
}

/** The API server could not be reached at all (DNS, connection, TLS, timeout). */
export class KubeUnreachableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KubeUnreachableError";
  }
}

/** Parses an error body as a `Status`, or returns null. */
export function parseStatus(body: string): KubeStatus | null {
  try {
    const s = JSON.parse(body);
    return s && typeof s === "object" && s.kind === "Status" ? s as KubeStatus : null;
  } catch {
    return null;
  }
}

/** Builds the error for a failed request, with a hint for the common codes. */
export function apiError(
  action: string,
  code: number,
  body: string,
  who: { user: string; context: string },
): KubeApiError {
  const status = parseStatus(body);
  const detail = status?.message ?? (body.trim().slice(0, 200) || `HTTP ${code}`);
  let hint = "";
  if (code === 401) {
    hint =
      ` — the API server did not accept the credentials of user "${who.user}" (context "${who.context}"): ` +
      "the token or certificate may have expired; log in again or refresh the kubeconfig";
  } else if (code === 403) {
    hint = ` — user "${who.user}" lacks the RBAC permission for this`;
  }
  return new KubeApiError(`${action}: ${detail}${hint}`, code, status);
}
