/**
 * Routes to the TUN device on the running OS: the one place the rest of kconnect changes routes
 * through. Each OS's module (`linux.ts`, …) only runs its commands; this one picks it, and owns
 * the journal kind {@linkcode ROUTE_KIND} (its undo is registered when this module loads), so a
 * route left by a crash is removed by the next `up` or `down` with the same OS's commands.
 *
 * @module
 */
import { registerUndo } from "../journal/undo.ts";
import { Cidr } from "../wire/address.ts";
import * as linux from "./linux.ts";
import * as darwin from "./darwin.ts";
import * as windows from "./windows.ts";
import type { RouteEntry } from "./linux.ts";

export type { RouteEntry } from "./linux.ts";

/** The journal kind of a route kconnect added (`{ cidr, dev }`). */
export const ROUTE_KIND = "route";

/** What each OS's route module does. */
interface RouteOps {
  addRoute(cidr: Cidr, dev: string): Promise<void>;
  deleteRoute(cidr: Cidr, dev: string): Promise<void>;
  listRoutes(family: 4 | 6): Promise<RouteEntry[]>;
}

/** The running OS's route module; throws, naming the OS, where there is none. */
function ops(): RouteOps {
  switch (Deno.build.os) {
    case "linux":
      return linux;
    case "darwin":
      return darwin;
    case "windows":
      return windows;
    default:
      throw new Error(`Changing routes on ${Deno.build.os} is not supported yet`);
  }
}

/** Routes `cidr` into `dev`. Fails if the same route exists already. */
export function addRoute(cidr: Cidr, dev: string): Promise<void> {
  return ops().addRoute(cidr, dev);
}

/** Removes the route to `cidr` through `dev`; a route already gone is not an error. */
export function deleteRoute(cidr: Cidr, dev: string): Promise<void> {
  return ops().deleteRoute(cidr, dev);
}

/** The machine's routes of one family, from every table. */
export function listRoutes(family: 4 | 6): Promise<RouteEntry[]> {
  return ops().listRoutes(family);
}

registerUndo(ROUTE_KIND, async (data) => {
  const cidr = Cidr.parse(String(data.cidr));
  if (cidr === null) return `bad route entry ${data.cidr} left alone`;
  await deleteRoute(cidr, String(data.dev));
  return `route ${cidr} via ${data.dev} removed`;
});
