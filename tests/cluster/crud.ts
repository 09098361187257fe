/**
 * Create, update (PUT) and delete for the kinds `kconnect install` writes: namespaces,
 * serviceaccounts, configmaps, deployments (apps/v1) and the RBAC kinds, with the API
 * server's checks and `Status` errors: a name is required and must match the URL, the
 * namespace must exist and not be terminating, 409 AlreadyExists on create, 409 Conflict for a
 * stale resourceVersion on update, an immutable Deployment selector, ResourceQuota admission
 * (403 `exceeded quota`), and the defaults the server fills in.
 *
 * @module
 */
import type { QuotaSpec } from "./config.ts";
import type { Controllers } from "./controllers.ts";
import type { KObject } from "./objects.ts";
import { admit } from "./quota.ts";
import * as st from "./status.ts";
import type { ResourceInfo, Store } from "./store.ts";

/** What the handlers need. */
export interface CrudContext {
  store: Store;
  table: Record<string, ResourceInfo>;
  quotas: QuotaSpec[];
  controllers: Controllers | null;
}

/** Resources with generic create/update/delete here. */
export const GENERIC = new Set([
  "serviceaccounts",
  "deployments",
  "clusterroles",
  "clusterrolebindings",
  "roles",
  "rolebindings",
]);

/** Resources whose contents a namespace deletion removes. */
const NAMESPACED_CONTENT = [
  "deployments",
  "replicasets",
  "pods",
  "configmaps",
  "serviceaccounts",
  "roles",
  "rolebindings",
  "services",
  "resourcequotas",
];

type Result = { code: number; json: unknown };

function gr(info: ResourceInfo, resource: string): string {
  return info.group ? `${resource}.${info.group}` : resource;
}

function nameRequired(kind: string): Result {
  return {
    code: 422,
    json: st.invalid(kind, "", [{
      field: "metadata.name",
      type: "FieldValueRequired",
      body: "Required value: name or generateName is required",
    }]),
  };
}

function conflict(resource: string, group: string, name: string): Result {
  const s = st.alreadyExists(resource, name, group);
  return {
    code: 409,
    json: {
      ...s,
      message:
        `Operation cannot be fulfilled on ${group ? `${resource}.${group}` : resource} ${
          JSON.stringify(name)
        }: the object has been modified; please apply your changes to ` +
        "the latest version and try again",
      reason: "Conflict",
    },
  };
}

/** Fills in what the API server defaults on a Deployment. */
function defaultDeployment(o: KObject): void {
  const spec = (o.spec ??= {}) as Record<string, unknown>;
  spec.replicas ??= 1;
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  spec.strategy ??= {
    type: "RollingUpdate",
    rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" },
  };
  const template = (spec.template ??= {}) as { spec?: Record<string, unknown> };
  const tspec = template.spec ??= {};
  tspec.restartPolicy ??= "Always";
  tspec.terminationGracePeriodSeconds ??= 30;
  tspec.dnsPolicy ??= "ClusterFirst";
  tspec.schedulerName ??= "default-scheduler";
  tspec.securityContext ??= {};
  for (const c of (tspec.containers as Record<string, unknown>[] | undefined) ?? []) {
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.imagePullPolicy ??= String(c.image ?? "").endsWith(":latest") ? "Always" : "IfNotPresent";
  }
}

function namespaceCheck(
  ctx: CrudContext,
  resource: string,
  info: ResourceInfo,
  ns: string | undefined,
  name: string,
): Result | null {
  if (!info.namespaced) return null;
  const nsObj = ctx.store.get("namespaces", undefined, ns!);
  if (!nsObj) return { code: 404, json: st.notFound("namespaces", ns!) };
  if (nsObj.metadata.deletionTimestamp) {
    return {
      code: 403,
      json: {
        ...st.forbidden({ user: "", verb: "create", resource, group: info.group, name }),
        message: `${gr(info, resource)} ${
          JSON.stringify(name)
        } is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
      },
    };
  }
  return null;
}

/** POST to a collection. */
export function createObject(
  ctx: CrudContext,
  resource: string,
  ns: string | undefined,
  body: unknown,
  dryRun: boolean,
): Result {
  const info = ctx.table[resource];
  const o = structuredClone(body) as KObject;
  const name = o?.metadata?.name;
  if (!name) return nameRequired(info.kind);
  const bad = namespaceCheck(ctx, resource, info, ns, name);
  if (bad) return bad;
  if (ctx.store.get(resource, info.namespaced ? ns : undefined, name)) {
    return { code: 409, json: st.alreadyExists(resource, name, info.group) };
  }
  const q = info.namespaced
    ? admit(ctx.store, ctx.quotas, resource, info.group, {
      ...o,
      metadata: { ...o.metadata, namespace: ns },
    })
    : null;
  if (q !== null) {
    const f = st.forbidden({ user: "", verb: "create", resource, group: info.group, name });
    return {
      code: 403,
      json: { ...f, message: `${gr(info, resource)} ${JSON.stringify(name)} is forbidden: ${q}` },
    };
  }
  const s = ctx.store.stamp();
  const { resourceVersion: _rv, uid: _uid, ...meta } = o.metadata ?? {};
  const obj: KObject = {
    ...o,
    kind: info.kind,
    apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
    metadata: {
      ...meta,
      name,
      ...(info.namespaced ? { namespace: ns } : {}),
      uid: s.uid,
      resourceVersion: s.resourceVersion,
      creationTimestamp: s.created,
    },
  };
  if (resource === "namespaces") {
    obj.metadata.labels = { ...obj.metadata.labels, "kubernetes.io/metadata.name": name };
    obj.spec = { finalizers: ["kubernetes"] };
    obj.status = { phase: "Active" };
  }
  if (resource === "deployments") {
    obj.metadata.generation = 1;
    defaultDeployment(obj);
    obj.status = {};
  }
  if (!dryRun) {
    ctx.store.create(resource, obj);
    ctx.controllers?.reconcile();
  }
  return { code: 201, json: obj };
}

/** PUT of a whole object. */
export function updateObject(
  ctx: CrudContext,
  resource: string,
  ns: string | undefined,
  name: string,
  body: unknown,
  dryRun: boolean,
): Result {
  const info = ctx.table[resource];
  const key = info.namespaced ? ns : undefined;
  const live = ctx.store.get(resource, key, name);
  const o = structuredClone(body) as KObject;
  if (!o?.metadata?.name) return nameRequired(info.kind);
  if (o.metadata.name !== name) {
    return {
      code: 400,
      json: st.badRequest(
        `the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`,
      ),
    };
  }
  if (!live) return { code: 404, json: st.notFound(resource, name, info.group) };
  const rv = o.metadata.resourceVersion;
  if (rv && rv !== live.metadata.resourceVersion) return conflict(resource, info.group, name);
  const obj: KObject = {
    ...o,
    kind: info.kind,
    apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
    metadata: {
      ...o.metadata,
      ...(info.namespaced ? { namespace: ns } : {}),
      uid: live.metadata.uid,
      resourceVersion: live.metadata.resourceVersion,
      creationTimestamp: live.metadata.creationTimestamp,
    },
  };
  if (resource === "namespaces") {
    obj.spec = live.spec;
    obj.status = live.status;
  }
  if (resource === "deployments") {
    defaultDeployment(obj);
    const oldSel = JSON.stringify((live.spec as { selector?: unknown }).selector);
    const newSel = JSON.stringify((obj.spec as { selector?: unknown }).selector);
    if (oldSel !== newSel) {
      return {
        code: 422,
        json: st.invalid(info.kind, name, [{
          field: "spec.selector",
          type: "FieldValueInvalid",
          body: `Invalid value: ${newSel}: field is immutable`,
        }], info.group),
      };
    }
    const changed = JSON.stringify(obj.spec) !== JSON.stringify(live.spec);
    obj.metadata.generation = (Number(live.metadata.generation) || 1) + (changed ? 1 : 0);
    // The status subresource is not written by a PUT of the main resource.
    obj.status = live.status;
    // Controller annotations survive unless the client sets them.
    obj.metadata.annotations = {
      ...(live.metadata.annotations?.["deployment.kubernetes.io/revision"]
        ? {
          "deployment.kubernetes.io/revision":
            live.metadata.annotations["deployment.kubernetes.io/revision"],
        }
        : {}),
      ...obj.metadata.annotations,
    };
  }
  if (dryRun) return { code: 200, json: obj };
  ctx.store.update(resource, obj);
  ctx.controllers?.reconcile();
  return { code: 200, json: obj };
}

/** DELETE of one object (background propagation). */
export function deleteObject(
  ctx: CrudContext,
  resource: string,
  ns: string | undefined,
  name: string,
): Result {
  const info = ctx.table[resource];
  const o = ctx.store.delete(resource, info.namespaced ? ns : undefined, name);
  if (!o) return { code: 404, json: st.notFound(resource, name, info.group) };
  if (resource === "namespaces") {
    ctx.controllers?.deleteNamespaceContents(name, NAMESPACED_CONTENT);
    if (!ctx.controllers) {
      for (const r of NAMESPACED_CONTENT) {
        for (const x of ctx.store.list(r, name)) ctx.store.delete(r, name, x.metadata.name);
      }
    }
  }
  ctx.controllers?.reconcile();
  if (resource === "services") return { code: 200, json: o };
  return { code: 200, json: st.success(resource, name, o.metadata.uid, info.group) };
}
