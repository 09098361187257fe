/**
 * Routes on macOS, through `/sbin/route` and `/usr/sbin/netstat -rn` (what Tailscale's
 * open-source `tailscaled` does; a PF_ROUTE socket can come later). Same functions as
 * `linux.ts`; the journal kind and its undo belong to `routes.ts`, which picks this module on
 * macOS. Routes into a utun vanish with the interface, so a crash cannot leave them behind.
 *
 * Every function takes the command runner last, so tests record the commands instead of running
 * them.
 *
 * macOS route(8) exits 0 even when the kernel refused the change (Apple's `newroute` only warns):
 * success is read from its output, never from its exit status alone.
 *
 * @module
 */
import { Cidr, parseAddress } from "../wire/address.ts";
import type { RouteEntry } from "./linux.ts";

/** Where route lives on macOS (absolute: the daemon runs as root, PATH is not trusted). */
export const ROUTE_PATH = "/sbin/route";
/** Where netstat lives on macOS. */
export const NETSTAT_PATH = "/usr/sbin/netstat";

/** What a command printed and how it exited. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with arguments (no shell) and collects its output. */
export type CommandRunner = (program: string, args: string[]) => Promise<CommandResult>;

/** The real runner: `Deno.Command`, output captured. */
export async function runCommand(program: string, args: string[]): Promise<CommandResult> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot change routes: ${program} is missing`);
    }
    throw err;
  }
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A route as `netstat -rn` lists it on macOS. */
export interface DarwinRouteEntry extends RouteEntry {
  /** The flags column, e.g. `UGScg` (`netstat(1)`: G gateway, H host, I interface-scoped, …). */
  flags: string;
  /**
   * `unicast`, or what makes the route say nothing about where traffic goes, in the words of
   * Linux's route types where there is one: `multicast` (m), `broadcast` (b), `blackhole` (B),
   * `unreachable` (R), `cloned` (W: a host entry the kernel cloned, such as an ARP entry).
   */
  type: string;
}

/**
 * `route` arguments that add or delete a route to `cidr` into interface `dev`:
 * `-n add -inet 10.96.0.0/12 -iface utun4`, `-inet6` for IPv6.
 *
 * @example
 * ```ts
 * import { Cidr } from "../wire/address.ts";
 * import { routeArgs } from "./darwin.ts";
 * if (routeArgs("delete", Cidr.parse("10.96.0.0/12")!, "utun4").join(" ") !== "-n delete -inet 10.96.0.0/12 -iface utun4") throw new Error();
 * ```
 */
export function routeArgs(op: "add" | "delete", cidr: Cidr, dev: string): string[] {
  return ["-n", op, cidr.family === 6 ? "-inet6" : "-inet", cidr.toString(), "-iface", dev];
}

/**
 * What went wrong in a route(8) run, or null when it succeeded: `route: writing to routing
 * socket: File exists` on stderr, or `add net 10.96.0.0: gateway utun4: File exists` on stdout
 * (a success prints `add net 10.96.0.0: gateway utun4`), or a non-zero exit (`must be root`).
 */
export function routeFailure(r: CommandResult): string | null {
  const socket = /writing to routing socket: (.+)/.exec(r.stderr);
  if (socket !== null) return socket[1].trim();
  for (const line of r.stdout.split("\n")) {
    const m = /^(?:add|delete|change) (?:net|host) (.*)$/.exec(line.trim());
    if (m === null) continue;
    // `<dst>: gateway <gw>[: <error>]` or `<dst>: <error>`; an IPv6 <dst> can end in ':'
    // (`fd00::: gateway utun4`) but no address holds ": ".
    let rest = m[1];
    const gateway = rest.indexOf(": gateway ");
    if (gateway >= 0) rest = rest.slice(gateway + ": gateway ".length);
    const sep = rest.indexOf(": ");
    if (sep >= 0) return rest.slice(sep + 2).trim();
  }
  if (r.code !== 0) {
    return (r.stderr.trim() || r.stdout.trim() || `exit status ${r.code}`).split("\n")[0];
  }
  return null;
}

async function route(args: string[], run: CommandRunner): Promise<string | null> {
  return routeFailure(await run(ROUTE_PATH, args));
}

/** Routes `cidr` into `dev`. Fails if the same route exists already. */
export async function addRoute(
  cidr: Cidr,
  dev: string,
  run: CommandRunner = runCommand,
): Promise<void> {
  const args = routeArgs("add", cidr, dev);
  const why = await route(args, run);
  if (why !== null) throw new Error(`route ${args.join(" ")} failed: ${why}`);
}

/** Removes the route to `cidr` through `dev`; a route already gone is not an error. */
export async function deleteRoute(
  cidr: Cidr,
  dev: string,
  run: CommandRunner = runCommand,
): Promise<void> {
  const args = routeArgs("delete", cidr, dev);
  const why = await route(args, run);
  if (why === null || /not in table|No such process/i.test(why)) return;
  throw new Error(`route ${args.join(" ")} failed: ${why}`);
}

/** The machine's routes of one family, from `netstat -rnW -f inet|inet6`. */
export async function listRoutes(
  family: 4 | 6,
  run: CommandRunner = runCommand,
): Promise<DarwinRouteEntry[]> {
  const args = ["-rnW", "-f", family === 6 ? "inet6" : "inet"];
  const out = await run(NETSTAT_PATH, args);
  if (out.code !== 0) {
    throw new Error(`netstat ${args.join(" ")} failed: ${out.stderr.trim() || out.code}`);
  }
  return parseNetstatRoutes(out.stdout, family);
}

/** The classful mask length netstat leaves unwritten for an IPv4 network (`forgemask`). */
function classfulLength(firstOctet: number): number {
  return firstOctet < 128 ? 8 : firstOctet < 192 ? 16 : 24;
}

/**
 * A destination as netstat prints it, in the form `linux.ts` gives (`10.96.0.0/12`, a bare
 * address for a host route, `default`), or null when it cannot be read.
 *
 * netstat shortens IPv4 networks: trailing zero bytes are left out (`10.96/12`, `192.168.1`)
 * and so is a mask equal to the address's old class mask (`127` is 127.0.0.0/8, `169.254`
 * 169.254.0.0/16, `192.168.1` 192.168.1.0/24). IPv6 destinations carry a scope
 * (`fe80::%lo0/64`), which is dropped.
 */
export function netstatDestination(text: string, host: boolean): string | null {
  if (text === "default") return "default";
  const [bare, length] = text.replace(/%[^/]*/, "").split("/", 2);
  if (bare.includes(":")) {
    if (parseAddress(bare) === null) return null;
    if (host || length === undefined) return bare;
    const cidr = Cidr.parse(`${bare}/${length}`);
    return cidr === null ? null : cidr.toString();
  }
  const octets = bare.split(".");
  if (octets.length < 1 || octets.length > 4 || octets.some((o) => !/^\d{1,3}$/.test(o))) {
    return null;
  }
  while (octets.length < 4) octets.push("0");
  const address = octets.join(".");
  if (parseAddress(address) === null) return null;
  if (host && length === undefined) return address;
  const bits = length === undefined ? classfulLength(Number(octets[0])) : Number(length);
  const cidr = Cidr.parse(`${address}/${bits}`);
  return cidr === null ? null : cidr.toString();
}

function routeType(flags: string): string {
  if (flags.includes("B")) return "blackhole";
  if (flags.includes("R")) return "unreachable";
  if (flags.includes("m")) return "multicast";
  if (flags.includes("b")) return "broadcast";
  if (flags.includes("W")) return "cloned";
  return "unicast";
}

/**
 * Parses `netstat -rn` output (with or without `-W`, `-l`; one family's section or both) into
 * the routes of `family`. Columns are found by the header line, so the older layout with `Refs`
 * and `Use` reads the same. `gateway` is set only when the gateway is an IP address (not
 * `link#6`, a MAC address or an interface name).
 *
 * @example
 * ```ts
 * import { parseNetstatRoutes } from "./darwin.ts";
 * const text = "Routing tables\n\nInternet:\nDestination        Gateway            Flags               Netif Expire\n" +
 *   "default            192.168.1.1        UGScg                 en0\n10.96/12           utun4              USc                 utun4\n";
 * const routes = parseNetstatRoutes(text, 4);
 * if (routes[1].dst !== "10.96.0.0/12" || routes[1].dev !== "utun4") throw new Error();
 * ```
 */
export function parseNetstatRoutes(text: string, family: 4 | 6): DarwinRouteEntry[] {
  const routes: DarwinRouteEntry[] = [];
  let section: 4 | 6 | null = null;
  let columns: string[] | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line === "Internet:") {
      section = 4;
      columns = null;
      continue;
    }
    if (line === "Internet6:") {
      section = 6;
      columns = null;
      continue;
    }
    if (/^[A-Za-z ]+:$/.test(line)) {
      section = null; // another family's table
      continue;
    }
    const fields = line.split(/\s+/);
    if (fields[0] === "Destination") {
      columns = fields;
      // A section-less listing (some netstat versions with -f print no "Internet:" line).
      if (section === null && !text.includes("Internet")) section = family;
      continue;
    }
    if (section !== family || columns === null) continue;
    const at = (name: string) => {
      const i = columns!.indexOf(name);
      return i < 0 ? undefined : fields[i];
    };
    const dstText = fields[0];
    const flags = at("Flags") ?? "";
    const dst = netstatDestination(dstText, flags.includes("H"));
    if (dst === null) continue;
    const entry: DarwinRouteEntry = { dst, flags, type: routeType(flags) };
    const dev = at("Netif");
    if (dev !== undefined) entry.dev = dev;
    const gatewayText = (at("Gateway") ?? "").replace(/%.*$/, "");
    if (parseAddress(gatewayText) !== null) entry.gateway = gatewayText;
    routes.push(entry);
  }
  return routes;
}
