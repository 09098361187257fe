/**
 * Opens the TUN driver of the running OS; the rest of kconnect calls only this.
 *
 * @module
 */

import type { TunDevice, TunOptions } from "./device.ts";
import { openLinuxTun } from "./linux.ts";

/**
 * Opens a TUN device with the driver for `Deno.build.os`.
 *
 * @param options Name, MTU and addresses; see {@linkcode TunOptions}.
 * @returns The open, configured device.
 * @throws {Error} On an OS without a driver yet (macOS, Windows, others).
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
      return Promise.reject(
        new Error("TUN devices on macOS are not supported yet (utun driver not written)"),
      );
    case "windows":
      return Promise.reject(
        new Error("TUN devices on Windows are not supported yet (wintun driver not written)"),
      );
    default:
      return Promise.reject(new Error(`TUN devices on ${Deno.build.os} are not supported`));
  }
}
