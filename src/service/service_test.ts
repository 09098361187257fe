import assert from "node:assert/strict";
import { installService, type ServiceHost, serviceText, uninstallService } from "./install.ts";
import { launchdPlist } from "./launchd.ts";
import {
  quoteSystemdWord,
  splitSystemdCommand,
  systemdUnit,
  unitEnvironment,
  unitExecStart,
} from "./systemd.ts";

/** How the fake machine's daemons behave. */
interface FakeDaemons {
  /** A daemon that is not the service's listens before install. Default false. */
  other?: boolean;
  /** The service's daemon listens once started. Default true. */
  starts?: boolean;
  /** What `systemctl is-active` and `journalctl` print. */
  output?: string;
}

function fakeHost(os: "linux" | "darwin", groups: string[] = [], d: FakeDaemons = {}) {
  const ran: string[][] = [];
  const files = new Map<string, string>();
  const dirs: string[] = [];
  let started = false;
  const host: ServiceHost = {
    os,
    run: (cmd) => {
      ran.push(cmd);
      if (cmd.includes("--now") || cmd[1] === "bootstrap") started = true;
      return Promise.resolve();
    },
    output: (cmd) => {
      ran.push(cmd);
      return Promise.resolve(d.output ?? "");
    },
    groupExists: (name) => Promise.resolve(groups.includes(name)),
    writeFile: (p, t) => {
      files.set(p, t);
      return Promise.resolve();
    },
    removeFile: (p) => Promise.resolve(files.delete(p)),
    makeDir: (p) => {
      dirs.push(p);
      return Promise.resolve();
    },
    listening: () => Promise.resolve((d.other ?? false) || (started && (d.starts ?? true))),
    sleep: () => Promise.resolve(),
  };
  return { host, ran, files, dirs };
}

Deno.test("systemd words survive quoting and splitting", () => {
  const words = ["/opt/my apps/kconnect", 'a"b', "50%", "$HOME", "back\\slash", "plain"];
  assert.deepEqual(splitSystemdCommand(words.map(quoteSystemdWord).join(" ")), words);
});

Deno.test("systemdUnit() runs the daemon as root with restart and hardening that keeps /etc writable", () => {
  const unit = systemdUnit({
    execStart: ["/usr/local/bin/kconnect", "daemon", "--group", "kconnect"],
    environment: { DENO_DIR: "/root/.cache/deno" },
  });
  assert.deepEqual(unitExecStart(unit), [
    "/usr/local/bin/kconnect",
    "daemon",
    "--group",
    "kconnect",
  ]);
  assert.deepEqual(unitEnvironment(unit), {
    DENO_NO_UPDATE_CHECK: "1",
    DENO_DIR: "/root/.cache/deno",
  });
  assert.match(unit, /^Restart=on-failure$/m);
  assert.match(unit, /^WantedBy=multi-user.target$/m);
  assert.doesNotMatch(unit, /^User=/m);
  assert.doesNotMatch(unit, /ProtectSystem=(full|strict)/);
  assert.doesNotMatch(unit, /ProtectHome|PrivateTmp|PrivateDevices|ProtectKernelTunables/);
});

Deno.test("serviceText() runs this kconnect (deno run main.ts from source) with --group", () => {
  const unit = serviceText("linux", { group: "devs" });
  const cmd = unitExecStart(unit);
  assert.deepEqual(cmd.slice(-3), ["daemon", "--group", "devs"]);
  assert.ok(cmd[0].startsWith("/"), "an absolute program path");
  assert.ok(cmd.some((w) => w.endsWith("/main.ts")), "from source: main.ts");
  assert.ok(unitEnvironment(unit).DENO_DIR, "from source: a DENO_DIR");
});

Deno.test("launchdPlist() is a well-formed plist with the arguments escaped", () => {
  const p = launchdPlist({
    programArguments: ["/Applications/K & Co/kconnect", "daemon", "--group", "kconnect"],
    logFile: "/var/log/kconnect/launchd.log",
  });
  assert.match(p, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<!DOCTYPE plist/);
  assert.match(p, /<key>Label<\/key>\n {2}<string>dev\.kconnect\.daemon<\/string>/);
  assert.match(
    p,
    /<string>\/Applications\/K &amp; Co\/kconnect<\/string>\n {4}<string>daemon<\/string>/,
  );
  assert.match(p, /<key>RunAtLoad<\/key>\n {2}<true\/>/);
  assert.match(p, /<key>SuccessfulExit<\/key>\n {4}<false\/>/);
  // Balanced tags.
  for (const tag of ["dict", "array", "plist"]) {
    assert.equal(p.split(`<${tag}`).length, p.split(`</${tag}>`).length, tag);
  }
});

Deno.test("installService() creates the group, adds the sudo user, writes the unit, enables it", async () => {
  const { host, ran, files } = fakeHost("linux");
  const done = await installService(host, { user: "alice", unitDir: "/u", command: ["/bin/k"] });
  assert.deepEqual(ran, [
    ["groupadd", "--system", "kconnect"],
    ["usermod", "-aG", "kconnect", "alice"],
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "kconnect.service"],
  ]);
  assert.deepEqual(unitExecStart(files.get("/u/kconnect.service")!), [
    "/bin/k",
    "daemon",
    "--group",
    "kconnect",
  ]);
  assert.equal(done.length, 4);

  const again = fakeHost("linux", ["kconnect"]);
  await installService(again.host, { unitDir: "/u", command: ["/bin/k"], noServiceManager: true });
  assert.deepEqual(again.ran, [], "an existing group, no user, no service manager: nothing run");
});

Deno.test("uninstallService() stops, disables and removes the unit, and the group on request", async () => {
  const { host, ran, files } = fakeHost("linux", ["kconnect"]);
  files.set("/u/kconnect.service", "x");
  await uninstallService(host, { unitDir: "/u", removeGroup: true });
  assert.deepEqual(ran, [
    ["systemctl", "disable", "--now", "kconnect.service"],
    ["systemctl", "daemon-reload"],
    ["groupdel", "kconnect"],
  ]);
  assert.equal(files.size, 0);
});

Deno.test("installService() fails with the service's own output when its daemon does not listen", async () => {
  const { host, ran } = fakeHost("linux", ["kconnect"], {
    starts: false,
    output: "kconnect: Cannot use /run/kconnect for the daemon: it is not a directory\n",
  });
  await assert.rejects(
    () => installService(host, { unitDir: "/u", command: ["/bin/k"], startTimeoutMs: 1000 }),
    (err: Error) => {
      assert.match(
        err.message,
        /kconnect\.service was installed and started, but its daemon is not listening on \/run\/kconnect\/kconnect\.sock after 1 s/,
      );
      assert.match(
        err.message,
        /Its last output:\n {2}kconnect: Cannot use \/run\/kconnect for the daemon/,
      );
      assert.match(err.message, /journalctl -u kconnect\.service/);
      return true;
    },
  );
  assert.deepEqual(ran.at(-1), ["journalctl", "-u", "kconnect.service", "-n", "20", "--no-pager"]);
});

Deno.test("installService() refuses, before changing anything, while a daemon sudo kconnect up started holds the socket", async () => {
  const { host, ran, files } = fakeHost("linux", [], { other: true, output: "inactive\n" });
  await assert.rejects(
    () => installService(host, { user: "alice", unitDir: "/u", command: ["/bin/k"] }),
    /A kconnect daemon that is not the service already listens on \/run\/kconnect\/kconnect\.sock .*run sudo kconnect down first/,
  );
  assert.deepEqual(ran, [["systemctl", "is-active", "kconnect.service"]]);
  assert.equal(files.size, 0);

  // The service's own daemon (a second install) is no reason to stop.
  const again = fakeHost("linux", ["kconnect"], { other: true, output: "active\n" });
  await installService(again.host, { unitDir: "/u", command: ["/bin/k"] });
  assert.ok(again.files.has("/u/kconnect.service"));
});

Deno.test("installService() on macOS writes the plist and bootstraps it into the system domain", async () => {
  const { host, ran, files, dirs } = fakeHost("darwin");
  await installService(host, { user: "bob", command: ["/usr/local/bin/kconnect"] });
  assert.ok(files.has("/Library/LaunchDaemons/dev.kconnect.daemon.plist"));
  assert.deepEqual(dirs, ["/var/log/kconnect"], "launchd's output directory exists first");
  assert.deepEqual(ran, [
    ["dseditgroup", "-o", "create", "-r", "kconnect users", "kconnect"],
    ["dseditgroup", "-o", "edit", "-a", "bob", "-t", "user", "kconnect"],
    ["launchctl", "bootstrap", "system", "/Library/LaunchDaemons/dev.kconnect.daemon.plist"],
  ]);
  const u = fakeHost("darwin");
  await uninstallService(u.host, {});
  assert.deepEqual(u.ran, [["launchctl", "bootout", "system/dev.kconnect.daemon"]]);
});
