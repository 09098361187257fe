/**
 * The `iphlpapi.dll` functions the Windows routes use, as a table: nothing is opened when this
 * module loads, so it imports (and `deno check`s) on every OS. `windows.ts` takes the symbols
 * object this table types, so a test fake typed the same stays in step with it.
 *
 * `NETIO_STATUS` is a `u32` returned directly; rows and out-pointers are `"buffer"`s; a table
 * iphlpapi allocated is a `"pointer"` given back to `FreeMibTable`.
 *
 * @module
 */

/** The route functions of iphlpapi. */
export const IPHLPAPI_ROUTE_SYMBOLS = {
  /** `void InitializeIpForwardEntry(PMIB_IPFORWARD_ROW2)` */
  InitializeIpForwardEntry: { parameters: ["buffer"], result: "void" },
  /** `NETIO_STATUS CreateIpForwardEntry2(const MIB_IPFORWARD_ROW2 *)` */
  CreateIpForwardEntry2: { parameters: ["buffer"], result: "u32" },
  /** `NETIO_STATUS DeleteIpForwardEntry2(const MIB_IPFORWARD_ROW2 *)` */
  DeleteIpForwardEntry2: { parameters: ["buffer"], result: "u32" },
  /** `NETIO_STATUS GetIpForwardTable2(ADDRESS_FAMILY, PMIB_IPFORWARD_TABLE2 *)` */
  GetIpForwardTable2: { parameters: ["u16", "buffer"], result: "u32" },
  /** `void FreeMibTable(PVOID)` */
  FreeMibTable: { parameters: ["pointer"], result: "void" },
  /** `NETIO_STATUS ConvertInterfaceAliasToLuid(const WCHAR *, PNET_LUID)` */
  ConvertInterfaceAliasToLuid: { parameters: ["buffer", "buffer"], result: "u32" },
  /** `NETIO_STATUS ConvertInterfaceLuidToAlias(const NET_LUID *, PWSTR, SIZE_T Length)` */
  ConvertInterfaceLuidToAlias: { parameters: ["buffer", "buffer", "usize"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The route functions, as `Deno.dlopen` returns them (or a fake typed the same). */
export type IphlpapiRouteSymbols = Deno.DynamicLibrary<typeof IPHLPAPI_ROUTE_SYMBOLS>["symbols"];

/** NETIO / Win32 status codes the routes tell apart. */
export const RouteStatus = {
  OK: 0,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_NOT_FOUND: 1168,
  ERROR_OBJECT_ALREADY_EXISTS: 5010,
} as const;

let loaded: IphlpapiRouteSymbols | undefined;

/** Opens `iphlpapi.dll` (from the system directory) on first use; Windows only. */
export function iphlpapiRoutes(): IphlpapiRouteSymbols {
  if (loaded === undefined) {
    if (Deno.build.os !== "windows") {
      throw new Error(`Windows routes: iphlpapi exists on Windows only, not ${Deno.build.os}`);
    }
    loaded = Deno.dlopen("iphlpapi.dll", IPHLPAPI_ROUTE_SYMBOLS).symbols;
  }
  return loaded;
}
