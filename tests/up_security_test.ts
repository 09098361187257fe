/**
 * `kconnect up` against input it must not trust (security review C1, H1), end to end through
 * the daemon in a test cluster's laptop namespace: a kubeconfig context namespace that is a path,
 * `--dns macos` on Linux, and a traffic manager that announces public prefixes, a public cluster
 * domain and hostile namespace names, then a wider prefix mid-session. Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { isRoot, type Netns } from "./_netns.ts";
import { daemonPaths, kconnect } from "./_up.ts";
import type { StatusReport } from "../src/daemon/status.ts";
import { pathExists } from "../src/host/_test_fs.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

/** Watches `paths` every few ms until stopped; resolves with those that ever existed. */
function watchPaths(paths: string[]): { stop(): Promise<string[]> } {
  const seen = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of paths) if (await pathExists(p)) seen.add(p);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return [...seen];
    },
  };
}

async function routesOf(ns: Netns, dev: string): Promise<string> {
  const v4 = await ns.exec(["ip", "-4", "route", "show", "dev", dev], { check: false });
  const v6 = await ns.exec(["ip", "-6", "route", "show", "dev", dev], { check: false });
  return v4.stdout + v6.stdout;
}

Deno.test({
  name:
    "a kubeconfig context namespace of ../x: up --dns macos fails and writes no file; with --dns off it is refused by name",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const env = paths.env;
    const laptop = cluster.laptop;
    const tag = `kc-sec-${crypto.randomUUID().slice(0, 8)}`;
    const kubeconfig = `${paths.dir}/kubeconfig`;
    const text = await Deno.readTextFile(cluster.kubeconfig);
    assert.match(text, /namespace: default/);
    await Deno.writeTextFile(
      kubeconfig,
      text.replaceAll("namespace: default", `namespace: "../${tag}"`),
    );
    // Where root would write: /etc/resolver/../<tag> is /etc/<tag>.
    const hadResolverDir = await pathExists("/etc/resolver");
    const targets = [`/etc/${tag}`, `/etc/resolver/../${tag}`];
    try {
      const watch = watchPaths(targets);
      const up = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig, "--dns", "macos"], {
        env,
      });
      const written = await watch.stop();
      assert.deepEqual(written, [], "no file outside /etc/resolver, not even for a moment");
      assert.notEqual(up.code, 0, `up must fail:\n${up.stdout}\n${up.stderr}`);
      assert.match(up.stderr, /dns: "macos" \(files in \/etc\/resolver\) works on macOS only/);
      assert.equal(await pathExists("/etc/resolver"), hadResolverDir, "/etc/resolver untouched");

      const off = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig, "--dns", "off"], {
        env,
      });
      assert.notEqual(off.code, 0, `up must fail:\n${off.stdout}\n${off.stderr}`);
      assert.match(
        off.stderr,
        new RegExp(
          `Invalid kubeconfig context "test": namespace: "\\.\\./${tag}" is not a namespace name`,
        ),
      );
      assert.doesNotMatch(off.stdout, /✓ TUN/);
    } finally {
      await kconnect(laptop, ["down"], { env });
      for (const t of targets) await Deno.remove(t).catch(() => {});
      if (!hadResolverDir) await Deno.remove("/etc/resolver", { recursive: true }).catch(() => {});
    }
  },
});

interface Networks {
  domain: string;
  serviceCidrs: string[];
  podCidrs: string[];
  namespaces: string[];
}

/** Context of a test against `tests/fixtures/hostile_manager.ts`. */
interface Hostile {
  cluster: TestCluster;
  laptop: Netns;
  env: Record<string, string>;
  /** Changes what the manager announces (it reads the file every second). */
  announce(n: Networks): Promise<void>;
}

/** Runs `fn` with a test cluster whose traffic manager announces `first`, then what it is told. */
async function withHostileManager(first: Networks, fn: (h: Hostile) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "kc-hostile-" });
  const file = `${dir}/networks.json`;
  const announce = (n: Networks) => Deno.writeTextFile(file, JSON.stringify(n));
  await announce(first);
  try {
    await using cluster = await TestCluster.start({
      managerCommand: [...DENO_RUN, "-A", `${ROOT}tests/fixtures/hostile_manager.ts`, file],
    });
    await using paths = await daemonPaths();
    const env = paths.env;
    try {
      await fn({ cluster, laptop: cluster.laptop, env, announce });
    } finally {
      await kconnect(cluster.laptop, ["down"], { env });
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function status(h: Hostile): Promise<StatusReport> {
  const r = await kconnect(h.laptop, ["status", "--json"], { env: h.env });
  return JSON.parse(r.stdout) as StatusReport;
}

Deno.test({
  name:
    "a hostile traffic manager: public prefixes, a public cluster domain and bad namespaces are refused and shown by up and status",
  ...opts,
  fn: () =>
    withHostileManager({
      domain: "example.com",
      // No route of the laptop's overlaps these, so only the policy stands in their way.
      serviceCidrs: ["10.96.0.0/12", "8.8.8.0/24"],
      podCidrs: ["10.244.0.0/24", "128.0.0.0/2"],
      namespaces: ["default", "kconnect", "com.", "../x", "a\nb"],
    }, async (h) => {
      const up = await kconnect(h.laptop, [
        "up",
        "--kubeconfig",
        h.cluster.kubeconfig,
        "--dns",
        "off",
      ], { env: h.env });
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.match(
        up.stdout,
        /^! refused service CIDR 8\.8\.8\.0\/24 from the traffic manager: outside private ranges \(10\.0\.0\.0\/8, 172\.16\.0\.0\/12, 192\.168\.0\.0\/16, 100\.64\.0\.0\/10\); add it with --also-proxy 8\.8\.8\.0\/24 to allow$/m,
      );
      assert.match(up.stdout, /^! refused pod CIDR 128\.0\.0\.0\/2 from the traffic manager/m);
      assert.match(
        up.stdout,
        /^! refused cluster domain "example\.com" from the traffic manager: \.com is a public top-level domain/m,
      );
      assert.match(up.stdout, /^! refused namespace "\.\.\/x" from the traffic manager/m);
      assert.match(up.stdout, /^! refused namespace "a\\nb" from the traffic manager/m);
      assert.match(up.stdout, /✓ cluster networks: domain cluster\.local,/);
      assert.match(up.stdout, /✓ routes: 10\.96\.0\.0\/12, 10\.244\.0\.0\/24 via kconnect0/);
      const curl = await h.laptop.exec(["curl", "-sS", "-m", "10", "http://10.96.0.20/"]);
      assert.equal(curl.stdout, "hello from web\n");

      const s = (await status(h)).session!;
      assert.equal(s.clusterDomain, "cluster.local");
      assert.deepEqual(s.routes.sort(), ["10.244.0.0/24", "10.96.0.0/12"]);
      assert.deepEqual(s.serviceCidrs.map((c) => c.cidr), ["10.96.0.0/12"]);
      const items = s.refused.map((r) => r.item);
      for (
        const i of [
          "service CIDR 8.8.8.0/24",
          "pod CIDR 128.0.0.0/2",
          'cluster domain "example.com"',
          'namespace "com."',
          'namespace "../x"',
          'namespace "a\\nb"',
        ]
      ) assert.ok(items.includes(i), `${i} in ${JSON.stringify(items)}`);
      assert.doesNotMatch(
        await routesOf(h.laptop, "kconnect0"),
        /^(8\.8\.8\.0\/24|128\.0\.0\.0\/2) /m,
      );
      const text = await kconnect(h.laptop, ["status"], { env: h.env });
      assert.match(
        text.stdout,
        /^refused: +service CIDR 8\.8\.8\.0\/24 from the traffic manager: outside private ranges/m,
      );
    }),
});

Deno.test({
  name:
    "a traffic manager that pushes a wider prefix, a public /32 and a new namespace mid-session: no new route, each refused in status",
  ...opts,
  fn: () =>
    withHostileManager({
      domain: "cluster.local",
      serviceCidrs: ["10.96.0.0/12"],
      podCidrs: ["10.244.0.0/24"],
      namespaces: ["default", "kconnect"],
    }, async (h) => {
      const up = await kconnect(h.laptop, [
        "up",
        "--kubeconfig",
        h.cluster.kubeconfig,
        "--dns",
        "off",
      ], { env: h.env });
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.doesNotMatch(up.stdout, /refused/);
      assert.deepEqual((await status(h)).session!.refused ?? [], []); // ?? []: also before the fix

      await h.announce({
        domain: "cluster.local",
        serviceCidrs: ["10.96.0.0/12", "1.1.1.1/32"],
        podCidrs: ["10.244.0.0/24", "10.250.0.0/16"],
        namespaces: ["default", "kconnect", "payments"],
      });
      // Until the daemon has taken the new info: refused it (or, before the fix, routed it).
      let refused: string[] = [];
      let routes = "";
      for (let i = 0; i < 100; i++) {
        refused = ((await status(h)).session!.refused ?? []).map((x) => x.item);
        routes = await routesOf(h.laptop, "kconnect0");
        if (refused.includes("pod CIDR 10.250.0.0/16") || routes.includes("10.250.")) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.doesNotMatch(routes, /10\.250\.0\.0\/16|1\.1\.1\.1/);
      assert.match(routes, /^10\.96\.0\.0\/12 /m);
      assert.ok(refused.includes("pod CIDR 10.250.0.0/16"), JSON.stringify(refused));
      assert.ok(refused.includes("service CIDR 1.1.1.1/32"), JSON.stringify(refused));
      assert.ok(refused.includes('routing domain for namespace "payments"'));
      const text = await kconnect(h.laptop, ["status"], { env: h.env });
      assert.match(
        text.stdout,
        /^refused: +pod CIDR 10\.250\.0\.0\/16 from the traffic manager: announced after connecting, outside the networks accepted then; a new kconnect up accepts it$/m,
      );
    }),
});
