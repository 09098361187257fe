/**
 * The stand-in's RBAC authorizer for users whose `access` is `rbac` (the pods' service
 * accounts) or `view`: like k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac, a request is
 * allowed when a rule of a Role bound in the request's namespace, or of a ClusterRole bound
 * cluster-wide (or in the namespace), matches its API group, resource (with subresource),
 * verb and name. `*` matches anything.
 *
 * @example
 * ```ts
 * import { ruleAllows } from "./rbac.ts";
 * const rule = { apiGroups: [""], resources: ["pods"], verbs: ["list"] };
 * if (!ruleAllows(rule, { verb: "list", group: "", resource: "pods" })) throw new Error();
 * ```
 *
 * @module
 */
import type { Identity } from "./config.ts";
import type { KObject } from "./objects.ts";
import type { Store } from "./store.ts";

/** An RBAC PolicyRule. */
export interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** What is asked. */
export interface Ask {
  verb: string;
  group: string;
  /** Resource, `resource/subresource` for subresources. */
  resource: string;
  namespace?: string;
  name?: string;
}

const has = (list: string[] | undefined, v: string) =>
  (list ?? []).some((x) => x === "*" || x === v);

/** True when one rule allows the request. */
export function ruleAllows(rule: Rule, ask: Ask): boolean {
  if (!has(rule.verbs, ask.verb)) return false;
  if (!has(rule.apiGroups, ask.group)) return false;
  const [res, sub] = ask.resource.split("/");
  const resOk = has(rule.resources, ask.resource) ||
    (sub !== undefined && (rule.resources ?? []).includes(`${res}/*`)) ||
    (sub === undefined && (rule.resources ?? []).includes("*/*"));
  if (!resOk) return false;
  if (rule.resourceNames?.length) {
    return ask.name !== undefined && rule.resourceNames.includes(ask.name);
  }
  return true;
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

function bindsTo(b: KObject, who: Identity): boolean {
  const subjects = (b.subjects as Subject[] | undefined) ?? [];
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(who.user);
  return subjects.some((s) =>
    (s.kind === "User" && s.name === who.user) ||
    (s.kind === "Group" && (who.groups ?? []).includes(s.name)) ||
    (s.kind === "ServiceAccount" && sa !== null && s.namespace === sa[1] && s.name === sa[2])
  );
}

function rulesOf(store: Store, ref: { kind?: string; name?: string }, ns?: string): Rule[] {
  if (!ref.name) return [];
  const role = ref.kind === "ClusterRole"
    ? store.get("clusterroles", undefined, ref.name)
    : store.get("roles", ns, ref.name);
  return (role?.rules as Rule[] | undefined) ?? [];
}

/** True when `who` may do `ask` under `access`. */
export function allowed(store: Store, who: Identity, ask: Ask): boolean {
  const access = who.access ?? "admin";
  if (access === "admin") return true;
  if (access === "view") return ["get", "list", "watch"].includes(ask.verb);
  for (const b of store.list("clusterrolebindings")) {
    if (!bindsTo(b, who)) continue;
    const rules = rulesOf(store, b.roleRef as { kind?: string; name?: string });
    if (rules.some((r) => ruleAllows(r, ask))) return true;
  }
  if (ask.namespace) {
    for (const b of store.list("rolebindings", ask.namespace)) {
      if (!bindsTo(b, who)) continue;
      const rules = rulesOf(store, b.roleRef as { kind?: string; name?: string }, ask.namespace);
      if (rules.some((r) => ruleAllows(r, ask))) return true;
    }
  }
  return false;
}
