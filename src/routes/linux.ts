/**
 * Routes on Linux, through iproute2's `ip` (present on every Linux this runs on). Routes to a
 * TUN device vanish with the device, so a crash cannot leave them behind; those journaled are
 * removed by the next `up` or `down` all the same (`routes.ts`, which picks this module on
 * Linux, owns the journal kind).
 *
 * @module
 */
import type { Cidr } from "../wire/address.ts";

/** A route as the kernel lists it. */
export interface RouteEntry {
  /** `default` or a prefix like `10.0.0.0/8` (a bare address for a host route). */
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  table?: string;
}

async function ip(args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error("Cannot change routes: the `ip` command (iproute2) is not installed");
    }
    throw err;
  }
  if (!out.success) {
    const msg = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`ip ${args.join(" ")} failed: ${msg}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Routes `cidr` into `dev`. Fails if the same route exists already. */
export async function addRoute(cidr: Cidr, dev: string): Promise<void> {
  await ip([cidr.family === 6 ? "-6" : "-4", "route", "add", cidr.toString(), "dev", dev]);
}

/** Removes the route to `cidr` through `dev`; a route already gone is not an error. */
export async function deleteRoute(cidr: Cidr, dev: string): Promise<void> {
  try {
    await ip([cidr.family === 6 ? "-6" : "-4", "route", "del", cidr.toString(), "dev", dev]);
  } catch (err) {
    if (!/No such process|Cannot find device|No such device/.test((err as Error).message)) {
      throw err;
    }
  }
}

/** The machine's routes of one family, from every table. */
export async function listRoutes(family: 4 | 6): Promise<RouteEntry[]> {
  const text = await ip([`-${family}`, "-j", "route", "show", "table", "all"]);
  return (JSON.parse(text || "[]") as RouteEntry[]);
}
