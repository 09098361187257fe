/**
 * Cluster names on the laptop, end to end through the laptop's own system resolver: glibc
 * (`getent`, curl) and dig, with /etc/resolv.conf pointed at kconnect, and with a real
 * systemd-resolved in a private mount and D-Bus namespace. Root only.
 */
import { httpStatus } from "./_http.ts";
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { ResolvedEnv } from "./resolved/env.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { linkExists, type Netns } from "./_netns.ts";
import { startUp, testStateDir } from "./_up.ts";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";

async function getent(
  ns: { exec: Netns["exec"] },
  name: string,
  db = "ahostsv4",
): Promise<string[]> {
  const r = await ns.exec(["getent", db, name], { check: false });
  return [...new Set(r.stdout.trim().split("\n").filter((l) => l).map((l) => l.split(/\s+/)[0]))];
}

async function dig(ns: Netns, args: string[]) {
  const r = await ns.exec(["dig", "+time=10", "+tries=1", ...args], { check: false });
  return {
    status: /status: (\w+)/.exec(r.stdout)?.[1] ?? "none",
    server: /SERVER: (\S+)/.exec(r.stdout)?.[1] ?? "none",
    answers: r.stdout,
  };
}

async function short(ns: Netns, args: string[]): Promise<string> {
  const r = await ns.exec(["dig", "+short", "+time=3", "+tries=1", ...args], { check: false });
  return r.stdout.trim().split("\n").sort().join(" ");
}

Deno.test({
  name: "resolv.conf mode: cluster names resolve through the system resolver, others as before",
  ...E2E_TEST,
  fn: async (t) => {
    let before = new Uint8Array();
    await using connected = await connectedLaptop({
      up: ["--dns", "resolv.conf", "--log-level", "debug"],
      beforeUp: async (c) => {
        before = await Deno.readFile(c.laptopResolvConf);
      },
    });
    const { cluster, laptop, up } = connected;
    assert.match(
      up.out.text(),
      /✓ DNS: resolv\.conf: default\.svc\.cluster\.local .* reached kconnect/,
    );

    await t.step("curl by full, namespace and short name", async () => {
      for (const host of ["web.default.svc.cluster.local", "web.default", "web"]) {
        assert.equal(await httpStatus(laptop, `http://${host}/`), "200", host);
      }
    });

    await t.step("getent hosts for each form, and redis by short name", async () => {
      for (
        const host of ["web.default.svc.cluster.local", "web.default.svc", "web.default", "web"]
      ) {
        assert.deepEqual(await getent(laptop, host), ["10.96.0.20"], host);
      }
      const r = await laptop.exec(["redis-cli", "-h", "redis", "PING"]);
      assert.equal(r.stdout.trim(), "PONG");
    });

    await t.step("dig over UDP and over TCP", async () => {
      assert.equal(await short(laptop, ["web.default.svc.cluster.local"]), "10.96.0.20");
      assert.equal(await short(laptop, ["+tcp", "web.default.svc.cluster.local"]), "10.96.0.20");
      assert.equal(
        await short(laptop, ["+tcp", "@198.18.0.3", "redis.default.svc.cluster.local"]),
        "10.96.0.21",
      );
    });

    await t.step("a headless service returns every pod IP", async () => {
      assert.equal(
        await short(laptop, ["db.default.svc.cluster.local"]),
        "10.244.0.20 10.244.0.21",
      );
      assert.deepEqual((await getent(laptop, "db.default.svc.cluster.local", "ahostsv4")).sort(), [
        "10.244.0.20",
        "10.244.0.21",
      ]);
    });

    // An answer, not a timeout (dig waits 10 s); how long it takes is bench/dns.ts's business.
    await t.step("a name that does not exist is NXDOMAIN, answered by kconnect", async () => {
      const r = await dig(laptop, ["nosuch.default.svc.cluster.local"]);
      assert.equal(r.status, "NXDOMAIN", r.answers);
      assert.equal(r.server, "198.18.0.3#53(198.18.0.3)", r.answers);
      const g = await laptop.exec(["getent", "hosts", "nosuch.default.svc.cluster.local"], {
        check: false,
      });
      assert.equal(g.code, 2, "getent: not found");
    });

    await t.step("a reverse lookup of a service IP returns its name", async () => {
      assert.equal(await short(laptop, ["-x", "10.96.0.20"]), "web.default.svc.cluster.local.");
    });

    await t.step(
      "names outside the cluster resolve as before, through the original server",
      async () => {
        await cluster.laptops[0].clearDnsLog();
        assert.deepEqual(await getent(laptop, "www.example.com"), ["192.0.2.10"]);
        assert.deepEqual(
          await getent(laptop, "intranet"),
          ["192.0.2.20"],
          "the original search list still works",
        );
        const seen = (await cluster.laptops[0].dnsQueries()).map((q) => q.name);
        assert.ok(seen.includes("www.example.com"), seen.join(","));
        assert.ok(
          !seen.some((n) => n.includes("cluster.local")),
          `cluster names leaked upstream: ${seen}`,
        );
      },
    );

    await t.step(
      "search-list expansion of outside names sends no lookups through the tunnel",
      async () => {
        const mark = up.err.lines.length;
        assert.deepEqual(await getent(laptop, "www.example.com"), ["192.0.2.10"]);
        const missing = await laptop.exec(["getent", "hosts", "nosuch.example.com"], {
          check: false,
        });
        assert.equal(missing.code, 2, "getent: not found");
        // Positive control and flush barrier: a fresh cluster name does cost a lookup, and its
        // log line comes after any the names above caused.
        const control = `control-${crypto.randomUUID().slice(0, 8)}.default.svc.cluster.local`;
        await laptop.exec(["getent", "hosts", control], { check: false });
        const re = new RegExp(`cluster lookup ${control.replaceAll(".", "\\.")}`);
        await up.err.waitFor(re, 30_000);
        const window = up.err.lines.slice(mark);
        const lookups = window.slice(0, window.findIndex((l) => re.test(l)))
          .filter((l) => /cluster lookup/.test(l));
        assert.deepEqual(lookups, [], "no cluster lookups for ordinary names");
      },
    );

    await t.step("after SIGTERM resolv.conf is byte for byte what it was", async () => {
      assert.notDeepEqual(await Deno.readFile(cluster.laptopResolvConf), before);
      assert.equal(await up.stop(), 0, up.err.text());
      assert.deepEqual(await Deno.readFile(cluster.laptopResolvConf), before);
      assert.deepEqual(await getent(laptop, "web.default.svc.cluster.local"), []);
    });
  },
});

Deno.test({
  name:
    "resolv.conf mode: after kill -9, kconnect down (or the next up) restores resolv.conf exactly",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const laptop = cluster.laptop;
    const before = await Deno.readFile(cluster.laptopResolvConf);
    const args = ["--kubeconfig", cluster.kubeconfig, "--dns", "resolv.conf"];

    const first = await startUp(laptop, args);
    await first.stop("SIGKILL");
    assert.notDeepEqual(
      await Deno.readFile(cluster.laptopResolvConf),
      before,
      "left behind by kill -9",
    );
    const down = await laptop.exec([
      ...DENO_RUN,
      "-A",
      `${ROOT}main.ts`,
      "down",
      "--state-dir",
      testStateDir(laptop),
    ]);
    assert.match(down.stdout, /undone: \/etc\/resolv\.conf restored/);
    assert.deepEqual(await Deno.readFile(cluster.laptopResolvConf), before);
    const again = await laptop.exec([
      ...DENO_RUN,
      "-A",
      `${ROOT}main.ts`,
      "down",
      "--state-dir",
      testStateDir(laptop),
    ]);
    assert.match(again.stdout, /not connected; nothing to undo/);

    const second = await startUp(laptop, args);
    await second.stop("SIGKILL");
    await using third = await startUp(laptop, args);
    assert.match(
      third.out.text(),
      /cleaned up after an earlier run that did not exit cleanly: \/etc\/resolv\.conf restored/,
    );
    assert.equal(await third.stop(), 0);
    assert.deepEqual(await Deno.readFile(cluster.laptopResolvConf), before);
  },
});

Deno.test({
  name:
    "the DNS server survives garbage, oversized names and floods, shedding load in bounded memory",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({
      up: ["--dns", "resolv.conf", "--log-level", "debug"],
    });
    const { laptop, up } = connected;
    const rss = async () =>
      Number(/VmRSS:\s+(\d+)/.exec(await Deno.readTextFile(`/proc/${up.child.pid}/status`))![1]);
    const before = await rss();
    let peak = before;
    // A fixed number of queries per flood, however long sending them takes on this machine.
    const FLOOD = 20000;
    for (let i = 0; i < 3; i++) {
      const r = await laptop.exec([
        ...DENO_RUN,
        "-A",
        "--unstable-net",
        `${ROOT}tests/fixtures/dns_abuse.ts`,
        "198.18.0.3",
        String(FLOOD),
      ]);
      const report = JSON.parse(r.stdout.trim().split("\n").pop()!);
      assert.equal(report.formerrForLongName, true, JSON.stringify(report));
      assert.equal(report.floodSent, FLOOD, JSON.stringify(report));
      assert.ok(
        report.floodAnswered > 0,
        `the server kept answering during the flood: ${JSON.stringify(report)}`,
      );
      peak = Math.max(peak, await rss());
    }
    // Load is shed: queries past the in-flight limit are dropped (dnsDropped), not queued. The
    // memory bounds are generous (a busy machine must not fail them); without shedding, the
    // lookups kept in flight through the tunnel took kconnect's RSS to about 460 MiB.
    const stats = await up.err.waitFor(/DEBUG up: stats .*dnsDropped=[1-9]/, 30_000);
    assert.ok(peak - before < 256 * 1024, `RSS grew by ${peak - before} KiB`);
    const heap = Number(/heapMiB=([\d.]+)/.exec(stats)![1]);
    assert.ok(heap < 256, `heap ${heap} MiB`);
    assert.equal(
      await short(laptop, ["web.default.svc.cluster.local"]),
      "10.96.0.20",
      "still answering",
    );
  },
});

Deno.test({
  name:
    "systemd-resolved mode: split DNS on the TUN link, short names, and nothing left after exit",
  ...E2E_TEST,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33", managerRefreshSeconds: 1 });
    await using env = await ResolvedEnv.start(cluster.laptop, {
      dns: [cluster.laptops[0].ip],
      domains: ["corp.example"],
    });
    const globalBefore = await env.resolvectl("dns");
    const args = [
      "--kubeconfig",
      cluster.kubeconfig,
      "--dns",
      "auto",
      "--state-dir",
      `${env.dir}/state`,
    ];
    const up = await startUp(cluster.laptop, args, env);
    assert.match(
      up.out.text(),
      /✓ DNS: systemd-resolved: default\.svc\.cluster\.local .* reached kconnect/,
    );

    await t.step(
      "the TUN link carries kconnect's server and the cluster's routing domains",
      async () => {
        const link = await env.resolvectl("status", "kconnect0");
        assert.match(link, /198\.18\.0\.3/);
        assert.match(link, /DNS Domain: .*cluster\.local/);
        assert.match(
          link,
          /default\.svc\.cluster\.local/,
          "the connected namespace is a search domain",
        );
        assert.match(link, /~default/);
        assert.match(link, /-DefaultRoute/);
      },
    );

    await t.step("getent and curl by full, namespace and short name", async () => {
      for (const host of ["web.default.svc.cluster.local", "web.default", "web"]) {
        assert.deepEqual(await getent(env, host), ["10.96.0.20"], host);
      }
      assert.equal(await httpStatus(env, "http://web.default/"), "200");
    });

    await t.step(
      "other names still go to the global upstream, and cluster names do not",
      async () => {
        await cluster.laptops[0].clearDnsLog();
        assert.deepEqual(await getent(env, "www.example.com"), ["192.0.2.10"]);
        await getent(env, "web.default.svc.cluster.local");
        const seen = (await cluster.laptops[0].dnsQueries()).map((q) => q.name);
        assert.ok(seen.includes("www.example.com"));
        assert.ok(!seen.some((n) => n.endsWith("cluster.local")), `leaked: ${seen}`);
      },
    );

    await t.step(
      "a namespace that disappears stops being a routing domain; a new one is not made one mid-session",
      async () => {
        const api = (method: string, path: string, body?: unknown) =>
          cluster.laptop.exec([
            "curl",
            "-sS",
            "--fail",
            "--cacert",
            cluster.caFile,
            "-H",
            `Authorization: Bearer ${cluster.token}`,
            "-H",
            "Content-Type: application/json",
            "-X",
            method,
            ...(body ? ["--data", JSON.stringify(body)] : []),
            `${cluster.apiUrl}${path}`,
          ]);
        const domains = async () =>
          (await env.resolvectl("status", "kconnect0")).replace(/\s+/g, " ");
        const until = async (ok: (d: string) => boolean, what: string) => {
          for (let i = 0; i < 100; i++) {
            if (ok(await domains())) return;
            await new Promise((r) => setTimeout(r, 100));
          }
          throw new Error(`${what}: ${await domains()}`);
        };
        // Narrowing is automatic: a namespace that existed at up and is deleted goes.
        assert.match(await domains(), /~kube-public/);
        await api("DELETE", "/api/v1/namespaces/kube-public");
        await until((d) => !d.includes("~kube-public"), "the deleted namespace stopped being one");
        // Widening is not (security review H1): a namespace created mid-session would capture
        // `*.<name>` for every program, so it is refused, reported, and needs a new up.
        await api("POST", "/api/v1/namespaces", {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: "payments" },
        });
        await up.err.waitFor(/refused .*namespace "payments"/, 30_000);
        assert.doesNotMatch(await domains(), /~payments/);
      },
    );

    await t.step(
      "after SIGTERM the link's settings are gone and the global ones untouched",
      async () => {
        assert.equal(await up.stop(), 0, up.err.text());
        assert.equal(await linkExists(env, "kconnect0"), false, "the TUN is gone");
        assert.doesNotMatch(await env.resolvectl("status"), /kconnect0|198\.18\.0\.3/);
        assert.equal(await env.resolvectl("dns"), globalBefore);
        assert.deepEqual(await getent(env, "web.default.svc.cluster.local"), []);
      },
    );

    await t.step(
      "after kill -9 the link is gone with the TUN, and down clears the journal",
      async () => {
        const again = await startUp(cluster.laptop, args, env);
        await again.stop("SIGKILL");
        const down = await env.exec([
          ...DENO_RUN,
          "-A",
          `${ROOT}main.ts`,
          "down",
          "--state-dir",
          `${env.dir}/state`,
        ]);
        assert.match(down.stdout, /undone: kconnect0 is gone, and its DNS settings with it/);
        assert.equal(await env.resolvectl("dns"), globalBefore);
      },
    );
  },
});
