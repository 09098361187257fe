import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import { describeConflicts, planRoutes, subtract } from "./route_plan.ts";

const c = (t: string) => Cidr.parse(t)!;
const s = (cs: { cidr: Cidr }[] | Cidr[]) => cs.map((x) => ("cidr" in x ? x.cidr : x).toString());

Deno.test("subtract() cuts a hole and covers the rest with the fewest prefixes", () => {
  assert.deepEqual(s(subtract(c("10.96.0.0/12"), c("10.96.0.0/14"))), [
    "10.104.0.0/13",
    "10.100.0.0/14",
  ]);
  const rest = subtract(c("10.0.0.0/8"), c("10.1.2.3/32"));
  assert.equal(rest.length, 24);
  assert.ok(rest.every((r) => !r.contains(c("10.1.2.3/32").address)));
  assert.ok(rest.some((r) => r.contains(c("10.1.2.2/32").address)));
  assert.deepEqual(s(subtract(c("10.0.0.0/8"), c("11.0.0.0/8"))), ["10.0.0.0/8"]);
  assert.deepEqual(s(subtract(c("10.1.0.0/16"), c("10.0.0.0/8"))), []);
});

Deno.test("planRoutes() merges, applies --never-proxy and keeps the API server out", () => {
  const plan = planRoutes({
    cluster: [
      { cidr: c("10.96.0.0/12"), why: "service CIDR" },
      { cidr: c("10.244.0.0/16"), why: "pod CIDR" },
      { cidr: c("10.244.1.0/24"), why: "pod CIDR" },
    ],
    alsoProxy: [c("192.0.2.0/24")],
    neverProxy: [c("10.244.128.0/17")],
    keepOut: [{ address: c("10.96.0.1/32"), label: "the API server" }],
    existing: [],
    ownDev: "kconnect0",
  });
  const routes = s(plan.routes);
  assert.ok(routes.includes("10.244.0.0/17"));
  assert.ok(!routes.includes("10.244.1.0/24"), "inside 10.244.0.0/16 already");
  assert.ok(routes.includes("192.0.2.0/24"));
  assert.ok(!plan.routes.some((r) => r.cidr.contains(c("10.96.0.1/32").address)));
  assert.ok(plan.routes.some((r) => r.cidr.contains(c("10.96.0.2/32").address)));
  assert.equal(plan.notes.length, 2);
});

Deno.test("planRoutes() reports collisions with the machine's routes, naming both sides", () => {
  const plan = planRoutes({
    cluster: [{ cidr: c("10.96.0.0/12"), why: "service CIDR" }],
    alsoProxy: [],
    neverProxy: [],
    keepOut: [],
    existing: [
      { dst: "default", gateway: "192.168.1.1", dev: "eth0" },
      { dst: "10.100.0.0/16", dev: "wg0", protocol: "static" },
      { dst: "10.96.0.0/12", dev: "kconnect0" },
      { dst: "192.168.1.0/24", dev: "eth0", protocol: "kernel" },
      { dst: "10.96.0.5", dev: "eth0", table: "local" },
    ],
    ownDev: "kconnect0",
  });
  assert.equal(plan.conflicts.length, 1);
  const msg = describeConflicts(plan.conflicts);
  assert.match(
    msg,
    /10\.96\.0\.0\/12 \(service CIDR\) overlaps this machine's route 10\.100\.0\.0\/16 dev wg0/,
  );
  assert.match(msg, /--never-proxy/);
});

Deno.test("planRoutes(): 0.0.0.0/1 from the manager collides with the default route (review H1)", () => {
  const existing = [
    { dst: "default", gateway: "192.168.1.1", dev: "eth0" },
    { dst: "192.168.1.0/24", dev: "eth0", protocol: "kernel" },
  ];
  const plan = planRoutes({
    cluster: [
      { cidr: c("0.0.0.0/1"), why: "pod CIDR" },
      { cidr: c("128.0.0.0/2"), why: "pod CIDR" },
      { cidr: c("10.96.0.0/12"), why: "service CIDR" },
    ],
    alsoProxy: [],
    neverProxy: [],
    keepOut: [],
    existing,
    ownDev: "kconnect0",
  });
  const wide = plan.conflicts.filter((x) => x.existing.dst === "default");
  assert.deepEqual(wide.map((x) => x.planned.cidr.toString()).sort(), ["0.0.0.0/1", "128.0.0.0/2"]);
  assert.match(
    describeConflicts(wide),
    /0\.0\.0\.0\/1 \(pod CIDR\) overlaps this machine's route default \(0\.0\.0\.0\/0\) dev eth0 via 192\.168\.1\.1/,
  );
  // The same prefix from the user (--also-proxy) is the user's choice.
  const user = planRoutes({
    cluster: [{ cidr: c("0.0.0.0/1"), why: "pod CIDR" }],
    alsoProxy: [c("0.0.0.0/1")],
    neverProxy: [],
    keepOut: [],
    existing: [{ dst: "default", gateway: "192.168.1.1", dev: "eth0" }],
    ownDev: "kconnect0",
  });
  assert.equal(user.conflicts.length, 0);
  // A v6 default route is not a v4 conflict, and the reverse.
  const v6 = planRoutes({
    cluster: [{ cidr: c("0.0.0.0/1"), why: "pod CIDR" }, { cidr: c("fd00::/8"), why: "pod CIDR" }],
    alsoProxy: [],
    neverProxy: [],
    keepOut: [],
    existing: [{ dst: "default", gateway: "fe80::1", dev: "eth0", family: 6 as const }],
    ownDev: "kconnect0",
  });
  assert.deepEqual(v6.conflicts.map((x) => x.planned.cidr.toString()), ["fd00::/8"]);
});

Deno.test("planRoutes() keeps the machine's DNS servers and route gateways out of the tunnel", () => {
  const plan = planRoutes({
    cluster: [{ cidr: c("10.0.0.0/8"), why: "pod CIDR" }, {
      cidr: c("1.1.1.1/32"),
      why: "pod CIDR",
    }],
    alsoProxy: [],
    neverProxy: [],
    keepOut: [
      { address: c("1.1.1.1/32"), label: "a DNS server of this machine" },
      { address: c("10.0.0.2/32"), label: "a DNS server of this machine" },
    ],
    existing: [{ dst: "172.20.0.0/16", gateway: "10.1.1.1", dev: "wg0" }],
    ownDev: "kconnect0",
  });
  for (const a of ["1.1.1.1", "10.0.0.2", "10.1.1.1"]) {
    assert.ok(!plan.routes.some((r) => r.cidr.contains(c(a).address)), a);
  }
  assert.ok(plan.routes.some((r) => r.cidr.contains(c("10.0.0.3").address)));
  assert.deepEqual(plan.cutOut.map((x) => x.hole.toString()).sort(), [
    "1.1.1.1/32",
    "10.0.0.2/32",
    "10.1.1.1/32",
  ]);
  assert.ok(plan.cutOut.every((x) => x.from.fromCluster));
});
