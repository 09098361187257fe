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
