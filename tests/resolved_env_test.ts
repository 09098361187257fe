/**
 * The systemd-resolved test environment (tests/resolved/env.ts): a real resolved with its own
 * D-Bus system bus in the test cluster's laptop namespace and a private mount namespace.
 * Checks that it works like resolved on a laptop (stub resolv.conf, global upstream, per-link
 * DNS servers and routing domains, revert), records the behaviour that kconnect's resolver
 * relies on, and that nothing is left behind.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import assert from "node:assert/strict";
import { TestCluster, UPSTREAM_IPS } from "./cluster/cluster.ts";
import { LAPTOP_SEARCH_DOMAIN } from "./cluster/topology.ts";
import { LinkDns } from "./resolved/link_dns.ts";
import { pidsInMountNamespace, RESOLVED_DIR, ResolvedEnv } from "./resolved/env.ts";
import { DENO_RUN } from "./_dataplane.ts";
import { LineWatcher } from "./_lines.ts";
import { pathExists } from "../src/host/_test_fs.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Attaches to the TUN named by argv[1] (TUNSETIFF, IFF_TUN | IFF_NO_PI) and holds it open,
 * as kconnect does, until stdin closes.
 */
const TUN_READER = `import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH22x", sys.argv[1].encode(), 0x0001 | 0x1000))
print("attached", flush=True)
sys.stdin.read()
os.close(fd)`;
const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;

/** The names the laptop's upstream received since its log was cleared. */
async function upstreamNames(cluster: TestCluster): Promise<string[]> {
  return (await cluster.laptopDnsQueries()).map((q) => q.name);
}

Deno.test({
  name: "ResolvedEnv: real systemd-resolved with per-link DNS in the laptop namespace, then gone",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  if (!await pathExists(`${RESOLVED_DIR}/VERSION`)) {
    throw new Error(`${RESOLVED_DIR} is missing: run \`sudo bash scripts/setup.sh\``);
  }
  const hostResolvConf = await Deno.readFile("/etc/resolv.conf");
  let mnt = "";
  let envDir = "";
  let resolvedPid = 0;
  {
    await using cluster = await TestCluster.start({ manager: false });
    const laptop = cluster.laptops[0];
    const netnsResolvConf = await Deno.readTextFile(cluster.laptopResolvConf);
    // The laptop's search domain as resolved would have it from DHCP (here: globally).
    await using env = await ResolvedEnv.start(cluster.laptop, {
      dns: [laptop.ip],
      domains: [LAPTOP_SEARCH_DOMAIN],
    });
    mnt = env.mountNamespace;
    envDir = env.dir;
    resolvedPid = env.resolvedPid!;
    console.log(`systemd-resolved ${env.version} (pid ${resolvedPid}) in ${mnt}`);

    await t.step("resolvectl status shows the global upstream and stub mode", async () => {
      const status = await env.resolvectl("status");
      assert.match(status, /resolv\.conf mode: stub/);
      assert.match(status, /DNS Servers:? 100\.64\.0\.2/);
      const conf = await env.readFile("/etc/resolv.conf");
      assert.match(conf, /^nameserver 127\.0\.0\.53$/m);
      const link = await env.exec(["readlink", "/etc/resolv.conf"]);
      assert.equal(link.stdout.trim(), "/run/systemd/resolve/stub-resolv.conf");
      // Outside the env nothing changed: not the host's file, not the laptop's netns file.
      assert.deepEqual(await Deno.readFile("/etc/resolv.conf"), hostResolvConf);
      assert.equal(await Deno.readTextFile(cluster.laptopResolvConf), netnsResolvConf);
      const plain = await cluster.laptop.exec(["cat", "/etc/resolv.conf"]);
      assert.equal(plain.stdout, netnsResolvConf);
    });

    await t.step("getent resolves through resolved's stub to the upstream", async () => {
      await laptop.clearDnsLog();
      const v4 = await env.exec(["getent", "ahostsv4", "www.example.com"]);
      assert.match(v4.stdout, new RegExp(`^${UPSTREAM_IPS.www.replaceAll(".", "\\.")}\\s`));
      const both = await env.exec(["getent", "hosts", "www.example.com"]);
      assert.match(both.stdout, /^2001:db8::10\s+www\.example\.com/);
      const q = await laptop.waitForDnsQuery("www.example.com");
      // resolved asks from the laptop's address (the stub is 127.0.0.53; glibc never reaches
      // the upstream itself).
      assert.equal(q.from, laptop.ip);
      const via = await env.resolvectl("query", "-4", "www.example.com");
      assert.match(via, /192\.0\.2\.10/);
      const missing = await env.exec(["getent", "hosts", "nope.example.com"], { check: false });
      assert.equal(missing.code, 2);
      const dig = await env.exec(["dig", "+time=2", "+tries=1", "nope.example.com"]);
      assert.match(dig.stdout, /status: NXDOMAIN/);
      assert.match(dig.stdout, /SERVER: 127\.0\.0\.53#53/);
    });

    await t.step("per-link DNS server and routing domain on a link; revert", async (t) => {
      await using dns = await LinkDns.start(cluster.laptop, {
        records: {
          "x.example.internal": "203.0.113.7",
          "web.default.svc.cluster.local": "10.96.0.20",
          "web.default": "10.96.0.20",
        },
      });
      // 198.18.0.3 is not on kc-test0's subnet and the laptop has no route to it.
      const route = await cluster.laptop.exec(["ip", "route", "get", dns.server], {
        check: false,
      });
      assert.notEqual(route.code, 0, route.stdout);
      await env.resolvectl("dns", dns.link, dns.server);
      await env.resolvectl("domain", dns.link, "~example.internal");
      await env.resolvectl("default-route", dns.link, "false");
      const status = await env.resolvectl("status", dns.link);
      assert.match(status, /Current Scopes: DNS/);
      assert.match(status, /-DefaultRoute/);
      assert.match(status, /DNS Servers: 198\.18\.0\.3/);
      assert.match(status, /DNS Domain: ~example\.internal/);

      await laptop.clearDnsLog();
      const x = await env.exec(["getent", "ahostsv4", "x.example.internal"]);
      assert.match(x.stdout, /^203\.0\.113\.7\s/);
      assert.ok((await dns.names()).includes("x.example.internal"));
      assert.equal((await dns.queries())[0].from, "10.99.0.1");
      const www = await env.exec(["getent", "ahostsv4", "www.example.com"]);
      assert.match(www.stdout, /^192\.0\.2\.10\s/);
      await laptop.waitForDnsQuery("www.example.com");
      assert.ok(!(await dns.names()).includes("www.example.com"));
      assert.ok(!(await upstreamNames(cluster)).some((n) => n.endsWith("example.internal")));

      await t.step("a search domain on the link: glibc expands single labels", async () => {
        await env.resolvectl(
          "domain",
          dns.link,
          "~example.internal",
          "~cluster.local",
          "~svc",
          "~default",
          "default.svc.cluster.local",
        );
        const conf = await env.readFile("/etc/resolv.conf");
        assert.match(conf, /^search .*\bdefault\.svc\.cluster\.local\b/m);
        await dns.clear();
        await laptop.clearDnsLog();
        const web = await env.exec(["getent", "ahostsv4", "web"]);
        assert.match(web.stdout, /^10\.96\.0\.20\s+STREAM web\.default\.svc\.cluster\.local/);
        // ndots is 1 in the stub resolv.conf: "web.default" is tried as it is, and the
        // single-label routing domain ~default sends it to the link.
        const wd = await env.exec(["getent", "ahostsv4", "web.default"]);
        assert.match(wd.stdout, /^10\.96\.0\.20\s+STREAM web\.default$/m);
        // .local names go to unicast DNS only through a link that routes them.
        const svc = await env.exec(["getent", "ahostsv4", "web.default.svc.cluster.local"]);
        assert.match(svc.stdout, /^10\.96\.0\.20\s/);
        const names = await dns.names();
        for (const n of ["web.default.svc.cluster.local", "web.default"]) {
          assert.ok(names.includes(n), `${n} not in ${names}`);
        }
        assert.ok(!names.includes("web"), `a bare single label reached the link: ${names}`);
        // No cluster name reached the laptop's upstream. But the stub's search line lists the
        // global (and lower-ifindex links') domains first, so glibc tried web.corp.example
        // upstream before web.default.svc.cluster.local: single labels do leak that way.
        assert.match(conf, /^search corp\.example default\.svc\.cluster\.local$/m);
        const upstream = await upstreamNames(cluster);
        assert.ok(
          upstream.every((n) => n === "web.corp.example"),
          `upstream got ${upstream}`,
        );
        // A single label sent to the stub as it is (no search list) is refused; resolvectl
        // query applies the search list itself.
        const dig = await env.exec(["dig", "+time=2", "+tries=1", "web"]);
        assert.match(dig.stdout, /status: REFUSED/);
        assert.match(await env.resolvectl("query", "-4", "web"), /10\.96\.0\.20/);
        // The laptop's own search domain still works: each expansion goes where its domain
        // routes it (the cluster's to the link, corp.example's to the upstream).
        await dns.clear();
        await laptop.clearDnsLog();
        const intranet = await env.exec(["getent", "ahostsv4", "intranet"]);
        assert.match(intranet.stdout, /^192\.0\.2\.20\s+STREAM intranet\.corp\.example/);
        console.log("link:", await dns.names(), "upstream:", await upstreamNames(cluster));
        assert.deepEqual(await dns.names(), []);
        assert.ok(!(await upstreamNames(cluster)).some((n) => n.includes("cluster.local")));
      });

      await t.step("resolved remembers link settings across its restart", async () => {
        await env.restartResolved();
        const st = await env.resolvectl("status", dns.link);
        assert.match(st, /DNS Servers: 198\.18\.0\.3/);
        assert.match(st, /~example\.internal/);
      });

      await t.step({
        name: "the same through D-Bus with busctl",
        fn: async () => {
          // The env's busctl (unpacked from the systemd .deb by setup.sh), never the host's.
          const which = await env.exec(["sh", "-c", "command -v busctl"], { check: false });
          assert.equal(which.stdout.trim(), `${env.binDir}/busctl`, which.stderr);
          assert.ok(
            await pathExists(`${RESOLVED_DIR}/root/usr/bin/busctl`),
            `${RESOLVED_DIR}/root/usr/bin/busctl is missing: run \`sudo bash scripts/setup.sh\``,
          );
          const ifindex = (await env.readFile(`/sys/class/net/${dns.link}/ifindex`)).trim();
          const call = (member: string, sig: string, ...args: string[]) =>
            env.exec([
              "busctl",
              "call",
              "org.freedesktop.resolve1",
              "/org/freedesktop/resolve1",
              "org.freedesktop.resolve1.Manager",
              member,
              sig,
              ifindex,
              ...args,
            ]);
          await call("RevertLink", "i");
          await call("SetLinkDNS", "ia(iay)", "1", "2", "4", "198", "18", "0", "3");
          await call("SetLinkDomains", "ia(sb)", "1", "example.internal", "true");
          await call("SetLinkDefaultRoute", "ib", "false");
          const st = await env.resolvectl("status", dns.link);
          assert.match(st, /DNS Servers: 198\.18\.0\.3/);
          assert.match(st, /DNS Domain: ~example\.internal/);
          assert.match(st, /-DefaultRoute/);
        },
      });

      await t.step("resolvectl revert removes them; the name goes upstream again", async () => {
        await env.resolvectl("revert", dns.link);
        const st = await env.resolvectl("status", dns.link);
        assert.doesNotMatch(st, /DNS Servers/);
        assert.doesNotMatch(st, /example\.internal/);
        assert.match(st, /Current Scopes: none/);
        assert.match(await env.readFile("/etc/resolv.conf"), /^search corp\.example$/m);
        await dns.clear();
        await laptop.clearDnsLog();
        const x = await env.exec(["getent", "hosts", "x.example.internal"], { check: false });
        assert.equal(x.code, 2);
        await laptop.waitForDnsQuery("x.example.internal");
        assert.deepEqual(await dns.names(), []);
      });
    });

    await t.step("a TUN link with an address is used only while a reader holds it", async () => {
      const scopes = async () =>
        /Current Scopes: (.*)/.exec(await env.resolvectl("status", "kc-tun0"))?.[1].trim();
      /** Polls until the link's scopes are `want` (resolved follows netlink events). */
      const until = async (want: string, what: string) => {
        const deadline = Date.now() + 30_000;
        let got = await scopes();
        while (got !== want && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          got = await scopes();
        }
        assert.equal(got, want, what);
      };
      await cluster.laptop.exec(["ip", "tuntap", "add", "mode", "tun", "name", "kc-tun0"]);
      let reader: Deno.ChildProcess | null = null;
      try {
        await cluster.laptop.exec(["ip", "link", "set", "kc-tun0", "up"]);
        await env.resolvectl("dns", "kc-tun0", "198.18.8.3");
        await env.resolvectl("domain", "kc-tun0", "~tun.example");
        assert.match(await env.resolvectl("status", "kc-tun0"), /DNS Servers: 198\.18\.8\.3/);
        // No process holds the TUN open: NO-CARRIER, so resolved does not use the link and
        // names of its routing domains would go to the global servers.
        await cluster.laptop.exec(["ip", "addr", "add", "198.18.8.1/29", "dev", "kc-tun0"]);
        await until("none", "an address but no reader: not used");
        // A reader attaches (as kconnect's process does): carrier, and the link is used.
        reader = cluster.laptop.spawn(["python3", "-c", TUN_READER, "kc-tun0"], {
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        });
        const out = new LineWatcher(reader.stdout);
        const err = new LineWatcher(reader.stderr);
        await out.waitFor(/^attached$/, 30_000).catch((e) => {
          throw new Error(`${(e as Error).message}\n${err.text()}`);
        });
        const carrier = await cluster.laptop.exec(["ip", "link", "show", "kc-tun0"]);
        assert.doesNotMatch(carrier.stdout, /NO-CARRIER/, "the reader gave the link carrier");
        await until("DNS", "a reader and an address: used for DNS");
        // The reader goes: no carrier, not used.
        await reader.stdin.close();
        assert.equal((await reader.status).code, 0, err.text());
        reader = null;
        await until("none", "the reader gone: not used");
        await env.resolvectl("revert", "kc-tun0");
      } finally {
        if (reader !== null) {
          try {
            reader.kill("SIGKILL");
          } catch { /* gone */ }
          await reader.status;
        }
        await cluster.laptop.exec(["ip", "link", "del", "kc-tun0"], { check: false });
      }
    });

    await t.step("deno runs kconnect inside the env (the Deno cache is visible)", async () => {
      const r = await env.exec([...DENO_RUN, "-A", `${ROOT}main.ts`, "--help"]);
      assert.match(r.stdout, /Usage: kconnect/);
      const tmp = await env.exec([
        "sh",
        "-c",
        'echo $PWD; test -d "${DENO_DIR:-/root/.cache/deno}" && echo ok',
      ]);
      assert.match(tmp.stdout, /ok/);
    });

    await t.step("spawned commands see the env too", async () => {
      const child = env.spawn(["sh", "-c", "readlink /etc/resolv.conf; sleep 30"], {
        stdout: "piped",
      });
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      assert.match(new TextDecoder().decode(value), /stub-resolv\.conf/);
      assert.deepEqual(await pidsInMountNamespace(mnt).then((p) => p.includes(child.pid)), true);
      // Left running: dispose stops it.
    });
  }

  await t.step("dispose leaves nothing behind", async () => {
    assert.deepEqual(await pidsInMountNamespace(mnt), []);
    assert.equal(await pathExists(`/proc/${resolvedPid}`), false);
    assert.equal(await pathExists(envDir), false);
    assert.deepEqual(await Deno.readFile("/etc/resolv.conf"), hostResolvConf);
    const mounts = await Deno.readTextFile("/proc/self/mountinfo");
    assert.doesNotMatch(mounts, /kc-resolved/);
  });
});
