/**
 * Creating, updating and deleting kconnect's objects through {@linkcode KubeClient}, with the
 * API's `Status` errors turned into messages that say what to do: the RBAC permission a user
 * lacks, a ResourceQuota that refuses an object, an invalid object.
 *
 * Updates are `PUT`s of the whole desired object with the resourceVersion just read (a
 * concurrent change gives 409 Conflict, and the update is retried on the fresh object); the
 * `kconnect.io/applied-sha256` annotation tells whether an update is needed at all.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import {
  APPLIED_ANNOTATION,
  collectionPath,
  groupResource,
  type Manifest,
  objectPath,
  type ResourceRef,
  RESOURCES,
} from "./manifests.ts";

/** What applying one object did. */
export type ApplyOutcome = "created" | "updated" | "unchanged";

/** An object as the server returns it (the fields kconnect reads). */
export interface ServerObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    generation?: number;
  };
  [field: string]: unknown;
}

/** An install step failed; the message says why and what to do. */
export class InstallError extends Error {
  /** The API error behind it, when there is one (its text is already in the message). */
  readonly apiError?: KubeApiError;
  constructor(message: string, apiError?: KubeApiError) {
    super(message);
    this.name = "InstallError";
    this.apiError = apiError;
  }
}

const VERBS: Record<string, string> = {
  GET: "get",
  POST: "create",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

/** The permissions `install` and `uninstall` use, for error messages. */
export const INSTALL_PERMISSIONS =
  "kconnect install needs get, create, update and delete on namespaces, clusterroles and " +
  "clusterrolebindings (rbac.authorization.k8s.io), and on serviceaccounts, configmaps, " +
  "deployments (apps), roles and rolebindings in the manager's namespace, plus list on pods " +
  "there; cluster-admin has all of them. It also needs to hold every permission it grants the " +
  "manager (RBAC refuses to grant more than the granter has)";

/**
 * Turns an API error on `method` of an object into an {@linkcode InstallError} naming the
 * verb, the resource and what to do; other errors pass unchanged.
 */
export function describeApiError(
  err: unknown,
  method: string,
  ref: ResourceRef,
  name: string | undefined,
  namespace: string | undefined,
  user: string,
): unknown {
  if (!(err instanceof KubeApiError)) return err;
  const verb = VERBS[method] ?? method.toLowerCase();
  const gr = groupResource(ref);
  const what = `${gr}${name ? ` "${name}"` : ""}${
    ref.namespaced && namespace ? ` in namespace "${namespace}"` : ""
  }`;
  const apiMessage = err.status?.message ?? err.message;
  if (err.code === 403 && /exceeded quota|must specify/i.test(apiMessage)) {
    return new InstallError(
      `Cannot ${verb} ${what}: a ResourceQuota of namespace "${namespace}" refuses it ` +
        `(${apiMessage}). Ask the cluster's administrator to raise the quota, or install into ` +
        `another namespace with --manager-namespace.`,
      err,
    );
  }
  if (err.code === 403) {
    const scope = ref.namespaced ? `in namespace "${namespace}"` : "at the cluster scope";
    return new InstallError(
      `User "${user}" may not ${verb} ${gr} ${scope} (the API server said: ${apiMessage}). ` +
        `Grant "${verb}" on ${gr} ${scope}, or have a cluster administrator run kconnect install. ` +
        `${INSTALL_PERMISSIONS}.`,
      err,
    );
  }
  if (err.code === 422 || err.code === 400) {
    return new InstallError(`The API server refused to ${verb} ${what}: ${apiMessage}`, err);
  }
  if (err.code === 404 && err.status?.message?.includes("could not find the requested resource")) {
    return new InstallError(
      `The API server does not serve ${gr} (${ref.base}): is it a Kubernetes API server of a ` +
        `supported version?`,
      err,
    );
  }
  return err;
}

function refOf(m: Manifest): ResourceRef {
  const ref = RESOURCES[m.kind];
  if (!ref) throw new TypeError(`kconnect does not install objects of kind ${m.kind}`);
  return ref;
}

/** A client call with {@linkcode describeApiError} applied. */
export async function call<T>(
  client: KubeClient,
  method: string,
  ref: ResourceRef,
  path: string,
  target: { name?: string; namespace?: string },
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  try {
    return await client.request<T>(method, path, body, { signal, timeoutMs: 30_000 });
  } catch (err) {
    throw describeApiError(err, method, ref, target.name, target.namespace, client.access.userName);
  }
}

/** Reads an object; null when it does not exist. */
export async function getObject(
  client: KubeClient,
  ref: ResourceRef,
  name: string,
  namespace?: string,
  signal?: AbortSignal,
): Promise<ServerObject | null> {
  try {
    return await client.get<ServerObject>(objectPath(ref, name, namespace), {
      signal,
      timeoutMs: 30_000,
    });
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404 && err.status?.reason === "NotFound") {
      if (!err.status?.message?.includes("could not find the requested resource")) return null;
    }
    throw describeApiError(err, "GET", ref, name, namespace, client.access.userName);
  }
}

/**
 * Creates `m`, or updates it when the live object's applied hash differs, or does nothing.
 * Returns what it did and the object as the server has it now.
 */
export async function applyObject(
  client: KubeClient,
  m: Manifest,
  signal?: AbortSignal,
): Promise<{ outcome: ApplyOutcome; object: ServerObject }> {
  const ref = refOf(m);
  const { name, namespace } = m.metadata;
  const target = { name, namespace };
  for (let attempt = 0;; attempt++) {
    const live = await getObject(client, ref, name, namespace, signal);
    if (live === null) {
      try {
        const object = await call<ServerObject>(
          client,
          "POST",
          ref,
          collectionPath(ref, namespace),
          target,
          m,
          signal,
        );
        return { outcome: "created", object };
      } catch (err) {
        // Created by someone else between our GET and POST: read it again.
        if (isCode(err, 409) && attempt < 3) continue;
        throw err;
      }
    }
    const want = m.metadata.annotations[APPLIED_ANNOTATION];
    if (want && live.metadata.annotations?.[APPLIED_ANNOTATION] === want) {
      return { outcome: "unchanged", object: live };
    }
    const body = {
      ...m,
      metadata: {
        ...m.metadata,
        // Keep labels and annotations others added (e.g. deployment.kubernetes.io/revision).
        labels: { ...live.metadata.labels, ...m.metadata.labels },
        annotations: { ...live.metadata.annotations, ...m.metadata.annotations },
        resourceVersion: live.metadata.resourceVersion,
      },
    };
    try {
      const object = await call<ServerObject>(
        client,
        "PUT",
        ref,
        objectPath(ref, name, namespace),
        target,
        body,
        signal,
      );
      return { outcome: "updated", object };
    } catch (err) {
      if ((isCode(err, 409) || isCode(err, 404)) && attempt < 3) continue;
      throw err;
    }
  }
}

function isCode(err: unknown, code: number): boolean {
  if (err instanceof KubeApiError) return err.code === code;
  return err instanceof InstallError && err.apiError?.code === code;
}

/**
 * Deletes an object by name (in the background: the garbage collector removes what it owns).
 * Returns false when it did not exist.
 */
export async function deleteObject(
  client: KubeClient,
  kind: string,
  name: string,
  namespace?: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const ref = RESOURCES[kind];
  try {
    await call(client, "DELETE", ref, objectPath(ref, name, namespace), { name, namespace }, {
      kind: "DeleteOptions",
      apiVersion: "v1",
      propagationPolicy: "Background",
    }, signal);
    return true;
  } catch (err) {
    if (isCode(err, 404)) return false;
    throw err;
  }
}
