/**
 * macOS routes against a recording runner. The netstat texts follow the layout of macOS
 * `netstat -rn` as printed by Apple's network_cmds (columns Destination, Gateway, Flags, Netif,
 * Expire; Refs and Use on older releases), with rows of the kinds seen in public captures; they
 * were not captured on a Mac for this test.
 */
import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import {
  addRoute,
  type CommandResult,
  deleteRoute,
  listRoutes,
  netstatDestination,
  parseNetstatRoutes,
  routeArgs,
  routeFailure,
} from "./darwin.ts";
import * as darwin from "./darwin.ts";
import type * as linux from "./linux.ts";

// The OS switch (`routes.ts`) uses either module through the same shape: checked by deno check.
const _sameShape: Pick<typeof linux, "addRoute" | "deleteRoute" | "listRoutes"> = darwin;

const INET = `Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            192.168.1.1        UGScg                 en0       
default            link#15            UCSIg             bridge0      !
0/1                10.8.0.1           UGSc                utun3
10.96/12           utun4              USc                 utun4
127                127.0.0.1          UCS                   lo0       
127.0.0.1          127.0.0.1          UH                    lo0       
169.254            link#6             UCS                   en0      !
192.168.1          link#6             UCS                   en0      !
192.168.1.1/32     link#6             UCS                   en0      !
192.168.1.1        a0:c5:f2:bd:f2:f2  UHLWIir               en0   1195
192.168.64         link#32            UC              bridge101      !
224.0.0/4          link#6             UmCS                  en0      !
255.255.255.255/32 link#6             UCS                   en0      !
`;

const INET6 = `Routing tables

Internet6:
Destination                             Gateway                                 Flags               Netif Expire
default                                 fe80::%utun0                            UGcIg               utun0       
::1                                     ::1                                     UHL                   lo0       
fd00:6b63::/125                         utun4                                   USc                 utun4       
fe80::%lo0/64                           fe80::1%lo0                             UcI                   lo0       
fe80::1%lo0                             link#1                                  UHLI                  lo0       
ff00::/8                                ::1                                     UmCI                  lo0       
`;

const OLD = `Routing tables

Internet:
Destination        Gateway            Flags        Refs      Use   Netif Expire
default            10.0.1.1           UGSc           24        0     en1
10.0.1/24          link#5             UCS             2        0     en1
10.0.1.1           0:1e:52:7b:2:a3    UHLWIi         25      130     en1   1197

Internet6:
Destination                             Gateway                         Flags         Netif Expire
::1                                     ::1                             UHL             lo0
`;

function recorder(result: Partial<CommandResult> = {}) {
  const runs: string[] = [];
  const run = (program: string, args: string[]) => {
    runs.push(`${program} ${args.join(" ")}`);
    return Promise.resolve({ code: 0, stdout: "", stderr: "", ...result });
  };
  return { runs, run };
}

Deno.test("parseNetstatRoutes: IPv4, with netstat's shortened networks spelled out", () => {
  const rows = parseNetstatRoutes(INET, 4).map((r) =>
    `${r.dst} ${r.gateway ?? "-"} ${r.dev} ${r.type} ${r.flags}`
  );
  assert.deepEqual(rows, [
    "default 192.168.1.1 en0 unicast UGScg",
    "default - bridge0 unicast UCSIg",
    "0.0.0.0/1 10.8.0.1 utun3 unicast UGSc",
    "10.96.0.0/12 - utun4 unicast USc",
    "127.0.0.0/8 127.0.0.1 lo0 unicast UCS",
    "127.0.0.1 127.0.0.1 lo0 unicast UH",
    "169.254.0.0/16 - en0 unicast UCS",
    "192.168.1.0/24 - en0 unicast UCS",
    "192.168.1.1/32 - en0 unicast UCS",
    "192.168.1.1 - en0 cloned UHLWIir",
    "192.168.64.0/24 - bridge101 unicast UC",
    "224.0.0.0/4 - en0 multicast UmCS",
    "255.255.255.255/32 - en0 unicast UCS",
  ]);
  assert.deepEqual(parseNetstatRoutes(INET, 6), [], "no IPv6 section in this text");
});

Deno.test("parseNetstatRoutes: IPv6 scopes dropped; older layout with Refs and Use", () => {
  const rows = parseNetstatRoutes(INET6, 6).map((r) =>
    `${r.dst} ${r.gateway ?? "-"} ${r.dev} ${r.type}`
  );
  assert.deepEqual(rows, [
    "default fe80:: utun0 unicast",
    "::1 ::1 lo0 unicast",
    "fd00:6b63::/125 - utun4 unicast",
    "fe80::/64 fe80::1 lo0 unicast",
    "fe80::1 - lo0 unicast",
    "ff00::/8 ::1 lo0 multicast",
  ]);
  const old = parseNetstatRoutes(OLD, 4).map((r) => `${r.dst} ${r.gateway ?? "-"} ${r.dev}`);
  assert.deepEqual(old, ["default 10.0.1.1 en1", "10.0.1.0/24 - en1", "10.0.1.1 - en1"]);
  assert.deepEqual(parseNetstatRoutes(OLD, 6).map((r) => r.dst), ["::1"]);
  // A listing with no section line (one family asked for).
  const bare = "Destination        Gateway            Flags               Netif Expire\n" +
    "10.8/16            10.8.0.1           UGSc                utun3\n";
  assert.deepEqual(parseNetstatRoutes(bare, 4).map((r) => r.dst), ["10.8.0.0/16"]);
});

Deno.test("netstatDestination: classful masks left out by netstat, host routes, junk", () => {
  assert.equal(netstatDestination("10", false), "10.0.0.0/8");
  assert.equal(netstatDestination("172.16", false), "172.16.0.0/16");
  assert.equal(netstatDestination("192.168.64", false), "192.168.64.0/24");
  assert.equal(netstatDestination("128.0/1", false), "128.0.0.0/1");
  assert.equal(netstatDestination("10/16", false), "10.0.0.0/16");
  assert.equal(netstatDestination("10.1.2.3", true), "10.1.2.3");
  assert.equal(netstatDestination("ff01::%lo0/32", false), "ff01::/32");
  assert.equal(netstatDestination("fe80::1%en0", true), "fe80::1");
  assert.equal(netstatDestination("default", false), "default");
  for (const junk of ["link#4", "10.0.0.0&0xff00ff00", "300.1", "a.b", ""]) {
    assert.equal(netstatDestination(junk, false), null, junk);
  }
});

Deno.test("listRoutes runs netstat for one family and parses it", async () => {
  const { runs, run } = recorder({ stdout: INET });
  const routes = await listRoutes(4, run);
  assert.deepEqual(runs, ["/usr/sbin/netstat -rnW -f inet"]);
  assert.equal(routes.length, 13);
  const six = recorder({ stdout: INET6 });
  assert.equal((await listRoutes(6, six.run)).length, 6);
  assert.deepEqual(six.runs, ["/usr/sbin/netstat -rnW -f inet6"]);
  await assert.rejects(listRoutes(4, recorder({ code: 1, stderr: "netstat: nope" }).run), /nope/);
});

Deno.test("addRoute/deleteRoute: the route(8) command, and failure read from its output", async () => {
  const cidr4 = Cidr.parse("10.96.0.0/12")!;
  const cidr6 = Cidr.parse("fd00:10::/108")!;
  assert.deepEqual(routeArgs("add", cidr6, "utun4"), [
    "-n",
    "add",
    "-inet6",
    "fd00:10::/108",
    "-iface",
    "utun4",
  ]);

  const ok = recorder({ stdout: "add net 10.96.0.0: gateway utun4\n" });
  await addRoute(cidr4, "utun4", ok.run);
  await addRoute(cidr6, "utun4", ok.run);
  await deleteRoute(cidr4, "utun4", ok.run);
  assert.deepEqual(ok.runs, [
    "/sbin/route -n add -inet 10.96.0.0/12 -iface utun4",
    "/sbin/route -n add -inet6 fd00:10::/108 -iface utun4",
    "/sbin/route -n delete -inet 10.96.0.0/12 -iface utun4",
  ]);

  // route(8) exits 0 on a refused change: the output says so.
  const exists = recorder({
    stdout: "add net 10.96.0.0: gateway utun4: File exists\n",
    stderr: "route: writing to routing socket: File exists\n",
  });
  await assert.rejects(
    addRoute(cidr4, "utun4", exists.run),
    /route -n add -inet 10\.96\.0\.0\/12 -iface utun4 failed: File exists/,
  );
  // A route already gone is not an error when deleting; anything else is.
  const gone = recorder({
    stdout: "delete net 10.96.0.0: gateway utun4: not in table\n",
    stderr: "route: writing to routing socket: not in table\n",
  });
  await deleteRoute(cidr4, "utun4", gone.run);
  const notRoot = recorder({ code: 1, stderr: "route: must be root to alter routing table\n" });
  await assert.rejects(deleteRoute(cidr4, "utun4", notRoot.run), /must be root/);
  await assert.rejects(addRoute(cidr4, "utun4", notRoot.run), /must be root/);
  assert.equal(routeFailure({ code: 0, stdout: "", stderr: "" }), null);
});
