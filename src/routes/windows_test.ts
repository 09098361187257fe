/**
 * Windows routes: the `MIB_IPFORWARD_ROW2` bytes (golden), and `addRoute`/`deleteRoute`/
 * `listRoutes` and the journal undo driven through a fake iphlpapi that keeps a route table.
 * Whether Windows accepts the rows is only checked on Windows.
 */
import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import {
  fillForwardRow,
  ForwardRow,
  MIB_IPFORWARD_ROW2_SIZE,
  parseForwardRow,
} from "./windows_rows.ts";
import { type IphlpapiRouteSymbols, RouteStatus } from "./windows_symbols.ts";
import * as windowsModule from "./windows.ts";
import { type RouteEntry, windowsRoutes } from "./windows.ts";

const LUID = 0x0035000001000000n; // IfType 53 (virtual), NetLuidIndex 1
const OTHER = 0x0006000002000000n; // an Ethernet adapter

function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return new Uint8Array(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

function bytesOf(b: AllowSharedBufferSource | null): Uint8Array {
  if (b === null) throw new TypeError("NULL");
  return ArrayBuffer.isView(b)
    ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
    : new Uint8Array(b);
}

/** The defaults the fake's InitializeIpForwardEntry writes (what Windows documents). */
function initialize(row: Uint8Array): void {
  row.fill(0);
  const v = new DataView(row.buffer, row.byteOffset, row.byteLength);
  v.setUint32(ForwardRow.ValidLifetime, 0xffffffff, true);
  v.setUint32(ForwardRow.PreferredLifetime, 0xffffffff, true);
  v.setUint32(ForwardRow.Metric, 0xffffffff, true);
  row[ForwardRow.Loopback] = 1;
  row[ForwardRow.AutoconfigureAddress] = 1;
  row[ForwardRow.Immortal] = 1;
}

// deno-fmt-ignore
const GOLDEN_V4 = hex(`
  00 00 00 01 00 00 35 00   # InterfaceLuid
  00 00 00 00               # InterfaceIndex (Windows fills it from the LUID)
  02 00 00 00 0a 60 00 00   # DestinationPrefix.Prefix: AF_INET, port 0, 10.96.0.0
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  0c 00 00 00               # PrefixLength 12, padding
  02 00 00 00 00 00 00 00   # NextHop: AF_INET, 0.0.0.0 (on-link)
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00               # SitePrefixLength, padding
  ff ff ff ff ff ff ff ff   # ValidLifetime, PreferredLifetime (initialized: infinite)
  00 00 00 00               # Metric 0
  03 00 00 00               # Protocol MIB_IPPROTO_NETMGMT
  01 01 00 01               # Loopback, AutoconfigureAddress, Publish, Immortal (initialized)
  00 00 00 00 00 00 00 00   # Age, Origin
`);

// deno-fmt-ignore
const GOLDEN_V6 = hex(`
  00 00 00 01 00 00 35 00   # InterfaceLuid
  00 00 00 00               # InterfaceIndex
  17 00 00 00 00 00 00 00   # DestinationPrefix.Prefix: AF_INET6 (23), port 0, flow info 0
  fd 00 6b 63 00 01 00 00 00 00 00 00 00 00 00 00   # fd00:6b63:1::
  00 00 00 00               # scope id
  30 00 00 00               # PrefixLength 48, padding
  17 00 00 00 00 00 00 00   # NextHop: AF_INET6, ::
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00
  ff ff ff ff ff ff ff ff
  00 00 00 00
  03 00 00 00
  01 01 00 01
  00 00 00 00 00 00 00 00
`);

Deno.test("fillForwardRow() writes MIB_IPFORWARD_ROW2 byte for byte (golden, IPv4 and IPv6)", () => {
  assert.equal(GOLDEN_V4.length, MIB_IPFORWARD_ROW2_SIZE);
  assert.equal(GOLDEN_V6.length, MIB_IPFORWARD_ROW2_SIZE);
  const row = new Uint8Array(MIB_IPFORWARD_ROW2_SIZE);
  initialize(row);
  fillForwardRow(row, { luid: LUID, prefix: Cidr.parse("10.96.0.0/12")! });
  assert.deepEqual(row, GOLDEN_V4);
  initialize(row);
  fillForwardRow(row, { luid: LUID, prefix: Cidr.parse("fd00:6b63:1::/48")! });
  assert.deepEqual(row, GOLDEN_V6);
  assert.throws(
    () => fillForwardRow(new Uint8Array(100), { luid: 1n, prefix: Cidr.parse("10.0.0.0/8")! }),
    RangeError,
  );
});

Deno.test("parseForwardRow() reads back what fillForwardRow() wrote, and a gateway", () => {
  const info = parseForwardRow(GOLDEN_V4)!;
  assert.equal(info.luid, LUID);
  assert.equal(info.prefix.toString(), "10.96.0.0/12");
  assert.equal(info.nextHop, null);
  assert.equal(info.protocol, 3);
  const gw = GOLDEN_V4.slice();
  gw.set([192, 168, 1, 1], ForwardRow.NextHop + 4);
  assert.deepEqual([...parseForwardRow(gw)!.nextHop!], [192, 168, 1, 1]);
  const bad = GOLDEN_V4.slice();
  bad[ForwardRow.DestinationPrefix] = 9; // neither AF_INET nor AF_INET6
  assert.equal(parseForwardRow(bad), null);
});

/** A fake iphlpapi with a route table and two interfaces. */
class FakeRouteApi {
  readonly calls: string[] = [];
  table: Uint8Array[] = [];
  tablesHeld = 0;
  #keep: Uint8Array[] = [];
  readonly aliases = new Map<string, bigint>([["kconnect", LUID], ["Ethernet", OTHER]]);

  #key(row: Uint8Array): string {
    return [...row.subarray(0, 8), ...row.subarray(12, 41), ...row.subarray(44, 72)].join(",");
  }

  readonly symbols: IphlpapiRouteSymbols = {
    InitializeIpForwardEntry: (row) => initialize(bytesOf(row)),
    CreateIpForwardEntry2: (row) => {
      const r = bytesOf(row).slice();
      this.calls.push("CreateIpForwardEntry2");
      if (this.table.some((t) => this.#key(t) === this.#key(r))) {
        return RouteStatus.ERROR_OBJECT_ALREADY_EXISTS;
      }
      this.table.push(r);
      return 0;
    },
    DeleteIpForwardEntry2: (row) => {
      const r = bytesOf(row);
      this.calls.push("DeleteIpForwardEntry2");
      const before = this.table.length;
      this.table = this.table.filter((t) => this.#key(t) !== this.#key(r));
      return this.table.length < before ? 0 : RouteStatus.ERROR_NOT_FOUND;
    },
    GetIpForwardTable2: (family, out) => {
      const rows = this.table.filter((r) => r[ForwardRow.DestinationPrefix] === family);
      const t = new Uint8Array(8 + rows.length * MIB_IPFORWARD_ROW2_SIZE);
      new DataView(t.buffer).setUint32(0, rows.length, true);
      rows.forEach((r, i) => t.set(r, 8 + i * MIB_IPFORWARD_ROW2_SIZE));
      this.#keep.push(t);
      const o = bytesOf(out);
      new DataView(o.buffer, o.byteOffset, o.byteLength)
        .setBigUint64(0, Deno.UnsafePointer.value(Deno.UnsafePointer.of(t)) as bigint, true);
      this.tablesHeld++;
      return 0;
    },
    FreeMibTable: () => {
      this.tablesHeld--;
    },
    ConvertInterfaceAliasToLuid: (alias, out) => {
      const u = bytesOf(alias);
      const units = new Uint16Array(u.buffer, u.byteOffset, u.byteLength / 2);
      const name = String.fromCharCode(...units.subarray(0, units.indexOf(0)));
      const luid = this.aliases.get(name);
      if (luid === undefined) return RouteStatus.ERROR_FILE_NOT_FOUND;
      const o = bytesOf(out);
      new DataView(o.buffer, o.byteOffset, o.byteLength).setBigUint64(0, luid, true);
      return 0;
    },
    ConvertInterfaceLuidToAlias: (luid, out, length) => {
      const l = bytesOf(luid);
      const want = new DataView(l.buffer, l.byteOffset, l.byteLength).getBigUint64(0, true);
      const name = [...this.aliases].find(([, v]) => v === want)?.[0];
      if (name === undefined) return RouteStatus.ERROR_FILE_NOT_FOUND;
      const o = bytesOf(out);
      const units = new Uint16Array(o.buffer, o.byteOffset, Number(length));
      for (let i = 0; i < name.length; i++) units[i] = name.charCodeAt(i);
      units[name.length] = 0;
      return 0;
    },
  };

  /** Adds a route of another interface (the LAN, a default route). */
  seed(prefix: string, luid: bigint, gateway?: number[]): void {
    const r = new Uint8Array(MIB_IPFORWARD_ROW2_SIZE);
    initialize(r);
    fillForwardRow(r, { luid, prefix: Cidr.parse(prefix)! });
    if (gateway) r.set(gateway, ForwardRow.NextHop + 4);
    new DataView(r.buffer).setUint32(ForwardRow.Protocol, 2, true);
    this.table.push(r);
  }
}

Deno.test("windowsRoutes(): addRoute() adds an on-link route into the adapter, once; deleteRoute() takes it away, twice is fine", async () => {
  const api = new FakeRouteApi();
  const routes = windowsRoutes(() => api.symbols);
  const cidr = Cidr.parse("10.96.0.0/12")!;
  await routes.addRoute(cidr, "kconnect");
  assert.deepEqual(api.table, [GOLDEN_V4]);
  await assert.rejects(() => routes.addRoute(cidr, "kconnect"), Deno.errors.AlreadyExists);
  await assert.rejects(
    () => routes.addRoute(cidr, "nope"),
    /ConvertInterfaceAliasToLuid "nope": ERROR_FILE_NOT_FOUND/,
  );
  await routes.deleteRoute(cidr, "kconnect");
  assert.deepEqual(api.table, []);
  await routes.deleteRoute(cidr, "kconnect"); // gone already
  await routes.deleteRoute(cidr, "nope"); // the device is gone: nothing to do
});

Deno.test("windowsRoutes(): listRoutes() reads the table as `ip -j route` would say it, and frees it", async () => {
  const api = new FakeRouteApi();
  api.seed("0.0.0.0/0", OTHER, [192, 168, 1, 1]);
  api.seed("192.168.1.0/24", OTHER);
  api.seed("192.168.1.10/32", OTHER);
  api.seed("224.0.0.0/4", OTHER);
  api.seed("255.255.255.255/32", OTHER);
  api.seed("fe80::/64", OTHER);
  const routes = windowsRoutes(() => api.symbols);
  await routes.addRoute(Cidr.parse("10.96.0.0/12")!, "kconnect");
  assert.deepEqual(await routes.listRoutes(4), [
    { dst: "default", dev: "Ethernet", gateway: "192.168.1.1", protocol: "local", metric: 0 },
    { dst: "192.168.1.0/24", dev: "Ethernet", protocol: "local", metric: 0 },
    { dst: "192.168.1.10", dev: "Ethernet", protocol: "local", metric: 0 },
    { dst: "224.0.0.0/4", dev: "Ethernet", protocol: "local", metric: 0, type: "multicast" },
    { dst: "255.255.255.255", dev: "Ethernet", protocol: "local", metric: 0, type: "broadcast" },
    { dst: "10.96.0.0/12", dev: "kconnect", protocol: "netmgmt", metric: 0 },
  ]);
  assert.deepEqual(await routes.listRoutes(6), [
    { dst: "fe80::/64", dev: "Ethernet", protocol: "local", metric: 0 },
  ]);
  assert.equal(api.tablesHeld, 0);
});

Deno.test("routes/windows.ts has the shape of the other OS modules; off Windows its functions reject", async () => {
  // What routes.ts asks of each OS's module; deno check fails here if the shapes part.
  const ops: {
    addRoute(cidr: Cidr, dev: string): Promise<void>;
    deleteRoute(cidr: Cidr, dev: string): Promise<void>;
    listRoutes(family: 4 | 6): Promise<RouteEntry[]>;
  } = windowsModule;
  if (Deno.build.os === "windows") return;
  const cidr = Cidr.parse("10.96.0.0/12")!;
  await assert.rejects(() => ops.addRoute(cidr, "kconnect"), /Windows only/);
  await assert.rejects(() => ops.deleteRoute(cidr, "kconnect"), /Windows only/);
  await assert.rejects(() => ops.listRoutes(4), /Windows only/);
});
