/**
 * Interface configuration through ioctls on a control socket: MTU, IPv4 and IPv6 addresses,
 * link up. Private to the Linux driver.
 *
 * @module
 */

import type { InterfaceAddress } from "./device.ts";
import { checkTunConfig, MAX_MTU, MIN_MTU } from "./checks.ts";
import {
  AF_INET,
  AF_INET6,
  again,
  errnoError,
  IFNAMSIZ,
  Ifreq,
  in6Ifreq,
  libc,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
} from "./libc.ts";

// linux/if_tun.h
export const TUNSETIFF = 0x400454ca;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
// linux/sockios.h, linux/if.h
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFADDR = 0x8916;
const SIOCSIFNETMASK = 0x891c;
const SIOCSIFMTU = 0x8922;
const SIOCGIFINDEX = 0x8933;
const SIOCSIFTXQLEN = 0x8943;

/**
 * Transmit queue length set on every TUN. The kernel's default for TUN is 500 packets: at
 * MTU 1500 a single TCP stream overflows it while kconnect is busy with a batch, and every drop
 * costs a retransmission (measured: 5400 retransmits in 4 s at 500, none at 2000).
 */
export const TX_QUEUE_LENGTH = 2000;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

export { MAX_MTU, MIN_MTU };

/** An address checked and parsed, ready for the ioctls. */
export interface ParsedAddress {
  bytes: Uint8Array;
  prefixLength: number;
  text: string;
}

/** Checks an interface name the way the kernel's dev_valid_name() does; throws TypeError. */
export function validateName(name: string): void {
  const length = new TextEncoder().encode(name).length;
  if (length === 0 || length >= IFNAMSIZ) {
    throw new TypeError(
      `Invalid TUN name "${name}": must be 1 to ${IFNAMSIZ - 1} bytes, got ${length}`,
    );
  }
  if (name === "." || name === ".." || /[/:\s]/.test(name)) {
    throw new TypeError(
      `Invalid TUN name "${name}": must not be "." or ".." nor contain "/", ":" or whitespace`,
    );
  }
}

/** Checks the MTU and the addresses before anything is opened; throws TypeError/RangeError. */
export function parseConfig(mtu: number, addresses: InterfaceAddress[]): ParsedAddress[] {
  return checkTunConfig(mtu, addresses).map((a) => ({
    bytes: a.bytes,
    prefixLength: a.prefixLength,
    text: a.address,
  }));
}

function ioctlOrThrow(fd: number, request: number, arg: Uint8Array, action: string): void {
  if (again(() => libc().ioctl(fd, BigInt(request), arg)) < 0) throw errnoError(action);
}

function openSocket(family: number): number {
  const fd = again(() => libc().socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd < 0) throw errnoError(`socket(${family === AF_INET ? "AF_INET" : "AF_INET6"})`);
  return fd;
}

function netmask(prefixLength: number): Uint8Array {
  const mask = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const bits = Math.min(8, Math.max(0, prefixLength - i * 8));
    mask[i] = (0xff00 >> bits) & 0xff;
  }
  return mask;
}

/**
 * Disables duplicate address detection on the link so IPv6 addresses are usable at once: a
 * TUN is point-to-point and has no neighbour to collide with. Best effort (read-only /proc).
 */
function disableDad(name: string): void {
  try {
    Deno.writeTextFileSync(`/proc/sys/net/ipv6/conf/${name}/accept_dad`, "0");
  } catch {
    // Addresses then stay tentative for about a second; not fatal.
  }
}

/** Sets the MTU, assigns the addresses and brings interface `name` up. */
export function configureInterface(name: string, mtu: number, addresses: ParsedAddress[]): void {
  const inet = openSocket(AF_INET);
  let inet6 = -1;
  try {
    const req = new Ifreq(name);
    req.mtu = mtu;
    ioctlOrThrow(inet, SIOCSIFMTU, req.bytes, `SIOCSIFMTU ${mtu} on ${name}`);
    req.mtu = TX_QUEUE_LENGTH; // ifr_qlen shares ifr_mtu's place in the union
    ioctlOrThrow(inet, SIOCSIFTXQLEN, req.bytes, `SIOCSIFTXQLEN ${TX_QUEUE_LENGTH} on ${name}`);

    let v4Count = 0;
    for (const a of addresses.filter((a) => a.bytes.length === 4)) {
      // The first IPv4 address is the primary one; more need an alias label (`tun0:1`).
      const label = v4Count === 0 ? name : `${name}:${v4Count}`;
      if (new TextEncoder().encode(label).length >= IFNAMSIZ) {
        throw new RangeError(`Cannot add IPv4 address ${a.text}: alias label ${label} too long`);
      }
      v4Count++;
      const addrReq = new Ifreq(label);
      addrReq.setInet4(a.bytes);
      ioctlOrThrow(inet, SIOCSIFADDR, addrReq.bytes, `SIOCSIFADDR ${a.text} on ${label}`);
      addrReq.setInet4(netmask(a.prefixLength));
      ioctlOrThrow(
        inet,
        SIOCSIFNETMASK,
        addrReq.bytes,
        `SIOCSIFNETMASK /${a.prefixLength} on ${label}`,
      );
    }

    const v6 = addresses.filter((a) => a.bytes.length === 16);
    if (v6.length > 0) {
      inet6 = openSocket(AF_INET6);
      const indexReq = new Ifreq(name);
      ioctlOrThrow(inet, SIOCGIFINDEX, indexReq.bytes, `SIOCGIFINDEX on ${name}`);
      disableDad(name);
      for (const a of v6) {
        const req6 = in6Ifreq(a.bytes, a.prefixLength, indexReq.ifindex);
        ioctlOrThrow(
          inet6,
          SIOCSIFADDR,
          req6,
          `SIOCSIFADDR ${a.text}/${a.prefixLength} on ${name}`,
        );
      }
    }

    const flagsReq = new Ifreq(name);
    ioctlOrThrow(inet, SIOCGIFFLAGS, flagsReq.bytes, `SIOCGIFFLAGS on ${name}`);
    flagsReq.flags |= IFF_UP | IFF_RUNNING;
    ioctlOrThrow(inet, SIOCSIFFLAGS, flagsReq.bytes, `SIOCSIFFLAGS up on ${name}`);
  } finally {
    libc().close(inet);
    if (inet6 >= 0) libc().close(inet6);
  }
}
