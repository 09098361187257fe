/**
 * ResourceQuota admission as kube-apiserver's resourcequota plugin does it for the resources the
 * stand-in creates: object counts (`pods`, `configmaps`, `count/<resource>.<group>`) and pod
 * compute (`requests.cpu`, `requests.memory`, `limits.cpu`, `limits.memory`, `cpu`, `memory`).
 * A create that would pass `hard` is refused with 403 and the plugin's message:
 * `exceeded quota: <name>, requested: <k=v>, used: <k=v>, limited: <k=v>`.
 *
 * @example
 * ```ts
 * import { formatQuantity, parseQuantity } from "./quota.ts";
 * if (formatQuantity("limits.memory", parseQuantity("256Mi")) !== "256Mi") throw new Error();
 * ```
 *
 * @module
 */
import type { QuotaSpec } from "./config.ts";
import type { KObject } from "./objects.ts";
import type { Store } from "./store.ts";

const SUFFIX: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  m: 1e-3,
  "": 1,
};

/** A quantity (`256Mi`, `50m`, `1`) as a number (bytes, cores). */
export function parseQuantity(q: string): number {
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$/.exec(q.trim());
  if (!m) return NaN;
  return Number(m[1]) * SUFFIX[m[2] ?? ""];
}

/** A number back as a quantity the way `resource.Quantity.String()` prints common values. */
export function formatQuantity(key: string, n: number): string {
  if (n === 0) return "0";
  if (/memory|storage/.test(key)) {
    for (const s of ["Ti", "Gi", "Mi", "Ki"]) {
      if (n % SUFFIX[s] === 0) return `${n / SUFFIX[s]}${s}`;
    }
    return String(n);
  }
  if (/cpu/.test(key)) {
    const milli = Math.round(n * 1000);
    return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
  }
  return String(n);
}

interface Container {
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

/** What one object uses of a quota key (0 when the key does not count it). */
export function usage(key: string, resource: string, group: string, o: KObject): number {
  const gr = group ? `${resource}.${group}` : resource;
  if (key === `count/${gr}` || (group === "" && key === resource)) return 1;
  if (resource !== "pods") return 0;
  const m = /^(requests|limits)\.(cpu|memory)$|^(cpu|memory)$/.exec(key);
  if (!m) return 0;
  const kind = m[1] ?? "requests";
  const what = m[2] ?? m[3];
  const containers = ((o.spec as { containers?: Container[] })?.containers) ?? [];
  return containers.reduce((sum, c) => {
    const v = c.resources?.[kind as "requests" | "limits"]?.[what];
    return sum + (v ? parseQuantity(v) : 0);
  }, 0);
}

/**
 * Checks creating `o` (`resource` in `group`) against every quota of its namespace. Returns
 * the error text (without the `<resource> "<name>" is forbidden: ` prefix) or null.
 */
export function admit(
  store: Store,
  quotas: QuotaSpec[],
  resource: string,
  group: string,
  o: KObject,
): string | null {
  const ns = o.metadata.namespace;
  for (const q of quotas) {
    if (q.namespace !== ns) continue;
    const failed: string[] = [];
    const requested: Record<string, number> = {};
    const used: Record<string, number> = {};
    for (const [key, hard] of Object.entries(q.hard)) {
      const want = usage(key, resource, group, o);
      if (want === 0) continue;
      // Compute quotas need every container to say what it asks.
      const compute = /^(requests|limits)\.|^(cpu|memory)$/.test(key);
      if (compute && resource === "pods") {
        const [kind, what] = key.includes(".") ? key.split(".") : ["requests", key];
        const containers = ((o.spec as { containers?: Container[] })?.containers) ?? [];
        if (containers.some((c) => !c.resources?.[kind as "requests" | "limits"]?.[what])) {
          return `failed quota: ${q.name}: must specify ${key}`;
        }
      }
      const have = store.list(resource, ns).reduce(
        (sum, x) => sum + usage(key, resource, group, x),
        0,
      );
      requested[key] = want;
      used[key] = have;
      if (have + want > parseQuantity(hard)) failed.push(key);
    }
    if (failed.length) {
      failed.sort();
      const show = (vals: Record<string, number>) =>
        failed.map((k) => `${k}=${formatQuantity(k, vals[k])}`).join(",");
      const hardVals = Object.fromEntries(failed.map((k) => [k, parseQuantity(q.hard[k])]));
      return `exceeded quota: ${q.name}, requested: ${show(requested)}, used: ${
        show(used)
      }, limited: ${show(hardVals)}`;
    }
  }
  return null;
}

/** A ResourceQuota object for `kubectl get quota`-like listing. */
export function quotaObject(
  q: QuotaSpec,
  stamp: { uid: string; resourceVersion: string; created: string },
): KObject {
  return {
    kind: "ResourceQuota",
    apiVersion: "v1",
    metadata: {
      name: q.name,
      namespace: q.namespace,
      uid: stamp.uid,
      resourceVersion: stamp.resourceVersion,
      creationTimestamp: stamp.created,
    },
    spec: { hard: { ...q.hard } },
    status: {
      hard: { ...q.hard },
      used: Object.fromEntries(Object.keys(q.hard).map((k) => [k, "0"])),
    },
  };
}
