/**
 * `metav1.Status` bodies as kube-apiserver writes them (k8s.io/apimachinery/pkg/api/errors and
 * k8s.io/apiserver/pkg/endpoints/handlers/responsewriters), so that clients see the same
 * codes, reasons, messages and details as from a real cluster.
 *
 * @example
 * ```ts
 * import { notFound } from "./status.ts";
 * const s = notFound("pods", "web");
 * if (s.message !== 'pods "web" not found' || s.code !== 404) throw new Error();
 * ```
 *
 * @module
 */

/** A `metav1.StatusCause`. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** A `metav1.Status` as JSON. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: StatusCause[];
    retryAfterSeconds?: number;
  };
  code: number;
}

function status(
  code: number,
  reason: string,
  message: string,
  details?: Status["details"],
): Status {
  const s: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (details) {
    // The real server puts details between reason and code.
    const { code: c, ...rest } = s;
    return { ...rest, details, code: c };
  }
  return s;
}

/** `GroupResource.String()`: `pods`, `servicecidrs.networking.k8s.io`. */
function groupResource(resource: string, group = ""): string {
  return group ? `${resource}.${group}` : resource;
}

/** 401 for a missing (with anonymous auth off) or invalid credential. */
export function unauthorized(): Status {
  return status(401, "Unauthorized", "Unauthorized");
}

/** What is asked, for {@linkcode forbidden}: RBAC's authorizer.Attributes. */
export interface ForbiddenAttributes {
  user: string;
  verb: string;
  /** Resource; empty for a non-resource URL. */
  resource?: string;
  subresource?: string;
  group?: string;
  namespace?: string;
  name?: string;
  /** The URL path, for non-resource requests. */
  path?: string;
}

/**
 * 403 with the authorizer's message, e.g. `pods is forbidden: User "x" cannot list resource
 * "pods" in API group "" at the cluster scope` (responsewriters.ForbiddenStatusError).
 */
export function forbidden(a: ForbiddenAttributes): Status {
  let msg: string;
  if (!a.resource) {
    msg = `User ${JSON.stringify(a.user)} cannot ${a.verb} path ${JSON.stringify(a.path ?? "")}`;
  } else {
    const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const where = a.namespace
      ? `in the namespace ${JSON.stringify(a.namespace)}`
      : "at the cluster scope";
    msg = `User ${JSON.stringify(a.user)} cannot ${a.verb} resource ${JSON.stringify(res)} ` +
      `in API group ${JSON.stringify(a.group ?? "")} ${where}`;
  }
  // ForbiddenStatusError: sanitizer.Replace(forbiddenMessage(attributes)), then NewForbidden.
  msg = msg.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const gr = groupResource(a.resource ?? "", a.group);
  const message = a.name
    ? `${gr} ${JSON.stringify(a.name)} is forbidden: ${msg}`
    : a.resource
    ? `${gr} is forbidden: ${msg}`
    : `forbidden: ${msg}`;
  const details: Status["details"] = {};
  if (a.name) details.name = a.name;
  if (a.group) details.group = a.group;
  if (a.resource) details.kind = a.resource;
  return status(403, "Forbidden", message, details);
}

/** 404 for a missing object: `pods "web" not found`. */
export function notFound(resource: string, name: string, group = ""): Status {
  const details: Status["details"] = { name };
  if (group) details.group = group;
  details.kind = resource;
  return status(
    404,
    "NotFound",
    `${groupResource(resource, group)} ${JSON.stringify(name)} not found`,
    details,
  );
}

/**
 * 404 from the go-restful container for a path under a served group/version that matches no
 * route (an unknown resource): "the server could not find the requested resource".
 */
export function unknownResource(): Status {
  return status(404, "NotFound", "the server could not find the requested resource", {});
}

/** 405 for a verb the resource does not support. */
export function methodNotAllowed(): Status {
  return status(
    405,
    "MethodNotAllowed",
    "the server does not allow this method on the requested resource",
    {},
  );
}

/**
 * 500 for an error that is not an API status, e.g. a kubelet that cannot be dialled: k8s.io/
 * apiserver pkg/endpoints/handlers/responsewriters/status.go ErrorToAPIStatus (reason
 * `StatusReasonUnknown`, which is empty and so left out of the JSON).
 */
export function internalError(message: string): Status {
  const { reason: _, ...rest } = status(500, "", message);
  return rest;
}

/** 400 BadRequest with the given message (apierrors.NewBadRequest). */
export function badRequest(message: string): Status {
  return status(400, "BadRequest", message);
}

/** 409 AlreadyExists: `services "web" already exists`. */
export function alreadyExists(resource: string, name: string, group = ""): Status {
  const details: Status["details"] = { name };
  if (group) details.group = group;
  details.kind = resource;
  return status(
    409,
    "AlreadyExists",
    `${groupResource(resource, group)} ${JSON.stringify(name)} already exists`,
    details,
  );
}

/** One field error: field.Error's Type and ErrorBody(). */
export interface FieldError {
  /** `spec.clusterIPs`. */
  field: string;
  /** CauseType: `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`. */
  type: "FieldValueInvalid" | "FieldValueRequired" | "FieldValueNotSupported";
  /** ErrorBody(), e.g. `Invalid value: []string{"1.1.1.1"}: failed to allocate IP …`. */
  body: string;
}

/**
 * 422 Invalid (apierrors.NewInvalid): `Service "x" is invalid: spec.clusterIPs: Invalid value:
 * …`; several errors are joined as `[a, b]` like utilerrors.Aggregate.
 */
export function invalid(kind: string, name: string, errors: FieldError[], group = ""): Status {
  const gk = group ? `${kind}.${group}` : kind;
  const parts = errors.map((e) => `${e.field}: ${e.body}`);
  const agg = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  const details: Status["details"] = { name };
  if (group) details.group = group;
  details.kind = kind;
  details.causes = errors.map((e) => ({ reason: e.type, message: e.body, field: e.field }));
  return status(422, "Invalid", `${gk} ${JSON.stringify(name)} is invalid: ${agg}`, details);
}

/** A `Success` Status, as DELETE returns for resources that do not return the object. */
export function success(resource: string, name: string, uid: string, group = ""): Record<
  string,
  unknown
> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name, ...(group ? { group } : {}), kind: resource, uid },
  };
}
