/**
 * Interface configuration of a macOS utun device with `/sbin/ifconfig` and `/sbin/route`, the
 * way Tailscale's open-source `tailscaled` and wg-quick do it (notes §B.7): addresses, MTU, up,
 * and a route to each address's prefix. Pure argument builders plus a runner that tests replace.
 * Private to the macOS driver (`darwin.ts`).
 *
 * Everything here is tied to the interface: when the utun's descriptor closes (or the process
 * dies) the interface, its addresses and its routes go with it.
 *
 * @module
 */

import { Cidr, formatAddress } from "../wire/address.ts";
import type { InterfaceAddress } from "./device.ts";
import { checkTunConfig, MAX_MTU, MIN_MTU } from "./checks.ts";
import {
  type CommandResult,
  type CommandRunner,
  ROUTE_PATH,
  routeArgs,
  routeFailure,
} from "../routes/darwin.ts";

// route(8)'s arguments and how its output tells a failure are the route module's: one copy.
export { routeArgs, routeFailure };
export type { CommandResult, CommandRunner };

/** Where ifconfig lives on macOS (absolute: the daemon runs as root, PATH is not trusted). */
export const IFCONFIG = "/sbin/ifconfig";
/** Where route lives on macOS. */
export const ROUTE = ROUTE_PATH;

export { MAX_MTU, MIN_MTU };

/** The real runner: `Deno.Command`, output captured. */
export async function runCommand(program: string, args: string[]): Promise<CommandResult> {
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** An address checked and parsed. */
export interface DarwinAddress {
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
  prefixLength: number;
  /** The address in canonical text. */
  text: string;
}

/**
 * The `sc_unit` for a requested name: 0 (the kernel picks) for none, N + 1 for `utunN`.
 *
 * @throws {TypeError} For any other name: macOS names utun interfaces itself.
 */
export function utunUnit(name: string | undefined): number {
  if (name === undefined || name === "") return 0;
  const m = /^utun(0|[1-9][0-9]{0,5})$/.exec(name);
  if (m === null) {
    throw new TypeError(
      `Invalid TUN name "${name}": on macOS a TUN is a utun interface named utunN; ` +
        "leave the name out and the kernel picks a free one",
    );
  }
  const unit = Number(m[1]) + 1;
  if (unit > 0xffffffff) throw new TypeError(`Invalid TUN name "${name}": unit too large`);
  return unit;
}

/** Checks the MTU and the addresses before anything is opened; throws TypeError/RangeError. */
export function parseDarwinConfig(mtu: number, addresses: InterfaceAddress[]): DarwinAddress[] {
  return checkTunConfig(mtu, addresses).map((a) => ({
    bytes: a.bytes,
    prefixLength: a.prefixLength,
    text: formatAddress(a.bytes),
  }));
}

/**
 * `ifconfig` arguments that add one address to the interface.
 * - IPv4: `utunN inet A/len A alias`. A utun is point-to-point and IPv4 on it needs a
 *   destination; the address itself serves (as Tailscale and wg-quick do). `alias` adds rather
 *   than replaces, so several addresses can be given.
 * - IPv6: `utunN inet6 A/len alias`.
 *
 * @example
 * ```ts
 * import { ifconfigAddressArgs } from "./darwin_config.ts";
 * const args = ifconfigAddressArgs("utun7", { bytes: new Uint8Array([198, 18, 0, 1]), prefixLength: 29, text: "198.18.0.1" });
 * if (args.join(" ") !== "utun7 inet 198.18.0.1/29 198.18.0.1 alias") throw new Error();
 * ```
 */
export function ifconfigAddressArgs(name: string, a: DarwinAddress): string[] {
  return a.bytes.length === 4
    ? [name, "inet", `${a.text}/${a.prefixLength}`, a.text, "alias"]
    : [name, "inet6", `${a.text}/${a.prefixLength}`, "alias"];
}

/** `ifconfig` arguments that set the MTU and bring the interface up: `utunN mtu M up`. */
export function ifconfigMtuUpArgs(name: string, mtu: number): string[] {
  return [name, "mtu", String(mtu), "up"];
}

/** The network of an address's prefix, or null for a host prefix (/32, /128): nothing to route. */
export function addressPrefix(a: DarwinAddress): Cidr | null {
  if (a.prefixLength === a.bytes.length * 8) return null;
  return Cidr.from(a.bytes, a.prefixLength);
}

/**
 * One step of the configuration: the program and arguments, and whether `File exists` from
 * route(8) counts as done (for an IPv6 prefix the kernel routes itself when the address is added).
 */
export interface ConfigStep {
  program: string;
  args: string[];
  existsIsOk?: boolean;
}

/**
 * The commands that configure a fresh utun, in order: each address (`ifconfig … alias`), MTU and
 * up, then a route to each address's prefix into the interface. On a point-to-point utun the
 * kernel routes only the destination address (IPv4), so without these the other addresses of
 * the prefix (the fake peer, the DNS server: `src/stack/tun_addresses.ts`) would not reach the
 * TUN; on Linux the address's prefix route does this.
 */
export function configSteps(name: string, mtu: number, addresses: DarwinAddress[]): ConfigStep[] {
  const steps: ConfigStep[] = addresses.map((a) => ({
    program: IFCONFIG,
    args: ifconfigAddressArgs(name, a),
  }));
  steps.push({ program: IFCONFIG, args: ifconfigMtuUpArgs(name, mtu) });
  const seen = new Set<string>();
  for (const a of addresses) {
    const prefix = addressPrefix(a);
    if (prefix === null || seen.has(prefix.toString())) continue;
    seen.add(prefix.toString());
    steps.push({
      program: ROUTE,
      args: routeArgs("add", prefix, name),
      existsIsOk: prefix.family === 6,
    });
  }
  return steps;
}

/**
 * Runs {@linkcode configSteps} with `run`; the first failure throws, naming the command and what
 * it printed.
 */
export async function configureUtun(
  name: string,
  mtu: number,
  addresses: DarwinAddress[],
  run: CommandRunner = runCommand,
): Promise<void> {
  for (const step of configSteps(name, mtu, addresses)) {
    const line = `${step.program} ${step.args.join(" ")}`;
    let result: CommandResult;
    try {
      result = await run(step.program, step.args);
    } catch (err) {
      throw new Error(`Configuring ${name}: ${line} could not run: ${(err as Error).message}`);
    }
    if (step.program === ROUTE) {
      const why = routeFailure(result);
      if (why === null || (step.existsIsOk && /File exists/i.test(why))) continue;
      throw new Error(`Configuring ${name}: ${line} failed: ${why}`);
    }
    if (result.code !== 0) {
      const why = result.stderr.trim() || result.stdout.trim() || `exit status ${result.code}`;
      throw new Error(`Configuring ${name}: ${line} failed: ${why}`);
    }
  }
}
