/**
 * The iphlpapi rows of the Windows driver, byte for byte (golden bytes written from the layout
 * table in `../shared/platform-notes.md` §C.4), and the offsets of every row kconnect uses
 * (here and in `src/routes/windows_rows.ts`) checked against the real `netioapi.h` by compiling
 * `_Static_assert`s with mingw-w64, when `x86_64-w64-mingw32-gcc` is installed
 * (`apt-get install gcc-mingw-w64-x86-64`).
 */
import { assertWindowsHeaders, hasMingw } from "../host/_test_mingw.ts";
import assert from "node:assert/strict";
import {
  fillUnicastAddressRow,
  InterfaceRow,
  keyInterfaceRow,
  MIB_IPINTERFACE_ROW_SIZE,
  MIB_UNICASTIPADDRESS_ROW_SIZE,
  readSockaddrInet,
  setInterfaceRowMtu,
  SOCKADDR_INET_SIZE,
  UNICAST_TABLE_ROWS_OFFSET,
  UnicastRow,
  WIN_AF_INET6,
  writeSockaddrInet,
} from "./windows_rows.ts";
import {
  FORWARD_TABLE_ROWS_OFFSET,
  ForwardRow,
  MIB_IPFORWARD_ROW2_SIZE,
} from "../routes/windows_rows.ts";
import { FakeWintun } from "./wintun_fake.ts";
import { configureAdapter, flushAddresses } from "./windows_config.ts";
import { parseConfig } from "./_linux_config.ts";

const LUID = 0x0035000001000000n;

function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return new Uint8Array(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

// deno-fmt-ignore
const UNICAST_V4 = hex(`
  02 00 00 00 c6 12 00 01   # Address: AF_INET, port 0, 198.18.0.1
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # rest of SOCKADDR_INET
  00 00 00 00               # padding to the LUID
  00 00 00 01 00 00 35 00   # InterfaceLuid
  00 00 00 00               # InterfaceIndex
  10 00 00 00 10 00 00 00   # PrefixOrigin, SuffixOrigin: Unchanged (initialized)
  ff ff ff ff ff ff ff ff   # ValidLifetime, PreferredLifetime: infinite
  1e 00 00 00               # OnLinkPrefixLength 30, SkipAsSource 0, padding
  04 00 00 00               # DadState IpDadStatePreferred
  00 00 00 00               # ScopeId
  00 00 00 00 00 00 00 00   # CreationTimeStamp
`);

// deno-fmt-ignore
const UNICAST_V6 = hex(`
  17 00 00 00 00 00 00 00   # Address: AF_INET6 (23), port 0, flow info 0
  fd 00 6b 63 00 00 00 00 00 00 00 00 00 00 00 01   # fd00:6b63::1
  00 00 00 00               # scope id
  00 00 00 00               # padding
  00 00 00 01 00 00 35 00   # InterfaceLuid
  00 00 00 00
  10 00 00 00 10 00 00 00
  ff ff ff ff ff ff ff ff
  40 00 00 00               # OnLinkPrefixLength 64
  04 00 00 00
  00 00 00 00
  00 00 00 00 00 00 00 00
`);

// deno-fmt-ignore
const INTERFACE_V4_MTU_1400 = hex(`
  02 00 00 00 00 00 00 00   # Family AF_INET, padding
  00 00 00 01 00 00 35 00   # InterfaceLuid
  2a 00 00 00               # InterfaceIndex 42 (as Get answered)
  ${"00 ".repeat(144 - 20)}
  00 00 00 00               # SitePrefixLength: 0 for IPv4 (Get said 64)
  05 00 00 00               # Metric 5 (as Get answered)
  78 05 00 00               # NlMtu 1400
  ${"00 ".repeat(168 - 156)}
`);

/** Runs the real driver's configuration on the fake and returns what it handed iphlpapi. */
function configure(mtu: number, addresses: { address: string; prefixLength: number }[]) {
  const fake = new FakeWintun({ luid: LUID });
  configureAdapter(fake.iphlpapi, LUID, mtu, parseConfig(mtu, addresses));
  return fake;
}

Deno.test("MIB_UNICASTIPADDRESS_ROW: the driver creates addresses with these exact bytes (IPv4 and IPv6)", () => {
  assert.equal(UNICAST_V4.length, MIB_UNICASTIPADDRESS_ROW_SIZE);
  assert.equal(UNICAST_V6.length, MIB_UNICASTIPADDRESS_ROW_SIZE);
  const fake = configure(1400, [
    { address: "198.18.0.1", prefixLength: 30 },
    { address: "fd00:6b63::1", prefixLength: 64 },
  ]);
  assert.deepEqual(fake.createdAddresses, [UNICAST_V4, UNICAST_V6]);
});

Deno.test("MIB_IPINTERFACE_ROW: the MTU is set on the row Windows returned, site prefix 0 for IPv4 (golden)", () => {
  assert.equal(INTERFACE_V4_MTU_1400.length, MIB_IPINTERFACE_ROW_SIZE);
  const v4only = configure(1400, [{ address: "198.18.0.1", prefixLength: 30 }]);
  assert.deepEqual(v4only.setInterfaces, [INTERFACE_V4_MTU_1400]);
  const both = configure(1400, [
    { address: "198.18.0.1", prefixLength: 30 },
    { address: "fd00:6b63::1", prefixLength: 64 },
  ]);
  assert.equal(both.setInterfaces.length, 2);
  const v6 = both.setInterfaces[1];
  const view = new DataView(v6.buffer);
  assert.equal(view.getUint16(InterfaceRow.Family, true), WIN_AF_INET6);
  assert.equal(view.getUint32(InterfaceRow.NlMtu, true), 1400);
  assert.equal(view.getUint32(InterfaceRow.SitePrefixLength, true), 0, "IPv6 keeps Get's value");
});

Deno.test("row helpers refuse wrong sizes and read back what they wrote", () => {
  assert.throws(() => keyInterfaceRow(new Uint8Array(160), 4, 1n), RangeError);
  assert.throws(() => setInterfaceRowMtu(new Uint8Array(80), 1400), RangeError);
  assert.throws(
    () =>
      fillUnicastAddressRow(new Uint8Array(79), {
        luid: 1n,
        address: new Uint8Array(4),
        prefixLength: 1,
      }),
    RangeError,
  );
  assert.throws(() => writeSockaddrInet(new Uint8Array(28), 0, new Uint8Array(5)), RangeError);
  const b = new Uint8Array(SOCKADDR_INET_SIZE).fill(0xff);
  writeSockaddrInet(b, 0, new Uint8Array([10, 0, 0, 1]));
  assert.deepEqual([...readSockaddrInet(b, 0)!], [10, 0, 0, 1]);
  assert.deepEqual([...b.subarray(8)], new Array(20).fill(0), "the rest is cleared");
});

Deno.test("flushAddresses() on a system with no address of a family does nothing", () => {
  const fake = new FakeWintun();
  flushAddresses(fake.iphlpapi, LUID, 6);
  assert.deepEqual(fake.deletedAddresses, []);
  assert.equal(fake.tablesHeld, 0);
});

Deno.test({
  name: "row sizes and offsets match netioapi.h (mingw-w64 _Static_asserts)",
  ignore: !hasMingw,
  fn: async () => {
    const checks: string[] = [];
    const field = (type: string, table: Record<string, number>, skip: string[] = []) => {
      for (const [name, offset] of Object.entries(table)) {
        if (skip.includes(name)) continue;
        checks.push(`_Static_assert(offsetof(${type}, ${name}) == ${offset}, "${type}.${name}");`);
      }
    };
    field("MIB_UNICASTIPADDRESS_ROW", UnicastRow);
    field("MIB_IPINTERFACE_ROW", InterfaceRow);
    field("MIB_IPFORWARD_ROW2", ForwardRow, ["DestinationPrefixLength"]);
    checks.push(
      `_Static_assert(offsetof(MIB_IPFORWARD_ROW2, DestinationPrefix) + offsetof(IP_ADDRESS_PREFIX, PrefixLength) == ${ForwardRow.DestinationPrefixLength}, "prefix length");`,
      `_Static_assert(sizeof(SOCKADDR_INET) == ${SOCKADDR_INET_SIZE}, "SOCKADDR_INET");`,
      `_Static_assert(sizeof(MIB_UNICASTIPADDRESS_ROW) == ${MIB_UNICASTIPADDRESS_ROW_SIZE}, "unicast");`,
      `_Static_assert(sizeof(MIB_IPINTERFACE_ROW) == ${MIB_IPINTERFACE_ROW_SIZE}, "interface");`,
      `_Static_assert(sizeof(MIB_IPFORWARD_ROW2) == ${MIB_IPFORWARD_ROW2_SIZE}, "forward");`,
      `_Static_assert(offsetof(MIB_IPFORWARD_TABLE2, Table) == ${FORWARD_TABLE_ROWS_OFFSET}, "forward table");`,
      `_Static_assert(offsetof(MIB_UNICASTIPADDRESS_TABLE, Table) == ${UNICAST_TABLE_ROWS_OFFSET}, "unicast table");`,
      `_Static_assert(offsetof(SOCKADDR_IN, sin_addr) == 4, "sin_addr");`,
      `_Static_assert(offsetof(SOCKADDR_IN6, sin6_addr) == 8, "sin6_addr");`,
      `_Static_assert(AF_INET6 == ${WIN_AF_INET6}, "AF_INET6");`,
      `_Static_assert(IpDadStatePreferred == 4, "dad");`,
      `_Static_assert(MIB_IPPROTO_NETMGMT == 3, "netmgmt");`,
    );
    await assertWindowsHeaders(
      ["winsock2.h", "ws2ipdef.h", "iphlpapi.h", "netioapi.h"],
      checks,
      40,
    );
  },
});
