import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import {
  configSteps,
  configureUtun,
  ifconfigAddressArgs,
  ifconfigMtuUpArgs,
  parseDarwinConfig,
  routeArgs,
  routeFailure,
  utunUnit,
} from "./darwin_config.ts";
import { FakeRunner } from "./darwin_fake_test.ts";

Deno.test("utunUnit: none → 0 (kernel picks), utunN → N+1, anything else refused", () => {
  assert.equal(utunUnit(undefined), 0);
  assert.equal(utunUnit(""), 0);
  assert.equal(utunUnit("utun0"), 1);
  assert.equal(utunUnit("utun12"), 13);
  for (const bad of ["kc0", "tun0", "utun", "utun-1", "utun01", "utun1 ", "UTUN1"]) {
    assert.throws(() => utunUnit(bad), /on macOS a TUN is a utun interface named utunN/, bad);
  }
});

Deno.test("parseDarwinConfig: MTU and address checks, canonical text", () => {
  const [a, b] = parseDarwinConfig(1500, [
    { address: "198.18.0.1", prefixLength: 29 },
    { address: "FD00:6B63:0::1", prefixLength: 125 },
  ]);
  assert.deepEqual([...a.bytes], [198, 18, 0, 1]);
  assert.equal(b.text, "fd00:6b63::1");
  assert.throws(() => parseDarwinConfig(67, []), RangeError);
  assert.throws(() => parseDarwinConfig(65536, []), RangeError);
  assert.throws(() => parseDarwinConfig(1500, [{ address: "nope", prefixLength: 1 }]), TypeError);
  assert.throws(
    () => parseDarwinConfig(1500, [{ address: "10.0.0.1", prefixLength: 33 }]),
    RangeError,
  );
  assert.throws(() => parseDarwinConfig(1000, [{ address: "fd00::1", prefixLength: 64 }]), /1280/);
});

Deno.test("ifconfig and route argument lists", () => {
  const [v4, v6] = parseDarwinConfig(1500, [
    { address: "198.18.0.1", prefixLength: 29 },
    { address: "fd00:6b63::1", prefixLength: 125 },
  ]);
  assert.deepEqual(ifconfigAddressArgs("utun7", v4), [
    "utun7",
    "inet",
    "198.18.0.1/29",
    "198.18.0.1",
    "alias",
  ]);
  assert.deepEqual(ifconfigAddressArgs("utun7", v6), [
    "utun7",
    "inet6",
    "fd00:6b63::1/125",
    "alias",
  ]);
  assert.deepEqual(ifconfigMtuUpArgs("utun7", 1380), ["utun7", "mtu", "1380", "up"]);
  assert.deepEqual(routeArgs("add", Cidr.parse("10.96.0.0/12")!, "utun7"), [
    "-n",
    "add",
    "-inet",
    "10.96.0.0/12",
    "-iface",
    "utun7",
  ]);
  assert.deepEqual(routeArgs("delete", Cidr.parse("fd00:10::/108")!, "utun7"), [
    "-n",
    "delete",
    "-inet6",
    "fd00:10::/108",
    "-iface",
    "utun7",
  ]);
});

Deno.test("routeFailure reads route(8)'s output, whatever its exit status", () => {
  const ok = (stdout: string, stderr = "", code = 0) => routeFailure({ code, stdout, stderr });
  assert.equal(ok("add net 10.96.0.0: gateway utun4\n"), null);
  assert.equal(ok("add net fd00::: gateway utun4\n"), null);
  assert.equal(ok("delete net 10.96.0.0: gateway utun4\n"), null);
  assert.equal(
    ok(
      "add net 10.96.0.0: gateway utun4: File exists\n",
      "route: writing to routing socket: File exists\n",
    ),
    "File exists",
  );
  assert.equal(ok("delete net 10.96.0.0: gateway utun4: not in table\n"), "not in table");
  assert.equal(ok("delete net fd00::: gateway utun4: not in table\n"), "not in table");
  assert.equal(ok("add net fd00::/8: gateway utun4: File exists\n"), "File exists");
  assert.equal(ok("delete net fd00::: not in table\n"), "not in table");
  assert.equal(ok("add net fd00::\n"), null, "an IPv6 destination's colons are not a separator");
  assert.equal(ok("", "route: writing to routing socket: not in table\n"), "not in table");
  assert.equal(
    ok("", "route: must be root to alter routing table\n", 1),
    "route: must be root to alter routing table",
  );
  assert.equal(ok("", "", 70), "exit status 70");
});

Deno.test("configSteps: addresses, then MTU and up, then one route per address prefix", () => {
  const addresses = parseDarwinConfig(1500, [
    { address: "198.18.0.1", prefixLength: 29 },
    { address: "198.18.0.2", prefixLength: 29 }, // same prefix: one route
    { address: "100.64.0.9", prefixLength: 32 }, // host prefix: nothing to route
    { address: "fd00:6b63::1", prefixLength: 125 },
  ]);
  const steps = configSteps("utun2", 1400, addresses);
  assert.deepEqual(steps.map((s) => `${s.program} ${s.args.join(" ")} ${s.existsIsOk ?? ""}`), [
    "/sbin/ifconfig utun2 inet 198.18.0.1/29 198.18.0.1 alias ",
    "/sbin/ifconfig utun2 inet 198.18.0.2/29 198.18.0.2 alias ",
    "/sbin/ifconfig utun2 inet 100.64.0.9/32 100.64.0.9 alias ",
    "/sbin/ifconfig utun2 inet6 fd00:6b63::1/125 alias ",
    "/sbin/ifconfig utun2 mtu 1400 up ",
    "/sbin/route -n add -inet 198.18.0.0/29 -iface utun2 false",
    "/sbin/route -n add -inet6 fd00:6b63::/125 -iface utun2 true",
  ]);
  assert.deepEqual(configSteps("utun2", 1500, []).map((s) => s.args.join(" ")), [
    "utun2 mtu 1500 up",
  ]);
});

Deno.test("configureUtun: stops at the first failure and says which command and why", async () => {
  const addresses = parseDarwinConfig(1500, [{ address: "198.18.0.1", prefixLength: 29 }]);
  const runner = new FakeRunner();
  runner.results.push({
    match: "inet 198.18.0.1",
    result: { code: 1, stdout: "", stderr: "ifconfig: ioctl (SIOCAIFADDR): File exists\n" },
  });
  await assert.rejects(
    configureUtun("utun3", 1500, addresses, runner.run),
    /Configuring utun3: \/sbin\/ifconfig utun3 inet 198\.18\.0\.1\/29 198\.18\.0\.1 alias failed: ifconfig: ioctl \(SIOCAIFADDR\): File exists/,
  );
  assert.equal(runner.runs.length, 1);

  const missing = (() => Promise.reject(new Deno.errors.NotFound("no such file"))) as FakeRunner[
    "run"
  ];
  await assert.rejects(configureUtun("utun3", 1500, [], missing), /could not run: no such file/);

  const fine = new FakeRunner();
  await configureUtun("utun3", 1500, addresses, fine.run);
  assert.equal(fine.runs.length, 3);
});
