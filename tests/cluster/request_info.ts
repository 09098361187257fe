/**
 * RequestInfo as k8s.io/apiserver's RequestInfoFactory derives it from a URL: resource or
 * non-resource request, verb, API group and version, namespace, resource, name, subresource.
 * Authorization and routing both use it.
 *
 * @example
 * ```ts
 * import { requestInfo } from "./request_info.ts";
 * const info = requestInfo("GET", "/api/v1/namespaces/kconnect/pods", new URLSearchParams());
 * if (info.verb !== "list" || info.namespace !== "kconnect") throw new Error();
 * ```
 *
 * @module
 */

/** What a request asks for. */
export interface RequestInfo {
  isResourceRequest: boolean;
  path: string;
  verb: string;
  /** `api` or `apis` for resource requests. */
  prefix?: string;
  group: string;
  version: string;
  namespace?: string;
  resource?: string;
  name?: string;
  subresource?: string;
}

const VERBS: Record<string, string> = {
  POST: "create",
  GET: "get",
  HEAD: "get",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

/** Parses a request the way the API server's RequestInfoFactory does. */
export function requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  // Go's URL parsing hands the router decoded segments (`%3A` is `:`).
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const lower = VERBS[method] ?? method.toLowerCase();
  const nonResource: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: lower,
    group: "",
    version: "",
  };
  let rest: string[];
  let group = "";
  let version: string;
  if (parts[0] === "api" && parts.length >= 2) {
    version = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 3) {
    group = parts[1];
    version = parts[2];
    rest = parts.slice(3);
  } else {
    return nonResource;
  }
  if (rest.length === 0) return { ...nonResource, group, version };
  const info: RequestInfo = {
    isResourceRequest: true,
    path,
    verb: lower,
    prefix: parts[0],
    group,
    version,
  };
  if (rest[0] === "namespaces") {
    if (rest.length > 1) {
      info.namespace = rest[1];
      // /namespaces/{ns} and /namespaces/{ns}/{status|finalize} address the namespace itself.
      if (rest.length > 2 && !["status", "finalize"].includes(rest[2])) rest = rest.slice(2);
      else {
        info.resource = "namespaces";
        info.name = rest[1];
        info.subresource = rest[2];
        return withVerb(info, method, query);
      }
    }
  }
  info.resource = rest[0];
  info.name = rest[1];
  info.subresource = rest.length > 2 ? rest.slice(2).join("/") : undefined;
  // The namespace of a namespace is itself only for the /namespaces/{name} forms above.
  if (info.resource === "namespaces") delete info.namespace;
  return withVerb(info, method, query);
}

function withVerb(info: RequestInfo, method: string, query: URLSearchParams): RequestInfo {
  if (method === "GET" || method === "HEAD") {
    if (!info.name) {
      const watch = query.get("watch");
      info.verb = watch === "true" || watch === "1" ? "watch" : "list";
    }
  } else if (method === "DELETE" && !info.name) {
    info.verb = "deletecollection";
  }
  return info;
}
