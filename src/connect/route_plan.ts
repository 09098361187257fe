/**
 * Which prefixes `kconnect up` routes into its TUN: the cluster's CIDRs plus `--also-proxy`,
 * minus `--never-proxy`, the API server's own address, the machine's DNS servers and the
 * gateways of its routes, checked against the routes the machine already has. A cluster prefix
 * wider than the policy allows (`MIN_CLUSTER_PREFIX` in `src/trust/`) also collides with the
 * default route, unless the user routes it with `--also-proxy`. No I/O: the caller passes the
 * machine's routes in.
 *
 * @module
 */
import { Cidr, parseAddress } from "../wire/address.ts";
import type { RouteEntry } from "../routes/routes.ts";
import { MIN_CLUSTER_PREFIX, within } from "../trust/trust.ts";

/** A prefix to route and why. */
export interface PlannedRoute {
  cidr: Cidr;
  /** E.g. `service CIDR (ServiceCIDR kubernetes)`, `--also-proxy`. */
  why: string;
  /** Announced by the traffic manager (set by {@linkcode planRoutes} for `cluster`). */
  fromCluster?: boolean;
}

/** A machine route, with its family when the caller knows it (`ip -4`/`-6`). */
export type ExistingRoute = RouteEntry & { family?: 4 | 6 };

/** A part of a planned prefix that stays outside the tunnel. */
export interface CutOut {
  hole: Cidr;
  from: PlannedRoute;
  /** Why, e.g. `the API server, which carries the tunnel`. */
  label: string;
}

/** A planned prefix that overlaps a route the machine already has. */
export interface RouteConflict {
  planned: PlannedRoute;
  existing: RouteEntry;
  existingCidr: Cidr;
}

/** What to route, and what was left out or collides. */
export interface RoutePlan {
  routes: PlannedRoute[];
  /** Notes for the progress output (prefixes cut out, and why). */
  notes: string[];
  conflicts: RouteConflict[];
  /** Parts of planned prefixes kept out of the tunnel (API server, DNS servers, gateways). */
  cutOut: CutOut[];
}

/** `cidr` minus `hole`: the prefixes that cover the rest (empty if `hole` covers `cidr`). */
export function subtract(cidr: Cidr, hole: Cidr): Cidr[] {
  if (!cidr.overlaps(hole)) return [cidr];
  if (hole.prefixLength <= cidr.prefixLength) return []; // the hole covers it all
  const out: Cidr[] = [];
  let cur = cidr;
  while (cur.prefixLength < hole.prefixLength) {
    const len = cur.prefixLength + 1;
    const low = Cidr.from(cur.address, len)!;
    const highAddr = cur.address.slice();
    const i = cur.prefixLength;
    highAddr[i >> 3] |= 0x80 >> (i & 7);
    const high = Cidr.from(highAddr, len)!;
    if (low.contains(hole.address)) {
      out.push(high);
      cur = low;
    } else {
      out.push(low);
      cur = high;
    }
  }
  return out;
}

/** Routes that say nothing about where a prefix goes: default, local table, our own TUN. */
function relevant(r: RouteEntry, ownDev: string): boolean {
  if (r.dst === "default" || r.dev === ownDev) return false;
  if (r.table === "local" || r.table === "255") return false;
  const type = (r as { type?: string }).type;
  if (type !== undefined && type !== "unicast") return false;
  // Link-local and multicast routes every machine has.
  return !/^(fe80:|ff00:|ff0[0-9a-f]:|169\.254\.)/.test(r.dst);
}

/** Parses a route's destination (`10.0.0.0/8`, or a bare host address). */
export function routeCidr(r: RouteEntry): Cidr | null {
  return Cidr.parse(r.dst);
}

const ANY: Record<4 | 6, Cidr> = { 4: Cidr.parse("0.0.0.0/0")!, 6: Cidr.parse("::/0")! };

/** The families a default route is for: its own, its gateway's, or (unknown) both. */
function defaultFamilies(r: ExistingRoute): (4 | 6)[] {
  if (r.family !== undefined) return [r.family];
  if (r.gateway) return [r.gateway.includes(":") ? 6 : 4];
  return [4, 6];
}

/** Inputs of {@linkcode planRoutes}. */
export interface PlanInput {
  cluster: PlannedRoute[];
  alsoProxy: Cidr[];
  neverProxy: Cidr[];
  /**
   * Addresses that must not go into the TUN (the API server's, the machine's DNS servers'), with
   * a label. The gateways of `existing` routes are kept out as well.
   */
  keepOut: { address: Cidr; label: string }[];
  /** The machine's routes (both families). */
  existing: ExistingRoute[];
  /** Our own TUN device, whose routes never conflict. */
  ownDev: string;
}

/** Builds the route plan. */
export function planRoutes(input: PlanInput): RoutePlan {
  const notes: string[] = [];
  const cutOut: CutOut[] = [];
  let routes: PlannedRoute[] = [
    ...input.cluster.map((r) => ({ ...r, fromCluster: true })),
    ...input.alsoProxy.map((cidr) => ({ cidr, why: "--also-proxy" })),
  ];
  // Drop duplicates and prefixes inside another planned prefix.
  routes = routes.filter((r, i) =>
    !routes.some((o, j) =>
      j !== i && o.cidr.overlaps(r.cidr) &&
      (o.cidr.prefixLength < r.cidr.prefixLength ||
        (o.cidr.prefixLength === r.cidr.prefixLength && j < i))
    )
  );
  const conflicts: RouteConflict[] = [];
  // A wide prefix from the manager takes traffic that now follows the default route (0.0.0.0/1
  // misses every specific route): that is a collision too, unless the user routes it anyway.
  for (const existing of input.existing) {
    if (existing.dst !== "default" || existing.dev === input.ownDev) continue;
    if (existing.table === "local" || existing.table === "255") continue;
    for (const family of defaultFamilies(existing)) {
      for (const planned of routes) {
        if (!planned.fromCluster || planned.cidr.family !== family) continue;
        if (planned.cidr.prefixLength >= MIN_CLUSTER_PREFIX[family]) continue;
        if (input.alsoProxy.some((a) => within(planned.cidr, a))) continue;
        conflicts.push({ planned, existing, existingCidr: ANY[family] });
      }
    }
  }
  // Next hops of the machine's routes must stay reachable outside the tunnel.
  const gateways = new Map<string, Cidr>();
  for (const r of input.existing) {
    const a = r.gateway ? parseAddress(r.gateway) : null;
    if (a !== null && r.dev !== input.ownDev) gateways.set(r.gateway!, Cidr.from(a, a.length * 8)!);
  }
  const holes = [
    ...input.neverProxy.map((c) => ({ hole: c, label: `--never-proxy ${c}`, cut: false })),
    ...input.keepOut.map((k) => ({ hole: k.address, label: k.label, cut: true })),
    ...[...gateways].map(([g, c]) => ({
      hole: c,
      label: `${g}, a gateway of this machine's routes`,
      cut: true,
    })),
  ];
  for (const { hole, label, cut } of holes) {
    routes = routes.flatMap((r) => {
      if (!r.cidr.overlaps(hole)) return [r];
      notes.push(`${hole} left out of ${r.cidr} (${label})`);
      if (cut) cutOut.push({ hole, from: r, label });
      return subtract(r.cidr, hole).map((cidr) => ({ ...r, cidr }));
    });
  }
  for (const existing of input.existing) {
    if (!relevant(existing, input.ownDev)) continue;
    const existingCidr = routeCidr(existing);
    if (existingCidr === null) continue;
    for (const planned of routes) {
      if (planned.cidr.overlaps(existingCidr)) conflicts.push({ planned, existing, existingCidr });
    }
  }
  return { routes, notes, conflicts, cutOut };
}

/** One line per conflict, naming both sides and the ways out. */
export function describeConflicts(conflicts: RouteConflict[]): string {
  const lines = conflicts.map(({ planned, existing, existingCidr }) => {
    const via = [
      existing.dev ? `dev ${existing.dev}` : "",
      existing.gateway ? `via ${existing.gateway}` : "",
      existing.protocol ? `proto ${existing.protocol}` : "",
    ].filter((s) => s).join(" ");
    const dst = existing.dst === "default" ? `default (${existingCidr})` : `${existingCidr}`;
    return `  ${planned.cidr} (${planned.why}) overlaps this machine's route ${dst} ${via}`;
  });
  return `The cluster's networks collide with routes this machine already has:\n${
    lines.join("\n")
  }\n` +
    "Routing them into kconnect would take that traffic away from where it goes now (a VPN, a local network). " +
    "Keep a range local with --never-proxy CIDR, or route anyway with --allow-route-conflicts.";
}
