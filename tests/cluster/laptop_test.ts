/**
 * The test cluster's laptops: their own resolv.conf (never the host's), their upstream DNS
 * server and its query log, a second laptop, and cleanup of `/etc/netns`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TestCluster, UPSTREAM_IPS } from "./cluster.ts";
import { LAPTOP_SEARCH_DOMAIN, laptopAddresses } from "./topology.ts";
import { pathExists } from "../../src/host/_test_fs.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;

Deno.test({
  name: "test cluster laptops: own resolv.conf, upstream DNS with a query log, a second laptop",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const hostResolvConf = await Deno.readFile("/etc/resolv.conf");
  let paths: string[] = [];
  {
    await using cluster = await TestCluster.start({ manager: false });
    const laptop = cluster.laptops[0];
    paths = [`/etc/netns/${cluster.laptop.name}`];

    await t.step("the laptop's /etc/resolv.conf is its own file", async () => {
      assert.equal(cluster.laptopResolvConf, `/etc/netns/${cluster.laptop.name}/resolv.conf`);
      const inside = await cluster.laptop.exec(["cat", "/etc/resolv.conf"]);
      assert.equal(inside.stdout, await Deno.readTextFile(cluster.laptopResolvConf));
      assert.match(inside.stdout, /^nameserver 100\.64\.0\.2$/m);
      assert.match(inside.stdout, new RegExp(`^search ${LAPTOP_SEARCH_DOMAIN}$`, "m"));
      // Writing /etc/resolv.conf in the laptop writes the netns file, not the host's.
      await cluster.laptop.exec(["sh", "-c", "echo '# changed' >> /etc/resolv.conf"]);
      assert.match(await Deno.readTextFile(cluster.laptopResolvConf), /# changed/);
      assert.deepEqual(await Deno.readFile("/etc/resolv.conf"), hostResolvConf);
      await laptop.writeResolvConf();
    });

    await t.step("getent resolves through the upstream, search list included", async () => {
      await laptop.clearDnsLog();
      const www = await cluster.laptop.exec(["getent", "ahostsv4", "www.example.com"]);
      assert.match(www.stdout, new RegExp(`^${UPSTREAM_IPS.www.replaceAll(".", "\\.")}\\s`));
      // `getent hosts` asks AAAA first (gethostbyname2); ahostsv6 would skip it: no IPv6 here.
      const v6 = await cluster.laptop.exec(["getent", "hosts", "www.example.com"]);
      assert.match(v6.stdout, /^2001:db8::10\s/);
      const short = await cluster.laptop.exec(["getent", "ahostsv4", "intranet"]);
      assert.match(short.stdout, /^192\.0\.2\.20\s+STREAM intranet\.corp\.example/);
      const missing = await cluster.laptop.exec(["getent", "hosts", "nope.example.com"], {
        check: false,
      });
      assert.equal(missing.code, 2);
      await laptop.waitForDnsQuery("intranet.corp.example");
      const names = new Set((await cluster.laptopDnsQueries()).map((q) => q.name));
      for (const n of ["www.example.com", "intranet.corp.example", "nope.example.com"]) {
        assert.ok(names.has(n), `${n} not in ${[...names]}`);
      }
      const q = (await cluster.laptopDnsQueries()).find((q) => q.name === "www.example.com");
      assert.deepEqual(q, { type: "A", name: "www.example.com", from: "100.64.0.2" });
    });

    await t.step("dig sees NXDOMAIN for unknown names and AAAA records", async () => {
      const r = await cluster.laptop.exec(["dig", "+time=2", "+tries=1", "web.default"]);
      assert.match(r.stdout, /status: NXDOMAIN/);
      const aaaa = await cluster.laptop.exec(["dig", "+short", "AAAA", "www.example.com"]);
      assert.equal(aaaa.stdout.trim(), "2001:db8::10");
    });

    await t.step("a second laptop is wired like the first and reaches the API server", async () => {
      const second = await cluster.addLaptop("laptop2");
      paths.push(`/etc/netns/${second.ns.name}`);
      assert.deepEqual(
        { ip: second.ip, gateway: second.gateway },
        laptopAddresses(1),
      );
      const conf = await second.ns.exec(["cat", "/etc/resolv.conf"]);
      assert.match(
        conf.stdout,
        new RegExp(`^nameserver ${second.ip.replaceAll(".", "\\.")}$`, "m"),
      );
      const r = await second.ns.exec([
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        cluster.caFile,
        "-H",
        `Authorization: Bearer ${cluster.token}`,
        `${cluster.apiUrl}/version`,
      ]);
      assert.equal(r.stdout, "200");
      const www = await second.ns.exec(["getent", "hosts", "www.example.com"]);
      assert.match(www.stdout, /www\.example\.com/);
      await second.waitForDnsQuery("www.example.com");
      assert.ok(!(await cluster.laptopDnsQueries()).some((q) => q.from === second.ip));
      // Disposing one laptop early removes it and its /etc/netns directory only.
      await using third = await cluster.addLaptop("laptop3");
      assert.equal(third.ip, laptopAddresses(2).ip);
      await third[Symbol.asyncDispose]();
      assert.equal(await pathExists(`/etc/netns/${third.ns.name}`), false);
      assert.equal(await pathExists(`/etc/netns/${second.ns.name}`), true);
    });
  }
  for (const p of paths) assert.equal(await pathExists(p), false, `${p} is left behind`);
  assert.deepEqual(await Deno.readFile("/etc/resolv.conf"), hostResolvConf);
});
