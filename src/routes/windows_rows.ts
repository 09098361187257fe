/**
 * `MIB_IPFORWARD_ROW2` (`netioapi.h`, x64): the row iphlpapi takes to add or delete a route and
 * lists routes in. Size and offsets are those of `../shared/platform-notes.md` §C.4, which a
 * mingw-w64 layout program confirms (`windows_rows_test.ts` compiles one when the cross compiler
 * is there). `SOCKADDR_INET` is written here too, as in `src/tun/windows_rows.ts` (the two
 * folders do not import each other).
 *
 * @module
 */
import { Cidr } from "../wire/address.ts";

/** `AF_INET` on Windows. */
export const WIN_AF_INET = 2;
/** `AF_INET6` on Windows. */
export const WIN_AF_INET6 = 23;
/** `sizeof(SOCKADDR_INET)`. */
export const SOCKADDR_INET_SIZE = 28;

/** `sizeof(MIB_IPFORWARD_ROW2)`. */
export const MIB_IPFORWARD_ROW2_SIZE = 104;
/** Field offsets of `MIB_IPFORWARD_ROW2`. */
export const ForwardRow = {
  InterfaceLuid: 0,
  InterfaceIndex: 8,
  /** `IP_ADDRESS_PREFIX`: a `SOCKADDR_INET`, then the prefix length at +28. */
  DestinationPrefix: 12,
  DestinationPrefixLength: 40,
  NextHop: 44,
  SitePrefixLength: 72,
  ValidLifetime: 76,
  PreferredLifetime: 80,
  Metric: 84,
  Protocol: 88,
  Loopback: 92,
  AutoconfigureAddress: 93,
  Publish: 94,
  Immortal: 95,
  Age: 96,
  Origin: 100,
} as const;
/** `MIB_IPFORWARD_TABLE2`: `NumEntries`, then, 8-aligned, the rows. */
export const FORWARD_TABLE_ROWS_OFFSET = 8;

/** `NL_ROUTE_PROTOCOL` values by name (`nldef.h`); kconnect's routes are `MIB_IPPROTO_NETMGMT`. */
export const RouteProtocol: Readonly<Record<number, string>> = {
  1: "other",
  2: "local",
  3: "netmgmt",
  4: "icmp",
  8: "rip",
  13: "ospf",
  14: "bgp",
  19: "dhcp",
  10002: "nt_autostatic",
  10006: "nt_static",
  10007: "nt_static_non_dod",
};
/** `MIB_IPPROTO_NETMGMT`: a route set by management (static), as kconnect's are. */
export const MIB_IPPROTO_NETMGMT = 3;

/**
 * Writes `address` as a `SOCKADDR_INET` at `offset`: family, port 0, the address (IPv4 at +4,
 * IPv6 at +8). The 28 bytes are cleared first.
 */
export function writeSockaddrInet(row: Uint8Array, offset: number, address: Uint8Array): void {
  if (address.length !== 4 && address.length !== 16) {
    throw new RangeError(`SOCKADDR_INET needs a 4- or 16-byte address, not ${address.length}`);
  }
  row.fill(0, offset, offset + SOCKADDR_INET_SIZE);
  new DataView(row.buffer, row.byteOffset, row.byteLength)
    .setUint16(offset, address.length === 4 ? WIN_AF_INET : WIN_AF_INET6, true);
  row.set(address, offset + (address.length === 4 ? 4 : 8));
}

function readSockaddrInet(row: Uint8Array, offset: number): Uint8Array | null {
  const family = new DataView(row.buffer, row.byteOffset, row.byteLength).getUint16(offset, true);
  if (family === WIN_AF_INET) return row.slice(offset + 4, offset + 8);
  if (family === WIN_AF_INET6) return row.slice(offset + 8, offset + 24);
  return null;
}

/**
 * Fills an initialized (`InitializeIpForwardEntry`) row for an on-link route of `prefix` into
 * the interface `luid`: destination and prefix length, a next hop of the same family with the
 * all-zero address, metric 0 (the interface's metric counts), protocol `MIB_IPPROTO_NETMGMT`.
 * The same row deletes the route (`DeleteIpForwardEntry2` matches on LUID, prefix, next hop).
 *
 * @example
 * ```ts
 * import { Cidr } from "../wire/address.ts";
 * import { fillForwardRow, MIB_IPFORWARD_ROW2_SIZE } from "./windows_rows.ts";
 * const row = new Uint8Array(MIB_IPFORWARD_ROW2_SIZE);
 * fillForwardRow(row, { luid: 7n, prefix: Cidr.parse("10.96.0.0/12")! });
 * if (row[0] !== 7 || row[12] !== 2 || row[16] !== 10 || row[40] !== 12 || row[44] !== 2) {
 *   throw new Error();
 * }
 * ```
 */
export function fillForwardRow(row: Uint8Array, r: { luid: bigint; prefix: Cidr }): void {
  if (row.length !== MIB_IPFORWARD_ROW2_SIZE) {
    throw new RangeError(
      `MIB_IPFORWARD_ROW2 is ${MIB_IPFORWARD_ROW2_SIZE} bytes, not ${row.length}`,
    );
  }
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  view.setBigUint64(ForwardRow.InterfaceLuid, r.luid, true);
  writeSockaddrInet(row, ForwardRow.DestinationPrefix, r.prefix.address);
  row[ForwardRow.DestinationPrefixLength] = r.prefix.prefixLength;
  writeSockaddrInet(row, ForwardRow.NextHop, new Uint8Array(r.prefix.address.length));
  view.setUint32(ForwardRow.Metric, 0, true);
  view.setUint32(ForwardRow.Protocol, MIB_IPPROTO_NETMGMT, true);
}

/** What a listed `MIB_IPFORWARD_ROW2` says. */
export interface ForwardRowInfo {
  luid: bigint;
  prefix: Cidr;
  /** The next hop, or null when on-link (all zeros). */
  nextHop: Uint8Array | null;
  metric: number;
  protocol: number;
}

/** Reads a `MIB_IPFORWARD_ROW2`; null for a family other than IPv4 and IPv6. */
export function parseForwardRow(row: Uint8Array): ForwardRowInfo | null {
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  const dst = readSockaddrInet(row, ForwardRow.DestinationPrefix);
  if (dst === null) return null;
  const prefix = Cidr.from(dst, row[ForwardRow.DestinationPrefixLength]);
  if (prefix === null) return null;
  const hop = readSockaddrInet(row, ForwardRow.NextHop);
  return {
    luid: view.getBigUint64(ForwardRow.InterfaceLuid, true),
    prefix,
    nextHop: hop !== null && hop.some((b) => b !== 0) ? hop : null,
    metric: view.getUint32(ForwardRow.Metric, true),
    protocol: view.getUint32(ForwardRow.Protocol, true),
  };
}
