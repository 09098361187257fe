/**
 * What every TUN driver checks and builds the same way, whatever the OS: the MTU and addresses
 * asked for (before anything is opened), and the error an OS call's errno becomes.
 *
 * @module
 */
import { parseAddress } from "../wire/address.ts";
import type { InterfaceAddress } from "./device.ts";

/** Smallest and largest MTU accepted. */
export const MIN_MTU = 68;
/** Largest MTU accepted. */
export const MAX_MTU = 65535;
/** IPv6 needs links of at least this MTU (RFC 8200); kernels disable it below. */
export const IPV6_MIN_MTU = 1280;

/** An address checked and parsed. */
export interface CheckedAddress {
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
  prefixLength: number;
  /** The address as given. */
  address: string;
}

/**
 * Checks the MTU and the addresses; throws RangeError or TypeError naming what is wrong.
 *
 * @example
 * ```ts
 * import { checkTunConfig } from "./checks.ts";
 * const [a] = checkTunConfig(1500, [{ address: "198.18.0.1", prefixLength: 29 }]);
 * if (a.bytes.length !== 4 || a.prefixLength !== 29) throw new Error("unexpected");
 * ```
 */
export function checkTunConfig(mtu: number, addresses: InterfaceAddress[]): CheckedAddress[] {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new RangeError(
      `Invalid TUN MTU ${mtu}: must be an integer from ${MIN_MTU} to ${MAX_MTU}`,
    );
  }
  return addresses.map(({ address, prefixLength }) => {
    const bytes = parseAddress(address);
    if (bytes === null) {
      throw new TypeError(`Invalid TUN address "${address}": not an IPv4 or IPv6 address`);
    }
    const bits = bytes.length * 8;
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
      throw new RangeError(
        `Invalid prefix length ${prefixLength} for ${address}: must be 0 to ${bits}`,
      );
    }
    if (bytes.length === 16 && mtu < IPV6_MIN_MTU) {
      throw new RangeError(
        `Cannot assign IPv6 address ${address} with MTU ${mtu}: IPv6 needs at least ${IPV6_MIN_MTU}`,
      );
    }
    return { bytes, prefixLength, address };
  });
}

/**
 * The error an OS call's failure becomes: `message` in the `Deno.errors` class for its errno's
 * name (`code`, e.g. `EPERM`: the numbers differ between OSes, the names do not), with `code` and
 * `errno` on it.
 *
 * @example
 * ```ts
 * import { errnoErrorOf } from "./checks.ts";
 * const e = errnoErrorOf("open /dev/net/tun: Operation not permitted (EPERM)", "EPERM", 1);
 * if (!(e instanceof Deno.errors.PermissionDenied) || e.errno !== 1) throw new Error();
 * ```
 */
export function errnoErrorOf(
  message: string,
  code: string,
  errno: number,
): Error & { code: string; errno: number } {
  let error: Error;
  switch (code) {
    case "EPERM":
    case "EACCES":
      error = new Deno.errors.PermissionDenied(message);
      break;
    case "ENOENT":
    case "ENODEV":
    case "ENXIO":
      error = new Deno.errors.NotFound(message);
      break;
    case "EEXIST":
      error = new Deno.errors.AlreadyExists(message);
      break;
    case "EBUSY":
      error = new Deno.errors.Busy(message);
      break;
    case "EADDRINUSE":
      error = new Deno.errors.AddrInUse(message);
      break;
    case "EADDRNOTAVAIL":
      error = new Deno.errors.AddrNotAvailable(message);
      break;
    case "EINVAL":
      error = new TypeError(message);
      break;
    default:
      error = new Error(message);
  }
  return Object.assign(error, { code, errno });
}
