import assert from "node:assert/strict";
import { Journal } from "../journal/journal.ts";
import { undoLeftovers } from "../journal/undo.ts";
import { MacosResolverConfigurator } from "./macos.ts";
import { dnsPlan } from "./plan.ts";
import { kconnectResolvConf, ResolvConfConfigurator } from "./resolv_conf.ts";
import { Cidr } from "../wire/address.ts";

const plan = dnsPlan({
  server: "198.18.0.3",
  link: "kconnect0",
  clusterDomain: "cluster.local",
  namespace: "default",
  namespaces: ["default", "payments"],
  cidrs: [Cidr.parse("10.244.0.0/24")!],
});
const ORIGINAL =
  "# from DHCP\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions edns0 timeout:2\n";

async function tempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dnsPlan() routes the cluster domain, svc, namespaces and reverse zones to kconnect", () => {
  assert.deepEqual(plan.routingDomains, [
    "cluster.local",
    "svc",
    "default",
    "payments",
    "0.244.10.in-addr.arpa",
  ]);
  assert.deepEqual(plan.searchDomains, [
    "default.svc.cluster.local",
    "svc.cluster.local",
    "cluster.local",
  ]);
});

Deno.test("dnsPlan() leaves out namespaces that are public top-level domains", () => {
  const p = dnsPlan({
    server: "198.18.0.3",
    link: "kconnect0",
    clusterDomain: "cluster.local",
    namespace: "default",
    namespaces: ["default", "dev", "app", "payments"],
    cidrs: [],
  });
  assert.deepEqual(p.routingDomains, ["cluster.local", "svc", "default", "payments"]);
  assert.deepEqual(p.skippedNamespaces, ["dev", "app"]);
});

Deno.test("kconnectResolvConf() puts kconnect first, keeps the original servers, search and options", () => {
  assert.equal(
    kconnectResolvConf(ORIGINAL, plan).split("\n").filter((l) => !l.startsWith("#")).join("\n"),
    "nameserver 198.18.0.3\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n" +
      "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions edns0 timeout:2\n",
  );
});

Deno.test("ResolvConfConfigurator restores the file byte for byte, mode included", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(path, ORIGINAL, { mode: 0o640 });
    await Deno.chmod(path, 0o640);
    const journal = await Journal.open(`${dir}/state`);
    const rc = new ResolvConfConfigurator(journal, path);
    await rc.apply(plan);
    assert.match(await Deno.readTextFile(path), /^nameserver 198\.18\.0\.3$/m);
    assert.deepEqual(rc.upstreamServers(), ["192.0.2.53", "192.0.2.54"]);
    assert.equal(journal.entries().length, 1, "journaled");
    await rc.update({ ...plan, searchDomains: ["shop.svc.cluster.local"] });
    assert.match(
      await Deno.readTextFile(path),
      /^search shop\.svc\.cluster\.local corp\.example$/m,
    );
    await rc.restore();
    assert.equal(await Deno.readTextFile(path), ORIGINAL);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    assert.equal(journal.entries().length, 0);
  });
});

Deno.test("after a crash, undoLeftovers() restores resolv.conf from the journal; a symlink stays a symlink", async () => {
  await tempDir(async (dir) => {
    const target = `${dir}/stub-resolv.conf`;
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(target, ORIGINAL);
    await Deno.symlink(target, path);
    const rc = new ResolvConfConfigurator(await Journal.open(`${dir}/state`), path);
    await rc.apply(plan);
    assert.ok(!(await Deno.lstat(path)).isSymlink);
    // The process "dies" here; a new one opens the journal.
    const done = await undoLeftovers(await Journal.open(`${dir}/state`));
    assert.deepEqual(done, [`${path} is again a symlink to ${target}`]);
    assert.equal(await Deno.readLink(path), target);
    assert.equal(await Deno.readTextFile(target), ORIGINAL);
    assert.equal((await Journal.open(`${dir}/state`)).entries().length, 0);
  });
});

Deno.test("undoLeftovers() leaves a resolv.conf that someone else rewrote since", async () => {
  await tempDir(async (dir) => {
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(path, ORIGINAL);
    await new ResolvConfConfigurator(await Journal.open(`${dir}/state`), path).apply(plan);
    await Deno.writeTextFile(path, "nameserver 192.0.2.99\n"); // e.g. DHCP renewed meanwhile
    const done = await undoLeftovers(await Journal.open(`${dir}/state`));
    assert.match(done[0], /changed by something else/);
    assert.equal(await Deno.readTextFile(path), "nameserver 192.0.2.99\n");
  });
});

Deno.test("MacosResolverConfigurator writes one file per domain and removes them again", async () => {
  await tempDir(async (dir) => {
    await Deno.mkdir(`${dir}/resolver`);
    await Deno.writeTextFile(`${dir}/resolver/shop`, "nameserver 192.0.2.1\n");
    const journal = await Journal.open(`${dir}/state`);
    const mac = new MacosResolverConfigurator(journal, `${dir}/resolver`);
    await mac.apply(plan);
    assert.match(
      await Deno.readTextFile(`${dir}/resolver/cluster.local`),
      /nameserver 198\.18\.0\.3/,
    );
    assert.equal(journal.entries().length, plan.routingDomains.length);
    await mac.update({
      ...plan,
      routingDomains: plan.routingDomains.filter((d) => d !== "default"),
    });
    await assert.rejects(() => Deno.stat(`${dir}/resolver/default`));
    await mac.restore();
    const left = [...Deno.readDirSync(`${dir}/resolver`)].map((e) => e.name);
    assert.deepEqual(left, ["shop"]);
    assert.equal(await Deno.readTextFile(`${dir}/resolver/shop`), "nameserver 192.0.2.1\n");
  });
});
