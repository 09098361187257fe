/**
 * The native symbols of the Windows TUN driver: `wintun.dll` (Wintun 0.14.1, `api/wintun.h`),
 * `kernel32.dll` (last error, the read wait, the close wake-up) and the part of `iphlpapi.dll`
 * that configures the adapter (addresses, MTU). Tables only: nothing is opened when this module
 * loads, so it imports on every OS and `deno check` covers it everywhere. The driver
 * (`windows.ts`) takes the symbols objects these tables type, so a test fake typed the same way
 * stays in step with the real tables.
 *
 * Windows x64 has one calling convention and none of these functions is variadic. Handles and
 * `BYTE*` results are `"pointer"`, strings are NUL-terminated UTF-16LE passed as `"buffer"`,
 * `DWORD`/`NETIO_STATUS` are `"u32"`, `BOOL` is `"i32"`.
 *
 * @module
 */

import { win32ErrorName } from "../host/win32_errors.ts";

/** `wintun.dll` 0.14.1, the functions kconnect uses. */
export const WINTUN_SYMBOLS = {
  /** `WINTUN_ADAPTER_HANDLE WintunCreateAdapter(LPCWSTR Name, LPCWSTR TunnelType, const GUID *RequestedGUID)` */
  WintunCreateAdapter: { parameters: ["buffer", "buffer", "buffer"], result: "pointer" },
  /** `WINTUN_ADAPTER_HANDLE WintunOpenAdapter(LPCWSTR Name)` */
  WintunOpenAdapter: { parameters: ["buffer"], result: "pointer" },
  /** `void WintunCloseAdapter(WINTUN_ADAPTER_HANDLE)`: removes an adapter Create made. */
  WintunCloseAdapter: { parameters: ["pointer"], result: "void" },
  /** `void WintunGetAdapterLUID(WINTUN_ADAPTER_HANDLE, NET_LUID *Luid)` */
  WintunGetAdapterLUID: { parameters: ["pointer", "buffer"], result: "void" },
  /** `DWORD WintunGetRunningDriverVersion(void)`: 0 (and a last error) when none runs. */
  WintunGetRunningDriverVersion: { parameters: [], result: "u32" },
  /** `WINTUN_SESSION_HANDLE WintunStartSession(WINTUN_ADAPTER_HANDLE, DWORD Capacity)` */
  WintunStartSession: { parameters: ["pointer", "u32"], result: "pointer" },
  /** `void WintunEndSession(WINTUN_SESSION_HANDLE)` */
  WintunEndSession: { parameters: ["pointer"], result: "void" },
  /** `HANDLE WintunGetReadWaitEvent(WINTUN_SESSION_HANDLE)`: never `CloseHandle` it. */
  WintunGetReadWaitEvent: { parameters: ["pointer"], result: "pointer" },
  /** `BYTE *WintunReceivePacket(WINTUN_SESSION_HANDLE, DWORD *PacketSize)` */
  WintunReceivePacket: { parameters: ["pointer", "buffer"], result: "pointer" },
  /** `void WintunReleaseReceivePacket(WINTUN_SESSION_HANDLE, const BYTE *Packet)` */
  WintunReleaseReceivePacket: { parameters: ["pointer", "pointer"], result: "void" },
  /** `BYTE *WintunAllocateSendPacket(WINTUN_SESSION_HANDLE, DWORD PacketSize)` */
  WintunAllocateSendPacket: { parameters: ["pointer", "u32"], result: "pointer" },
  /** `void WintunSendPacket(WINTUN_SESSION_HANDLE, const BYTE *Packet)` */
  WintunSendPacket: { parameters: ["pointer", "pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `kernel32.dll`, synchronous calls (on the JavaScript thread). */
export const KERNEL32_SYMBOLS = {
  /** `DWORD GetLastError(void)`: read right after the failing call, nothing in between. */
  GetLastError: { parameters: [], result: "u32" },
  /** `BOOL SetEvent(HANDLE)`: wakes a read waiting on the session's event (close). */
  SetEvent: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `kernel32.dll`, the wait, which runs on a worker thread so the event loop stays free. */
export const KERNEL32_ASYNC_SYMBOLS = {
  /** `DWORD WaitForSingleObject(HANDLE, DWORD Milliseconds)` */
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** `iphlpapi.dll`, what the driver needs to give the adapter its addresses and MTU. */
export const IPHLPAPI_INTERFACE_SYMBOLS = {
  /** `void InitializeUnicastIpAddressEntry(PMIB_UNICASTIPADDRESS_ROW)` */
  InitializeUnicastIpAddressEntry: { parameters: ["buffer"], result: "void" },
  /** `NETIO_STATUS CreateUnicastIpAddressEntry(const MIB_UNICASTIPADDRESS_ROW *)` */
  CreateUnicastIpAddressEntry: { parameters: ["buffer"], result: "u32" },
  /** `void InitializeIpInterfaceEntry(PMIB_IPINTERFACE_ROW)` */
  InitializeIpInterfaceEntry: { parameters: ["buffer"], result: "void" },
  /** `NETIO_STATUS GetIpInterfaceEntry(PMIB_IPINTERFACE_ROW)` */
  GetIpInterfaceEntry: { parameters: ["buffer"], result: "u32" },
  /** `NETIO_STATUS SetIpInterfaceEntry(PMIB_IPINTERFACE_ROW)` */
  SetIpInterfaceEntry: { parameters: ["buffer"], result: "u32" },
  /** `NETIO_STATUS GetUnicastIpAddressTable(ADDRESS_FAMILY, PMIB_UNICASTIPADDRESS_TABLE *)` */
  GetUnicastIpAddressTable: { parameters: ["u16", "buffer"], result: "u32" },
  /** `NETIO_STATUS DeleteUnicastIpAddressEntry(const MIB_UNICASTIPADDRESS_ROW *)` */
  DeleteUnicastIpAddressEntry: { parameters: ["buffer"], result: "u32" },
  /** `void FreeMibTable(PVOID)` */
  FreeMibTable: { parameters: ["pointer"], result: "void" },
  /** `NETIO_STATUS ConvertInterfaceLuidToAlias(const NET_LUID *, PWSTR, SIZE_T Length)` */
  ConvertInterfaceLuidToAlias: { parameters: ["buffer", "buffer", "usize"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The Wintun functions, as `Deno.dlopen` returns them (or a fake typed the same). */
export type WintunSymbols = Deno.DynamicLibrary<typeof WINTUN_SYMBOLS>["symbols"];
/** The synchronous kernel32 functions. */
export type Kernel32Symbols = Deno.DynamicLibrary<typeof KERNEL32_SYMBOLS>["symbols"];
/** The asynchronous kernel32 functions (each returns a promise). */
export type Kernel32AsyncSymbols = Deno.DynamicLibrary<typeof KERNEL32_ASYNC_SYMBOLS>["symbols"];
/** The iphlpapi functions the driver uses for addresses and MTU. */
export type IphlpapiInterfaceSymbols = Deno.DynamicLibrary<
  typeof IPHLPAPI_INTERFACE_SYMBOLS
>["symbols"];

/** Win32 error codes the driver tells apart (`winerror.h`). */
export const WinError = {
  ERROR_SUCCESS: 0,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_DATA: 13,
  ERROR_HANDLE_EOF: 38,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_BUFFER_OVERFLOW: 111,
  ERROR_ALREADY_EXISTS: 183,
  ERROR_NO_MORE_ITEMS: 259,
  ERROR_NOT_FOUND: 1168,
  ERROR_OBJECT_ALREADY_EXISTS: 5010,
} as const;

/** `WaitForSingleObject` results. */
export const WAIT_OBJECT_0 = 0;
/** The wait timed out. */
export const WAIT_TIMEOUT = 0x102;
/** The wait failed (bad handle). */
export const WAIT_FAILED = 0xffffffff;

/** The symbolic name of a Win32 error code, e.g. `ERROR_HANDLE_EOF`, or `error <n>`. */
export const winErrorName: (code: number) => string = win32ErrorName;

/**
 * Returns `text` as a NUL-terminated UTF-16LE string for an `LPCWSTR` `"buffer"` parameter.
 *
 * @example
 * ```ts
 * import { wideString } from "./wintun_symbols.ts";
 * const w = wideString("kc");
 * if (w.length !== 3 || w[0] !== 0x6b || w[2] !== 0) throw new Error();
 * ```
 */
export function wideString(text: string): Uint16Array {
  const out = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Returns the 16 bytes of a Windows `GUID` (`Data1` u32, `Data2` u16, `Data3` u16 little-endian,
 * then `Data4` as 8 bytes) for its textual form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
 *
 * @example
 * ```ts
 * import { guidBytes } from "./wintun_symbols.ts";
 * const g = guidBytes("00112233-4455-6677-8899-aabbccddeeff");
 * if (g[0] !== 0x33 || g[4] !== 0x55 || g[6] !== 0x77 || g[8] !== 0x88) throw new Error();
 * ```
 */
export function guidBytes(text: string): Uint8Array {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (m === null) throw new TypeError(`Not a GUID: ${JSON.stringify(text)}`);
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setUint32(0, parseInt(m[1], 16), true);
  view.setUint16(4, parseInt(m[2], 16), true);
  view.setUint16(6, parseInt(m[3], 16), true);
  const tail = m[4] + m[5];
  for (let i = 0; i < 8; i++) out[8 + i] = parseInt(tail.slice(i * 2, i * 2 + 2), 16);
  return out;
}
