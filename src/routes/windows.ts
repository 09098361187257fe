/**
 * Routes on Windows, through iphlpapi (`CreateIpForwardEntry2`, `DeleteIpForwardEntry2`,
 * `GetIpForwardTable2`): the same three functions as `linux.ts` and `darwin.ts`, for the OS
 * switch `routes.ts`, which owns the journal kind and its undo. Routes go on-link into the
 * adapter named `dev` (found with `ConvertInterfaceAliasToLuid`); they go when the adapter
 * goes.
 *
 * {@linkcode windowsRoutes} builds the same functions on any iphlpapi symbols object, so tests
 * drive them with a fake.
 *
 * @module
 */
import { Cidr, formatAddress } from "../wire/address.ts";
import type { RouteEntry } from "./linux.ts";
import { iphlpapiRoutes, type IphlpapiRouteSymbols, RouteStatus } from "./windows_symbols.ts";
import {
  fillForwardRow,
  FORWARD_TABLE_ROWS_OFFSET,
  MIB_IPFORWARD_ROW2_SIZE,
  parseForwardRow,
  RouteProtocol,
  WIN_AF_INET,
  WIN_AF_INET6,
} from "./windows_rows.ts";

export type { RouteEntry };

/** `IF_MAX_STRING_SIZE + 1`: room for an interface alias, in UTF-16 units. */
const ALIAS_CHARS = 257;

/** The route functions, on one iphlpapi binding. */
export interface WindowsRoutes {
  /** Routes `cidr` into `dev`. Fails if the same route exists already. */
  addRoute(cidr: Cidr, dev: string): Promise<void>;
  /** Removes the route to `cidr` through `dev`; a route (or device) already gone is not an error. */
  deleteRoute(cidr: Cidr, dev: string): Promise<void>;
  /** The machine's routes of one family. */
  listRoutes(family: 4 | 6): Promise<RouteEntry[]>;
}

function wide(text: string): Uint16Array {
  const out = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function statusError(action: string, status: number): Error {
  const name = Object.entries(RouteStatus).find(([, v]) => v === status)?.[0] ??
    `error ${status}`;
  const message = `${action}: ${name}`;
  switch (status) {
    case RouteStatus.ERROR_ACCESS_DENIED:
      return new Deno.errors.PermissionDenied(`${message} — run as administrator`);
    case RouteStatus.ERROR_OBJECT_ALREADY_EXISTS:
      return new Deno.errors.AlreadyExists(message);
    case RouteStatus.ERROR_NOT_FOUND:
    case RouteStatus.ERROR_FILE_NOT_FOUND:
      return new Deno.errors.NotFound(message);
    default:
      return new Error(message);
  }
}

/** Builds the route functions on `symbols` (called on first use of each function). */
export function windowsRoutes(symbols: () => IphlpapiRouteSymbols): WindowsRoutes {
  const luidOf = (dev: string): bigint => {
    const out = new BigUint64Array(1);
    const s = symbols().ConvertInterfaceAliasToLuid(wide(dev), out);
    if (s !== 0) throw statusError(`ConvertInterfaceAliasToLuid ${JSON.stringify(dev)}`, s);
    return out[0];
  };
  const aliasOf = (luid: bigint): string | undefined => {
    const buf = new Uint16Array(ALIAS_CHARS);
    if (
      symbols().ConvertInterfaceLuidToAlias(
        new BigUint64Array([luid]),
        buf,
        BigInt(ALIAS_CHARS),
      ) !== 0
    ) {
      return undefined;
    }
    const end = buf.indexOf(0);
    return String.fromCharCode(...buf.subarray(0, end < 0 ? buf.length : end));
  };
  const row = (cidr: Cidr, luid: bigint): Uint8Array => {
    const r = new Uint8Array(MIB_IPFORWARD_ROW2_SIZE);
    symbols().InitializeIpForwardEntry(r);
    fillForwardRow(r, { luid, prefix: cidr });
    return r;
  };
  return {
    addRoute(cidr, dev) {
      try {
        const s = symbols().CreateIpForwardEntry2(row(cidr, luidOf(dev)));
        if (s !== 0) throw statusError(`CreateIpForwardEntry2 ${cidr} dev ${dev}`, s);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    },
    deleteRoute(cidr, dev) {
      try {
        let luid: bigint;
        try {
          luid = luidOf(dev);
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) return Promise.resolve(); // device gone
          throw err;
        }
        const s = symbols().DeleteIpForwardEntry2(row(cidr, luid));
        if (
          s !== 0 && s !== RouteStatus.ERROR_NOT_FOUND && s !== RouteStatus.ERROR_FILE_NOT_FOUND
        ) {
          throw statusError(`DeleteIpForwardEntry2 ${cidr} dev ${dev}`, s);
        }
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    },
    listRoutes(family) {
      try {
        return Promise.resolve(list(family));
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };

  function list(family: 4 | 6): RouteEntry[] {
    const ip = symbols();
    const out = new BigUint64Array(1);
    const s = ip.GetIpForwardTable2(family === 4 ? WIN_AF_INET : WIN_AF_INET6, out);
    if (s === RouteStatus.ERROR_NOT_FOUND) return [];
    if (s !== 0) throw statusError(`GetIpForwardTable2 (IPv${family})`, s);
    const table = Deno.UnsafePointer.create(out[0]);
    if (table === null) return [];
    const entries: RouteEntry[] = [];
    const aliases = new Map<bigint, string | undefined>();
    try {
      const view = new Deno.UnsafePointerView(table);
      const count = view.getUint32(0);
      const r = new Uint8Array(MIB_IPFORWARD_ROW2_SIZE);
      for (let i = 0; i < count; i++) {
        view.copyInto(r, FORWARD_TABLE_ROWS_OFFSET + i * MIB_IPFORWARD_ROW2_SIZE);
        const info = parseForwardRow(r);
        if (info === null) continue;
        if (!aliases.has(info.luid)) aliases.set(info.luid, aliasOf(info.luid));
        entries.push(routeEntry(info, aliases.get(info.luid)));
      }
    } finally {
      ip.FreeMibTable(table);
    }
    return entries;
  }
}

const MULTICAST: Cidr[] = [Cidr.parse("224.0.0.0/4")!, Cidr.parse("ff00::/8")!];

/** A listed row as `ip -j route` would say it (`dst`, `dev`, `gateway`, `protocol`, `type`). */
function routeEntry(
  info: NonNullable<ReturnType<typeof parseForwardRow>>,
  dev: string | undefined,
): RouteEntry {
  const p = info.prefix;
  const max = p.address.length * 8;
  const dst = p.prefixLength === 0
    ? "default"
    : p.prefixLength === max
    ? formatAddress(p.address)
    : p.toString();
  const e: RouteEntry & { type?: string; metric?: number } = { dst };
  if (dev !== undefined) e.dev = dev;
  if (info.nextHop !== null) e.gateway = formatAddress(info.nextHop);
  e.protocol = RouteProtocol[info.protocol] ?? String(info.protocol);
  e.metric = info.metric;
  if (MULTICAST.some((m) => m.overlaps(p) && m.prefixLength <= p.prefixLength)) {
    e.type = "multicast";
  } else if (p.prefixLength === 32 && p.address.every((b) => b === 255)) e.type = "broadcast";
  return e;
}

const real = windowsRoutes(iphlpapiRoutes);

/** Routes `cidr` into the adapter `dev`. Fails if the same route exists already. */
export function addRoute(cidr: Cidr, dev: string): Promise<void> {
  return real.addRoute(cidr, dev);
}

/** Removes the route to `cidr` through `dev`; a route already gone is not an error. */
export function deleteRoute(cidr: Cidr, dev: string): Promise<void> {
  return real.deleteRoute(cidr, dev);
}

/** The machine's routes of one family. */
export function listRoutes(family: 4 | 6): Promise<RouteEntry[]> {
  return real.listRoutes(family);
}
