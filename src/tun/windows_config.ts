/**
 * Gives the Wintun adapter its MTU and addresses through iphlpapi. Private to the Windows
 * driver; the symbols come in, so tests drive it with a fake.
 *
 * The adapter keeps kconnect's fixed GUID from run to run, and Windows keeps unicast addresses
 * per interface, so addresses an earlier run left on the adapter are removed first (as
 * wireguard-windows flushes them), then the wanted ones are added.
 *
 * @module
 */
import type { ParsedAddress } from "./_linux_config.ts";
import { type IphlpapiInterfaceSymbols, WinError, winErrorName } from "./wintun_symbols.ts";
import {
  fillUnicastAddressRow,
  keyInterfaceRow,
  MIB_IPINTERFACE_ROW_SIZE,
  MIB_UNICASTIPADDRESS_ROW_SIZE,
  setInterfaceRowMtu,
  UNICAST_TABLE_ROWS_OFFSET,
  unicastRowLuid,
  WIN_AF_INET,
  WIN_AF_INET6,
} from "./windows_rows.ts";

/** A failed Win32 / NETIO call: the action, the code's name, and a hint. */
export interface WinErrorInfo extends Error {
  /** The symbolic code, e.g. `ERROR_ACCESS_DENIED`, or `error <n>`. */
  code: string;
  /** The numeric Win32 error. */
  winError: number;
}

/**
 * Builds the error for a failed Win32 call, a `Deno.errors` class by meaning.
 *
 * @param action What was being done, e.g. `"WintunCreateAdapter kconnect"`.
 * @param code The Win32 error code.
 * @param hint What the user can do, appended after a dash.
 */
export function winError(action: string, code: number, hint?: string): WinErrorInfo {
  const name = winErrorName(code);
  const message = `${action}: ${name}${hint ? ` — ${hint}` : ""}`;
  let error: Error;
  switch (code) {
    case WinError.ERROR_ACCESS_DENIED:
      error = new Deno.errors.PermissionDenied(message);
      break;
    case WinError.ERROR_FILE_NOT_FOUND:
    case WinError.ERROR_NOT_FOUND:
      error = new Deno.errors.NotFound(message);
      break;
    case WinError.ERROR_ALREADY_EXISTS:
    case WinError.ERROR_OBJECT_ALREADY_EXISTS:
      error = new Deno.errors.AlreadyExists(message);
      break;
    case WinError.ERROR_INVALID_PARAMETER:
      error = new TypeError(message);
      break;
    default:
      error = new Error(message);
  }
  return Object.assign(error, { code: name, winError: code });
}

/** Removes every unicast address of `family` on the adapter `luid` (one run's leftovers). */
export function flushAddresses(ip: IphlpapiInterfaceSymbols, luid: bigint, family: 4 | 6): void {
  const out = new BigUint64Array(1);
  const status = ip.GetUnicastIpAddressTable(family === 4 ? WIN_AF_INET : WIN_AF_INET6, out);
  if (status === WinError.ERROR_NOT_FOUND) return; // no address of that family anywhere
  if (status !== 0) throw winError("GetUnicastIpAddressTable", status);
  const table = Deno.UnsafePointer.create(out[0]);
  if (table === null) return;
  try {
    const view = new Deno.UnsafePointerView(table);
    const count = view.getUint32(0);
    const row = new Uint8Array(MIB_UNICASTIPADDRESS_ROW_SIZE);
    for (let i = 0; i < count; i++) {
      view.copyInto(row, UNICAST_TABLE_ROWS_OFFSET + i * MIB_UNICASTIPADDRESS_ROW_SIZE);
      if (unicastRowLuid(row) !== luid) continue;
      const s = ip.DeleteUnicastIpAddressEntry(row);
      if (s !== 0 && s !== WinError.ERROR_NOT_FOUND) {
        throw winError("DeleteUnicastIpAddressEntry (an old address of the adapter)", s);
      }
    }
  } finally {
    ip.FreeMibTable(table);
  }
}

/** Sets the adapter's MTU for one family (`GetIpInterfaceEntry`, then `SetIpInterfaceEntry`). */
export function setMtu(
  ip: IphlpapiInterfaceSymbols,
  luid: bigint,
  family: 4 | 6,
  mtu: number,
): void {
  const row = new Uint8Array(MIB_IPINTERFACE_ROW_SIZE);
  ip.InitializeIpInterfaceEntry(row);
  keyInterfaceRow(row, family, luid);
  let s = ip.GetIpInterfaceEntry(row);
  if (s !== 0) throw winError(`GetIpInterfaceEntry (IPv${family})`, s);
  setInterfaceRowMtu(row, mtu);
  s = ip.SetIpInterfaceEntry(row);
  if (s !== 0) throw winError(`SetIpInterfaceEntry MTU ${mtu} (IPv${family})`, s);
}

/** Adds one unicast address; one that is there already is fine. */
export function addAddress(ip: IphlpapiInterfaceSymbols, luid: bigint, a: ParsedAddress): void {
  const row = new Uint8Array(MIB_UNICASTIPADDRESS_ROW_SIZE);
  ip.InitializeUnicastIpAddressEntry(row);
  fillUnicastAddressRow(row, { luid, address: a.bytes, prefixLength: a.prefixLength });
  const s = ip.CreateUnicastIpAddressEntry(row);
  if (s !== 0 && s !== WinError.ERROR_OBJECT_ALREADY_EXISTS) {
    throw winError(`CreateUnicastIpAddressEntry ${a.text}/${a.prefixLength}`, s);
  }
}

/**
 * Configures the adapter: old addresses out, the IPv4 MTU (and the IPv6 one when an IPv6
 * address is wanted), then the addresses.
 */
export function configureAdapter(
  ip: IphlpapiInterfaceSymbols,
  luid: bigint,
  mtu: number,
  addresses: ParsedAddress[],
): void {
  const v6 = addresses.some((a) => a.bytes.length === 16);
  flushAddresses(ip, luid, 4);
  flushAddresses(ip, luid, 6);
  setMtu(ip, luid, 4, mtu);
  if (v6) setMtu(ip, luid, 6, mtu);
  for (const a of addresses) addAddress(ip, luid, a);
}

/**
 * The interface alias Windows gave the adapter (the name `netsh`, `Get-NetAdapter` and
 * `ConvertInterfaceAliasToLuid` know it by), or null when it cannot be read. It is the name
 * asked for unless Windows had to make it unique (`kconnect 2`).
 */
export function adapterAlias(ip: IphlpapiInterfaceSymbols, luid: bigint): string | null {
  const buf = new Uint16Array(257); // IF_MAX_STRING_SIZE + 1
  if (ip.ConvertInterfaceLuidToAlias(new BigUint64Array([luid]), buf, 257n) !== 0) return null;
  const end = buf.indexOf(0);
  return end <= 0 ? null : String.fromCharCode(...buf.subarray(0, end));
}
