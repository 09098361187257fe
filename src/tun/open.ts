/**
 * Opens the TUN driver of the running OS; the rest of kconnect calls only this.
 *
 * @module
 */

import type { TunDevice, TunOptions } from "./device.ts";
import { openLinuxTun } from "./linux.ts";
import { openDarwinTun } from "./darwin.ts";
import { openWindowsTun } from "./windows.ts";

/** A macOS utun is named by the kernel (`utunN`): another name asked for is not an error. */
const UTUN_NAME = /^utun\d+$/;

/**
 * Opens a TUN device with the driver for `Deno.build.os`.
 *
 * @param options Name, MTU and addresses; see {@linkcode TunOptions}.
 * @returns The open, configured device.
 * On macOS the kernel names the device (`utunN`; a `utunN` asked for is honoured, any other
 * name is not possible there), and on Windows the adapter's alias may differ from the name
 * asked for (`kconnect 2`): read the name from the device.
 *
 * @throws {Error} On an OS without a driver (others than Linux, macOS and Windows).
 *
 * @example
 * ```ts ignore
 * import { openTun } from "./open.ts";
 * await using tun = await openTun({ addresses: [{ address: "198.18.0.1", prefixLength: 30 }] });
 * ```
 */
export function openTun(options: TunOptions = {}): Promise<TunDevice> {
  switch (Deno.build.os) {
    case "linux":
      return openLinuxTun(options);
    case "darwin":
      return openDarwinTun({
        ...options,
        name: options.name !== undefined && UTUN_NAME.test(options.name) ? options.name : undefined,
      });
    case "windows":
      return openWindowsTun(options);
    default:
      return Promise.reject(new Error(`TUN devices on ${Deno.build.os} are not supported`));
  }
}
