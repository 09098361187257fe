/**
 * The iphlpapi rows the Windows driver fills to give its adapter addresses and an MTU:
 * `SOCKADDR_INET`, `MIB_UNICASTIPADDRESS_ROW` and `MIB_IPINTERFACE_ROW` (`netioapi.h`, x64).
 * Sizes and offsets are those of `../shared/platform-notes.md` §C.4, which a mingw-w64 layout
 * program confirms (`windows_rows_test.ts` compiles one when the cross compiler is there).
 *
 * Every row is first given to its `Initialize*Entry` function, which writes Windows' defaults;
 * the fill functions here then set only the fields kconnect decides.
 *
 * @module
 */

/** `AF_INET` on Windows. */
export const WIN_AF_INET = 2;
/** `AF_INET6` on Windows (not Linux's 10). */
export const WIN_AF_INET6 = 23;

/** `sizeof(SOCKADDR_INET)`. */
export const SOCKADDR_INET_SIZE = 28;

/** `sizeof(MIB_UNICASTIPADDRESS_ROW)`. */
export const MIB_UNICASTIPADDRESS_ROW_SIZE = 80;
/** Field offsets of `MIB_UNICASTIPADDRESS_ROW`. */
export const UnicastRow = {
  Address: 0,
  InterfaceLuid: 32,
  InterfaceIndex: 40,
  PrefixOrigin: 44,
  SuffixOrigin: 48,
  ValidLifetime: 52,
  PreferredLifetime: 56,
  OnLinkPrefixLength: 60,
  SkipAsSource: 61,
  DadState: 64,
  ScopeId: 68,
  CreationTimeStamp: 72,
} as const;

/** `sizeof(MIB_IPINTERFACE_ROW)`. */
export const MIB_IPINTERFACE_ROW_SIZE = 168;
/** Field offsets of `MIB_IPINTERFACE_ROW` that kconnect touches. */
export const InterfaceRow = {
  Family: 0,
  InterfaceLuid: 8,
  InterfaceIndex: 16,
  SitePrefixLength: 144,
  Metric: 148,
  NlMtu: 152,
} as const;

/** `MIB_UNICASTIPADDRESS_TABLE`: `NumEntries` then, 8-aligned, the rows. */
export const UNICAST_TABLE_ROWS_OFFSET = 8;

/** `NL_DAD_STATE.IpDadStatePreferred`: the address is usable at once (no DAD on a TUN). */
export const IP_DAD_STATE_PREFERRED = 4;
/** A lifetime that never ends. */
export const INFINITE_LIFETIME = 0xffffffff;

/**
 * Writes `address` (4 or 16 bytes) as a `SOCKADDR_INET` at `offset` of `row`: family, port 0,
 * the address (IPv4 at +4, IPv6 at +8, flow info and scope id 0). The 28 bytes are cleared first.
 *
 * @example
 * ```ts
 * import { writeSockaddrInet } from "./windows_rows.ts";
 * const b = new Uint8Array(28);
 * writeSockaddrInet(b, 0, new Uint8Array([10, 0, 0, 1]));
 * if (b[0] !== 2 || b[4] !== 10 || b[7] !== 1) throw new Error();
 * ```
 */
export function writeSockaddrInet(row: Uint8Array, offset: number, address: Uint8Array): void {
  if (address.length !== 4 && address.length !== 16) {
    throw new RangeError(`SOCKADDR_INET needs a 4- or 16-byte address, not ${address.length}`);
  }
  row.fill(0, offset, offset + SOCKADDR_INET_SIZE);
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  view.setUint16(offset, address.length === 4 ? WIN_AF_INET : WIN_AF_INET6, true);
  row.set(address, offset + (address.length === 4 ? 4 : 8));
}

/**
 * Reads the address of a `SOCKADDR_INET` at `offset`: 4 or 16 bytes, or null for another family.
 */
export function readSockaddrInet(row: Uint8Array, offset: number): Uint8Array | null {
  const family = new DataView(row.buffer, row.byteOffset, row.byteLength).getUint16(offset, true);
  if (family === WIN_AF_INET) return row.slice(offset + 4, offset + 8);
  if (family === WIN_AF_INET6) return row.slice(offset + 8, offset + 24);
  return null;
}

/**
 * Fills an initialized `MIB_UNICASTIPADDRESS_ROW` for `CreateUnicastIpAddressEntry`: the
 * address, the adapter's LUID, the on-link prefix length, DAD state "preferred" and infinite
 * lifetimes (as wireguard-windows does). Other fields keep what `Initialize…` wrote.
 *
 * @example
 * ```ts
 * import { fillUnicastAddressRow, MIB_UNICASTIPADDRESS_ROW_SIZE } from "./windows_rows.ts";
 * const row = new Uint8Array(MIB_UNICASTIPADDRESS_ROW_SIZE);
 * fillUnicastAddressRow(row, { luid: 1n, address: new Uint8Array([198, 18, 0, 1]), prefixLength: 30 });
 * if (row[32] !== 1 || row[60] !== 30 || row[64] !== 4) throw new Error();
 * ```
 */
export function fillUnicastAddressRow(
  row: Uint8Array,
  a: { luid: bigint; address: Uint8Array; prefixLength: number },
): void {
  checkRow(row, MIB_UNICASTIPADDRESS_ROW_SIZE, "MIB_UNICASTIPADDRESS_ROW");
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  writeSockaddrInet(row, UnicastRow.Address, a.address);
  view.setBigUint64(UnicastRow.InterfaceLuid, a.luid, true);
  view.setUint32(UnicastRow.ValidLifetime, INFINITE_LIFETIME, true);
  view.setUint32(UnicastRow.PreferredLifetime, INFINITE_LIFETIME, true);
  row[UnicastRow.OnLinkPrefixLength] = a.prefixLength;
  view.setUint32(UnicastRow.DadState, IP_DAD_STATE_PREFERRED, true);
}

/**
 * Sets the key of a `MIB_IPINTERFACE_ROW` (after `InitializeIpInterfaceEntry`, before
 * `GetIpInterfaceEntry`): the family and the adapter's LUID.
 */
export function keyInterfaceRow(row: Uint8Array, family: 4 | 6, luid: bigint): void {
  checkRow(row, MIB_IPINTERFACE_ROW_SIZE, "MIB_IPINTERFACE_ROW");
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  view.setUint16(InterfaceRow.Family, family === 4 ? WIN_AF_INET : WIN_AF_INET6, true);
  view.setBigUint64(InterfaceRow.InterfaceLuid, luid, true);
}

/**
 * Sets the MTU in a `MIB_IPINTERFACE_ROW` that `GetIpInterfaceEntry` filled, for
 * `SetIpInterfaceEntry`; for IPv4, `SitePrefixLength` must be 0 or the call fails
 * (wireguard-windows does the same).
 */
export function setInterfaceRowMtu(row: Uint8Array, mtu: number): void {
  checkRow(row, MIB_IPINTERFACE_ROW_SIZE, "MIB_IPINTERFACE_ROW");
  const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
  view.setUint32(InterfaceRow.NlMtu, mtu, true);
  if (view.getUint16(InterfaceRow.Family, true) === WIN_AF_INET) {
    view.setUint32(InterfaceRow.SitePrefixLength, 0, true);
  }
}

/** The LUID of a row in a `MIB_UNICASTIPADDRESS_TABLE` (for the flush of old addresses). */
export function unicastRowLuid(row: Uint8Array): bigint {
  return new DataView(row.buffer, row.byteOffset, row.byteLength)
    .getBigUint64(UnicastRow.InterfaceLuid, true);
}

function checkRow(row: Uint8Array, size: number, what: string): void {
  if (row.length !== size) throw new RangeError(`${what} is ${size} bytes, not ${row.length}`);
}
