/**
 * Which prefixes `kconnect up` routes into its TUN: the cluster's CIDRs plus `--also-proxy`,
 * minus `--never-proxy` and the API server's own address, checked against the routes the machine
 * already has. No I/O: the caller passes the machine's routes in.
 *
 * @module
 */
import { Cidr } from "../wire/address.ts";
import type { RouteEntry } from "../routes/linux.ts";

/** A prefix to route and why. */
export interface PlannedRoute {
  cidr: Cidr;
  /** E.g. `service CIDR (ServiceCIDR kubernetes)`, `--also-proxy`. */
  why: string;
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

/** Inputs of {@linkcode planRoutes}. */
export interface PlanInput {
  cluster: PlannedRoute[];
  alsoProxy: Cidr[];
  neverProxy: Cidr[];
  /** Addresses that must not go into the TUN (the API server's), with a label. */
  keepOut: { address: Cidr; label: string }[];
  /** The machine's routes (both families). */
  existing: RouteEntry[];
  /** Our own TUN device, whose routes never conflict. */
  ownDev: string;
}

/** Builds the route plan. */
export function planRoutes(input: PlanInput): RoutePlan {
  const notes: string[] = [];
  let routes: PlannedRoute[] = [
    ...input.cluster,
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
  const holes = [
    ...input.neverProxy.map((c) => ({ hole: c, label: `--never-proxy ${c}` })),
    ...input.keepOut.map((k) => ({ hole: k.address, label: k.label })),
  ];
  for (const { hole, label } of holes) {
    routes = routes.flatMap((r) => {
      if (!r.cidr.overlaps(hole)) return [r];
      notes.push(`${hole} left out of ${r.cidr} (${label})`);
      return subtract(r.cidr, hole).map((cidr) => ({ cidr, why: r.why }));
    });
  }
  const conflicts: RouteConflict[] = [];
  for (const existing of input.existing) {
    if (!relevant(existing, input.ownDev)) continue;
    const existingCidr = routeCidr(existing);
    if (existingCidr === null) continue;
    for (const planned of routes) {
      if (planned.cidr.overlaps(existingCidr)) conflicts.push({ planned, existing, existingCidr });
    }
  }
  return { routes, notes, conflicts };
}

/** One line per conflict, naming both sides and the ways out. */
export function describeConflicts(conflicts: RouteConflict[]): string {
  const lines = conflicts.map(({ planned, existing, existingCidr }) => {
    const via = [
      existing.dev ? `dev ${existing.dev}` : "",
      existing.gateway ? `via ${existing.gateway}` : "",
      existing.protocol ? `proto ${existing.protocol}` : "",
    ].filter((s) => s).join(" ");
    return `  ${planned.cidr} (${planned.why}) overlaps this machine's route ${existingCidr} ${via}`;
  });
  return `The cluster's networks collide with routes this machine already has:\n${
    lines.join("\n")
  }\n` +
    "Routing them into kconnect would take that traffic away from where it goes now (a VPN, a local network). " +
    "Keep a range local with --never-proxy CIDR, or route anyway with --allow-route-conflicts.";
}
