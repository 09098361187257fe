/**
 * The TUN layer: raw IP packets in and out of the kernel.
 *
 * - {@linkcode openTun} opens the driver of the running OS (Linux today).
 * - {@linkcode MemoryTun} is an in-memory device for tests.
 * - {@linkcode TunDevice} is the contract both implement.
 *
 * @example
 * ```ts
 * import { MemoryTun, type TunDevice } from "./mod.ts";
 * const tun: TunDevice = new MemoryTun({ mtu: 1400 });
 * if (tun.mtu !== 1400) throw new Error("unexpected");
 * await tun.close();
 * ```
 *
 * @module
 */

export type { InterfaceAddress, TunDevice, TunOptions, TunStats } from "./device.ts";
export { openTun } from "./open.ts";
export { MemoryTun, type MemoryTunOptions } from "./memory.ts";
export { LinuxTunDevice, type LinuxTunOptions, openLinuxTun } from "./linux.ts";
