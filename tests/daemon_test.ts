/**
 * The kconnect daemon end to end, in a test cluster's laptop namespace: `up` through the daemon
 * (started by a root `up`, or as the service unit's command), `status --json` checked against
 * the real routing table, TUN and resolv.conf, `down`, a second `up`, non-root users in and out
 * of the daemon's group, the user who ran `sudo kconnect up` using a daemon that has no group,
 * a named group that does not exist, and a daemon that cannot start. Every test takes the
 * default path (no KCONNECT_GROUP). Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { isRoot, Netns } from "./_netns.ts";
import { daemonPaths, kconnect, makeTestUser, sudoEnvOf } from "./_up.ts";
import type { StatusReport } from "../src/daemon/status.ts";
import { unitEnvironment, unitExecStart } from "../src/service/systemd.ts";
import { pathExists } from "../src/host/_test_fs.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

async function routesOf(ns: Netns, dev: string): Promise<string[]> {
  const out: string[] = [];
  for (const family of ["-4", "-6"]) {
    const r = await ns.exec(["ip", family, "route", "show", "dev", dev]);
    for (const line of r.stdout.split("\n")) {
      const dst = line.trim().split(/\s+/)[0];
      if (dst && !line.includes("proto kernel") && dst !== "fe80::/64") out.push(dst);
    }
  }
  return out.sort();
}

async function linkExists(ns: Netns, dev: string): Promise<boolean> {
  const r = await ns.exec(["ip", "link", "show", dev], { check: false });
  if (r.code === 0) return true;
  // Only this failure means "no such link"; any other (no ip, no namespace) fails the test.
  assert.match(r.stderr, /Device "[^"]+" does not exist/, `ip link show ${dev}: ${r.stderr}`);
  return false;
}

/** Checks a connected report against the namespace's real state. */
async function assertMatchesHost(ns: Netns, r: StatusReport, resolvConf?: string) {
  assert.equal(r.schema, 1);
  assert.equal(r.state, "connected");
  assert.ok(r.daemon && r.daemon.pid > 0);
  const s = r.session!;
  assert.equal(s.server, "https://100.64.0.1:6443");
  assert.equal(s.serverVersion, "v1.33.1");
  assert.ok(await linkExists(ns, s.tun.name), `TUN ${s.tun.name} exists`);
  assert.deepEqual(await routesOf(ns, s.tun.name), [...s.routes].sort());
  assert.deepEqual(s.serviceCidrs.map((c) => c.cidr), ["10.96.0.0/12"]);
  assert.deepEqual(s.podCidrs.map((c) => c.cidr), ["10.244.0.0/24"]);
  assert.ok(s.transports.length >= 1 && s.transports.every((t) => t.state === "open"));
  assert.ok(s.transports.some((t) => t.rttMs !== null));
  if (resolvConf !== undefined) {
    assert.equal(s.dns.mode, "resolv.conf");
    assert.ok(s.dns.searchDomains.length > 0, "resolv.conf mode has search domains");
    assert.match(
      resolvConf,
      new RegExp(`^nameserver ${s.dns.server.replaceAll(".", "\\.")}$`, "m"),
    );
    for (const d of s.dns.searchDomains) assert.ok(resolvConf.includes(d), d);
  } else {
    assert.equal(s.dns.mode, null);
  }
}

Deno.test({
  name:
    "sudo kconnect up with no daemon starts one; status --json matches routes and TUN; a second up says so; down stops it",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const laptop = cluster.laptop;
    const env = paths.env;
    const none = await kconnect(laptop, ["status"], { env });
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stdout, /not connected \(no kconnect daemon running\)/);

    try {
      const up = await kconnect(
        laptop,
        ["up", "--kubeconfig", cluster.kubeconfig, "--dns", "off"],
        {
          env,
        },
      );
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.match(up.stdout, /✓ cluster reached: https:\/\/100\.64\.0\.1:6443/);
      assert.match(up.stdout, /✓ routes: 10\.96\.0\.0\/12, 10\.244\.0\.0\/24 via kconnect0/);
      assert.match(up.stdout, /^ready: connected to context "test" through the kconnect daemon/m);

      const curl = await laptop.exec(["curl", "-sS", "-m", "10", "http://10.96.0.20/"]);
      assert.equal(curl.stdout, "hello from web\n");

      const st = await kconnect(laptop, ["status", "--json"], { env });
      assert.equal(st.code, 0, st.stderr);
      const report = JSON.parse(st.stdout) as StatusReport;
      await assertMatchesHost(laptop, report);
      assert.equal(report.session!.context, "test");
      assert.equal(report.ownerUid, 0);
      assert.equal(report.daemon!.logFile, paths.logFile);

      const text = await kconnect(laptop, ["status"], { env });
      assert.match(text.stdout, /^state: +connected$/m);
      assert.match(text.stdout, /^routes: +10\.96\.0\.0\/12, 10\.244\.0\.0\/24$/m);

      const again = await kconnect(laptop, ["up", "--kubeconfig", cluster.kubeconfig], { env });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already connected \(context "test"/);

      const down = await kconnect(laptop, ["down"], { env });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /disconnected from context "test" \(kconnect daemon\)/);
      assert.equal(await linkExists(laptop, "kconnect0"), false, "the TUN is gone");
      // The daemon up started exits once idle, taking its socket with it.
      for (let i = 0; i < 50 && (await pathExists(paths.socket)); i++) await sleep(100);
      assert.equal(await pathExists(paths.socket), false, "the socket is removed");
      const after = await kconnect(laptop, ["status"], { env });
      assert.equal(after.code, 3);
      const log = await Deno.readTextFile(paths.logFile);
      assert.match(log, /INFO {2}daemon: listening/);
      assert.match(log, /INFO {2}daemon: connected context=test uid=0/);
    } finally {
      await kconnect(laptop, ["down"], { env });
    }
  },
});

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

Deno.test({
  name:
    "the service unit's command runs the daemon; a user in its group connects with credentials fetched as that user, others are refused",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const laptop = cluster.laptop;
    const GROUP = 4242;
    const member = await makeTestUser(paths.dir, 4001, [GROUP]);
    const outsider = await makeTestUser(paths.dir, 4002, []);

    // Install into a directory of the test's: the unit file only, no systemctl.
    const unitDir = `${paths.dir}/units`;
    await Deno.mkdir(unitDir);
    const install = await kconnect(laptop, [
      "service",
      "install",
      "--group",
      String(GROUP),
      "--unit-dir",
      unitDir,
      "--no-service-manager",
    ]);
    assert.equal(install.code, 0, install.stderr);
    const unit = await Deno.readTextFile(`${unitDir}/kconnect.service`);
    const execStart = unitExecStart(unit);
    assert.deepEqual(execStart.slice(-3), ["daemon", "--group", String(GROUP)]);

    // The user's kubeconfig: the exec context, whose plugin records the uid it runs as.
    const uids = `${paths.dir}/plugin-uids`;
    await Deno.writeTextFile(uids, "", { mode: 0o666 });
    await Deno.chmod(uids, 0o666);
    const kubeconfig = `${member.home}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      cluster.kubeconfigText("exec", uids),
      { mode: 0o600 },
    );
    await Deno.chown(kubeconfig, member.uid, member.gid);
    // Its config file: per-context transports.
    await Deno.mkdir(`${member.home}/.config/kconnect`, { recursive: true });
    await Deno.writeTextFile(
      `${member.home}/.config/kconnect/config.json`,
      JSON.stringify({ contexts: { exec: { transports: 3 } } }),
    );
    await new Deno.Command("chown", { args: ["-R", `${member.uid}`, `${member.home}/.config`] })
      .output();

    // What the daemon will run as the user: the material, with the exec plugin's expiry.
    const cred = await kconnect(laptop, ["credentials", "--json", "--kubeconfig", kubeconfig], {
      as: member,
    });
    assert.equal(cred.code, 0, cred.stderr);
    const material = JSON.parse(cred.stdout);
    assert.equal(material.context, "exec");
    assert.equal(material.token, cluster.execToken);
    assert.equal(material.dynamic, true);
    assert.ok(Date.parse(material.expiresAt) > Date.now() + 30 * 60_000, material.expiresAt);
    assert.match(material.caPem, /^-----BEGIN CERTIFICATE-----/);
    await Deno.writeTextFile(uids, "");

    const noDaemon = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig], {
      env: { KCONNECT_SOCKET: paths.socket },
      as: member,
    });
    assert.equal(noDaemon.code, 1);
    assert.match(noDaemon.stderr, /No kconnect daemon is running .*sudo kconnect service install/);

    // Run ExecStart as systemd would: as root, its Environment=, here in the laptop namespace
    // with the test's socket, state directory and log file.
    const daemon = laptop.spawn(execStart, {
      env: { ...unitEnvironment(unit), ...paths.env },
      stdout: "piped",
      stderr: "piped",
    });
    const daemonOut = daemon.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      const first = await daemonOut.read();
      assert.match(first.value ?? "", /kconnect daemon listening on /);
      const runDir = await Deno.stat(`${paths.dir}/run`);
      assert.equal(runDir.mode! & 0o7777, 0o750);
      assert.equal(runDir.gid, GROUP);
      const auth = await Deno.stat(`${paths.dir}/run/auth`);
      assert.equal(auth.mode! & 0o7777, 0o1730);
      const sock = await Deno.stat(paths.socket);
      assert.equal(sock.mode! & 0o777, 0o660);

      const env = { KCONNECT_SOCKET: paths.socket };
      const refused = await kconnect(laptop, ["status"], { env, as: outsider });
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stderr, /Permission denied opening kconnect's control socket/);
      assert.match(refused.stderr, /Add it to the group "?4242"?/);
      const refusedUp = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig], {
        env,
        as: outsider,
      });
      assert.equal(refusedUp.code, 1);
      assert.match(refusedUp.stderr, /Permission denied/);

      const up = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig], { env, as: member });
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.match(
        up.stdout,
        /✓ kubeconfig: context "exec", user "exec-user" \(.*credentials as uid 4001\)/,
      );
      assert.match(up.stdout, /✓ tunnel open: 3 port-forward connections/);
      assert.match(up.stdout, /^ready: /m);
      const plugin = (await Deno.readTextFile(uids)).trim().split("\n");
      assert.ok(plugin.length >= 1);
      assert.deepEqual([...new Set(plugin)], ["4001"], "the exec plugin ran only as the user");

      const byName = await laptop.exec(["curl", "-sS", "-m", "10", "http://web.default/"]);
      assert.equal(byName.stdout, "hello from web\n");

      const st = await kconnect(laptop, ["status", "--json"], { env, as: member });
      assert.equal(st.code, 0, st.stderr);
      const report = JSON.parse(st.stdout) as StatusReport;
      await assertMatchesHost(laptop, report, await Deno.readTextFile(cluster.laptopResolvConf));
      assert.equal(report.ownerUid, 4001);
      assert.equal(report.session!.user, "exec-user");
      assert.equal(report.session!.transports.length, 3);

      const down = await kconnect(laptop, ["down"], { env, as: member });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /disconnected from context "exec"/);
      assert.equal(await linkExists(laptop, "kconnect0"), false);
      const st2 = await kconnect(laptop, ["status", "--json"], { env, as: member });
      assert.equal(st2.code, 3);
      assert.equal((JSON.parse(st2.stdout) as StatusReport).state, "disconnected");
      assert.doesNotMatch(await Deno.readTextFile(cluster.laptopResolvConf), /198\.18\.0\.3/);
    } finally {
      await kconnect(laptop, ["down"], { env: paths.env });
      try {
        daemon.kill("SIGTERM");
      } catch { /* gone */ }
      await daemon.status;
      await daemonOut.cancel().catch(() => {});
      await daemon.stderr.cancel().catch(() => {});
    }
    assert.equal(await pathExists(paths.socket), false, "the daemon removed its socket");
  },
});

Deno.test({
  name:
    "up --switch changes context; a bad config file is named; gather-logs bundles logs and status without secrets",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const laptop = cluster.laptop;
    const env = paths.env;
    const daemon = laptop.spawn([
      ...DENO_RUN,
      "-A",
      `${ROOT}main.ts`,
      "--log-level",
      "debug",
      "daemon",
    ], { env, stdout: "piped", stderr: "piped" });
    const out = daemon.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      assert.match((await out.read()).value ?? "", /listening/);
      const base = ["--kubeconfig", cluster.kubeconfig, "--dns", "off"];

      const badConfig = `${paths.dir}/bad.json`;
      await Deno.writeTextFile(badConfig, JSON.stringify({ contexts: { test: { mtu: 99 } } }));
      const bad = await kconnect(laptop, ["up", ...base, "--config", badConfig], { env });
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        new RegExp(`Invalid config file ${badConfig}: contexts\\.test\\.mtu: expected an integer`),
      );

      const up = await kconnect(laptop, ["up", ...base], { env });
      assert.equal(up.code, 0, up.stderr);
      const sw = await kconnect(laptop, ["up", ...base, "--context", "cert", "--switch"], { env });
      assert.equal(sw.code, 0, sw.stderr);
      assert.match(sw.stdout, /✓ disconnected: context "test"/);
      assert.match(sw.stdout, /✓ kubeconfig: context "cert", user "cert-user"/);
      const st = JSON.parse(
        (await kconnect(laptop, ["status", "--json"], { env })).stdout,
      ) as StatusReport;
      assert.equal(st.session!.context, "cert");
      assert.equal(st.session!.user, "cert-user");
      await assertMatchesHost(laptop, st);

      const archive = `${paths.dir}/logs.tar.gz`;
      const g = await kconnect(laptop, ["gather-logs", "-o", archive], { env });
      assert.equal(g.code, 0, g.stderr);
      const x = `${paths.dir}/x`;
      await Deno.mkdir(x);
      await laptop.exec(["tar", "-xzf", archive, "-C", x]);
      const [top] = [...Deno.readDirSync(x)].map((e) => e.name);
      const names = [...Deno.readDirSync(`${x}/${top}`)].map((e) => e.name).sort();
      for (
        const f of ["daemon.log", "status.json", "ip-route.txt", "resolv.conf", "version.json"]
      ) {
        assert.ok(names.includes(f), `${f} in ${names}`);
      }
      const status = JSON.parse(await Deno.readTextFile(`${x}/${top}/status.json`)) as StatusReport;
      assert.equal(status.state, "connected");
      assert.match(
        await Deno.readTextFile(`${x}/${top}/ip-route.txt`),
        /10\.96\.0\.0\/12 dev kconnect0/,
      );
      const log = await Deno.readTextFile(`${x}/${top}/daemon.log`);
      assert.match(log, /DEBUG/, "--log-level debug is honoured");
      // The key's base64 body, line by line (found however the PEM around it was escaped), and
      // the kubeconfig's encoding of the whole PEM.
      const keyLines = cluster.pki.clientKeyPem.split("\n")
        .filter((l) => l.length >= 40 && !l.startsWith("-----"));
      assert.ok(keyLines.length >= 2, "the key has a base64 body");
      const secrets: [string, string][] = [
        ["the bearer token", cluster.token],
        ["the exec plugin's token", cluster.execToken],
        ["the kubeconfig's client-key-data", btoa(cluster.pki.clientKeyPem).slice(0, 64)],
        ...keyLines.map((l, i): [string, string] => [`line ${i + 1} of the client key`, l]),
      ];
      for (const f of names) {
        const text = await Deno.readTextFile(`${x}/${top}/${f}`);
        assert.ok(!text.includes("PRIVATE KEY-----\nMI"), `no key in ${f}`);
        for (const [what, secret] of secrets) assert.ok(!text.includes(secret), `${what} in ${f}`);
      }
    } finally {
      await kconnect(laptop, ["down"], { env });
      try {
        daemon.kill("SIGTERM");
      } catch { /* gone */ }
      await daemon.status;
      await out.cancel().catch(() => {});
      await daemon.stderr.cancel().catch(() => {});
    }
  },
});

Deno.test({
  name:
    "sudo kconnect up with no group set up: the user who ran sudo uses status and down without root; another uid is refused and told how to get access",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const laptop = cluster.laptop;
    const user = await makeTestUser(paths.dir, 4001, []);
    const other = await makeTestUser(paths.dir, 4002, []);
    // The kubeconfig of the user who ran sudo: theirs, and read as them (under sudo, kconnect
    // fetches credentials as SUDO_UID, never as root).
    const kubeconfig = `${user.home}/kubeconfig`;
    await Deno.copyFile(cluster.kubeconfig, kubeconfig);
    await Deno.chown(kubeconfig, user.uid, user.gid);
    // What sudo puts in the environment of `sudo kconnect up` run by uid 4001.
    const sudoEnv = sudoEnvOf(user, paths.env);
    const env = { KCONNECT_SOCKET: paths.socket };
    try {
      const up = await kconnect(
        laptop,
        ["up", "--kubeconfig", kubeconfig, "--dns", "off"],
        {
          env: sudoEnv,
        },
      );
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.match(up.stdout, /^ready: connected to context "test" through the kconnect daemon/m);

      // No group: everyone may connect; the daemon decides after the uid proof.
      const runDir = await Deno.stat(`${paths.dir}/run`);
      assert.equal(runDir.mode! & 0o7777, 0o711);
      assert.equal(runDir.gid, 0);
      assert.equal((await Deno.stat(`${paths.dir}/run/auth`)).mode! & 0o7777, 0o1733);
      assert.equal((await Deno.stat(paths.socket)).mode! & 0o777, 0o666);

      const st = await kconnect(laptop, ["status", "--json"], { env, as: user });
      assert.equal(st.code, 0, st.stderr);
      const report = JSON.parse(st.stdout) as StatusReport;
      assert.equal(report.state, "connected");
      assert.equal(report.ownerUid, 0);
      assert.deepEqual(report.daemon!.access, { group: null, gid: null, uids: [4001] });
      const text = await kconnect(laptop, ["status"], { env, as: user });
      assert.match(text.stdout, /^daemon: .*; for root and uid 4001$/m);

      for (const args of [["status"], ["down"], ["up", "--kubeconfig", cluster.kubeconfig]]) {
        const refused = await kconnect(laptop, args, { env, as: other });
        assert.equal(refused.code, 1, `${args[0]}: ${refused.stdout}`);
        assert.match(
          refused.stderr,
          /^kconnect: uid 4002 may not use this kconnect daemon: it runs with no group and lets in only root and uid 4001 \(who ran sudo\)\. To let other users in/m,
          args[0],
        );
        assert.match(refused.stderr, /sudo kconnect service install/);
        assert.match(refused.stderr, /sudo kconnect up --group <group>/);
      }
      const still = await kconnect(laptop, ["status", "--json"], { env, as: user });
      assert.equal(
        (JSON.parse(still.stdout) as StatusReport).state,
        "connected",
        "other's down did nothing",
      );

      const down = await kconnect(laptop, ["down"], { env, as: user });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /disconnected from context "test" \(kconnect daemon\)/);
      assert.equal(await linkExists(laptop, "kconnect0"), false, "the TUN is gone");
      for (let i = 0; i < 50 && (await pathExists(paths.socket)); i++) await sleep(100);
      assert.equal(await pathExists(paths.socket), false, "the daemon exited once idle");
      const log = await Deno.readTextFile(paths.logFile);
      assert.match(log, /daemon: listening .*access="root and uid 4001"/);
      assert.match(log, /WARN {2}daemon: refused a request: uid 4002 may not use/);
    } finally {
      await kconnect(laptop, ["down"], { env: paths.env });
    }
  },
});

Deno.test({
  name:
    "a named group that does not exist (--group, KCONNECT_GROUP, config file) is refused before anything starts, with the fix",
  ...opts,
  fn: async () => {
    await using ns = await Netns.create("nogroup");
    await using paths = await daemonPaths();
    const missing = "kc-no-such-group";
    const lookup = await new Deno.Command("getent", { args: ["group", missing] }).output();
    assert.equal(lookup.code, 2, `group ${missing} must not exist`);
    const config = `${paths.dir}/config.json`;
    await Deno.writeTextFile(config, JSON.stringify({ group: missing }));

    const cases: [string[], Record<string, string>, string][] = [
      [["up", "--group", missing], {}, "--group"],
      [["up"], { KCONNECT_GROUP: missing }, "KCONNECT_GROUP"],
      [["up", "--config", config], {}, `config file ${config}`],
      [["daemon", "--group", missing], {}, "--group"],
      [["daemon"], { KCONNECT_GROUP: missing }, "KCONNECT_GROUP"],
    ];
    for (const [args, extra, from] of cases) {
      const r = await kconnect(ns, args, { env: { ...paths.env, ...extra }, timeoutMs: 30_000 });
      const what = `${args.join(" ")} ${JSON.stringify(extra)}`;
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `^kconnect: Group "${missing}" \\(from ${
            from.replaceAll("/", "\\/")
          }\\) does not exist\\. Create it \\(sudo groupadd ${missing}`,
          "m",
        ),
        what,
      );
      assert.match(r.stderr, new RegExp(`sudo kconnect service install --group ${missing}`), what);
      assert.match(r.stderr, /or name no group/, what);
    }
    // Nothing started: no socket directory, no log, no journal.
    for (const p of [`${paths.dir}/run`, `${paths.dir}/log`, paths.stateDir]) {
      assert.equal(await pathExists(p), false, `${p} was not created`);
    }
  },
});

Deno.test({
  name:
    "a daemon that cannot start: up prints the daemon's own error and its log file, which up created",
  ...opts,
  fn: async () => {
    await using ns = await Netns.create("badstart");
    await using paths = await daemonPaths();
    // A socket in a shared directory (like /tmp): the daemon refuses it when it starts.
    const shared = `${paths.dir}/shared`;
    await Deno.mkdir(shared);
    await Deno.chmod(shared, 0o1777);
    assert.equal(
      await pathExists(`${paths.dir}/log`),
      false,
      "the log directory does not exist yet",
    );
    const r = await kconnect(ns, [
      "up",
      "--socket",
      `${shared}/k.sock`,
      "--kubeconfig",
      "/nonexistent",
    ], {
      env: paths.env,
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /^kconnect: Cannot start the kconnect daemon \(pid \d+\): it exited with status 1\. Its last output:$/m,
    );
    const own =
      `kconnect: Cannot use ${shared} for the daemon's socket: it is shared (mode 1777); give the socket a directory of its own`;
    assert.ok(r.stderr.includes(`\n  ${own}\n`), `the daemon's own error in:\n${r.stderr}`);
    const logPath = r.stderr.match(/^Its log: (\S+)$/m)?.[1];
    assert.equal(logPath, paths.logFile);
    assert.ok((await Deno.readTextFile(logPath!)).includes(own), "the log holds the error too");
    assert.equal((await Deno.stat(`${paths.dir}/log`)).mode! & 0o777, 0o750);

    // A log file that cannot be made is said so before any daemon starts.
    const noLog = await kconnect(ns, ["up", "--log-file", "/proc/kconnect/daemon.log"], {
      env: paths.env,
    });
    assert.equal(noLog.code, 1);
    assert.match(
      noLog.stderr,
      /^kconnect: Cannot create the kconnect daemon's log file \/proc\/kconnect\/daemon\.log: .*\(pass --log-file with another path\)$/m,
    );
    assert.equal(await pathExists(paths.socket), false, "no daemon was started");
  },
});
