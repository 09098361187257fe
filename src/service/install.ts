/**
 * `kconnect service install` / `uninstall`: the daemon as a system service (systemd on Linux,
 * launchd on macOS), the group whose members may use it, and the invoking sudo user in it.
 *
 * Everything that touches the machine goes through {@linkcode ServiceHost}, so tests can
 * install into a directory of their own without creating groups or calling systemctl.
 *
 * @module
 */
import { runningFromSource, selfCommand } from "../daemon/self.ts";
import { DEFAULT_SOCKET, SERVICE_GROUP } from "../daemon/paths.ts";
import { LAUNCHD_LABEL, launchdPlist } from "./launchd.ts";
import { systemdUnit, UNIT_NAME } from "./systemd.ts";

/** What installing needs from the machine. */
export interface ServiceHost {
  os: "linux" | "darwin";
  /** Runs a command; throws with its output when it fails. */
  run(cmd: string[]): Promise<void>;
  /** Whether the group exists. */
  groupExists(name: string): Promise<boolean>;
  /** Runs a command and returns its stdout and stderr together; never throws. */
  output(cmd: string[]): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
  removeFile(path: string): Promise<boolean>;
  /** Creates a directory (and its parents) when missing. */
  makeDir(path: string, mode: number): Promise<void>;
  /** Whether a daemon answers on the Unix socket `path`. */
  listening(path: string): Promise<boolean>;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

/** Where launchd writes the daemon's stdout and stderr. */
export const LAUNCHD_OUTPUT = "/var/log/kconnect/launchd.log";

/** Options of {@linkcode installService}. */
export interface ServiceOptions {
  /** Group name or gid allowed to use the daemon. Default `kconnect`. */
  group?: string;
  /** Where the unit goes. Default /etc/systemd/system (Linux), /Library/LaunchDaemons (macOS). */
  unitDir?: string;
  /** The user to add to the group (the one who ran sudo); none when undefined or root. */
  user?: string;
  /** Skip service-manager commands (daemon-reload, enable, start). Default false. */
  noServiceManager?: boolean;
  /** The daemon's command (program first). Default: this kconnect (`selfCommand()`). */
  command?: string[];
  /** Also delete the group on uninstall. Default false. */
  removeGroup?: boolean;
  /** The socket the service's daemon listens on, to check that it started. Default the default. */
  socket?: string;
  /** How long the started service gets to listen, in ms. Default 15 s. */
  startTimeoutMs?: number;
}

/** The service file's path. */
export function serviceFile(os: ServiceHost["os"], unitDir?: string): string {
  return os === "darwin"
    ? `${unitDir ?? "/Library/LaunchDaemons"}/${LAUNCHD_LABEL}.plist`
    : `${unitDir ?? "/etc/systemd/system"}/${UNIT_NAME}`;
}

/** The service file's text for `o`. */
export function serviceText(os: ServiceHost["os"], o: ServiceOptions = {}): string {
  const command = [...(o.command ?? selfCommand()), "daemon", "--group", o.group ?? SERVICE_GROUP];
  const env: Record<string, string> = {};
  if (o.command === undefined && runningFromSource()) {
    // deno run needs its module cache; a system service has no HOME to find it by.
    const home = Deno.env.get("HOME") ?? "/root";
    env.DENO_DIR = Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`;
  }
  return os === "darwin"
    ? launchdPlist({
      programArguments: command,
      logFile: LAUNCHD_OUTPUT,
      environment: env,
    })
    : systemdUnit({ execStart: command, environment: env });
}

/** Installs and starts the service; returns what was done, one line each. */
export async function installService(host: ServiceHost, o: ServiceOptions = {}): Promise<string[]> {
  const done: string[] = [];
  const group = o.group ?? SERVICE_GROUP;
  if (!o.noServiceManager) await refuseOtherDaemon(host, o);
  if (!/^\d+$/.test(group)) {
    if (!(await host.groupExists(group))) {
      await host.run(
        host.os === "darwin"
          ? ["dseditgroup", "-o", "create", "-r", "kconnect users", group]
          : ["groupadd", "--system", group],
      );
      done.push(`group ${group} created`);
    }
    if (o.user && o.user !== "root") {
      await host.run(
        host.os === "darwin"
          ? ["dseditgroup", "-o", "edit", "-a", o.user, "-t", "user", group]
          : ["usermod", "-aG", group, o.user],
      );
      done.push(`user ${o.user} added to group ${group} (takes effect at the next login)`);
    }
  }
  const file = serviceFile(host.os, o.unitDir);
  await host.writeFile(file, serviceText(host.os, o));
  done.push(`wrote ${file}`);
  if (!o.noServiceManager) {
    if (host.os === "darwin") {
      // launchd opens the output file itself and does not create its directory.
      await host.makeDir(LAUNCHD_OUTPUT.slice(0, LAUNCHD_OUTPUT.lastIndexOf("/")), 0o750);
      await host.run(["launchctl", "bootstrap", "system", file]);
    } else {
      await host.run(["systemctl", "daemon-reload"]);
      await host.run(["systemctl", "enable", "--now", UNIT_NAME]);
    }
    await awaitListening(host, o);
    done.push(
      host.os === "darwin"
        ? `launchd job ${LAUNCHD_LABEL} loaded; the daemon is listening`
        : `${UNIT_NAME} enabled and started; the daemon is listening`,
    );
  }
  return done;
}

/**
 * Refuses to install while a daemon that is not the service's holds the socket (one that
 * `sudo kconnect up` started): the service's daemon could not listen, and would fail.
 */
async function refuseOtherDaemon(host: ServiceHost, o: ServiceOptions): Promise<void> {
  const socket = o.socket ?? DEFAULT_SOCKET;
  if (!(await host.listening(socket))) return;
  const ours = host.os === "darwin"
    ? (await host.output(["launchctl", "print", `system/${LAUNCHD_LABEL}`])).includes(
      "state = running",
    )
    : (await host.output(["systemctl", "is-active", UNIT_NAME])).trim() === "active";
  if (ours) return;
  throw new Error(
    `A kconnect daemon that is not the service already listens on ${socket} (sudo kconnect up starts one): run sudo kconnect down first (that daemon exits once disconnected), then install the service`,
  );
}

/**
 * Waits until the service's daemon answers on its socket: the service manager reports a start
 * as soon as the process runs, so a daemon that exits at once would otherwise go unnoticed.
 *
 * @throws {Error} with the service's last output when it does not listen in time.
 */
async function awaitListening(host: ServiceHost, o: ServiceOptions): Promise<void> {
  const socket = o.socket ?? DEFAULT_SOCKET;
  const timeout = o.startTimeoutMs ?? 15_000;
  for (let waited = 0; waited < timeout; waited += 200) {
    if (await host.listening(socket)) return;
    await host.sleep(200);
  }
  if (await host.listening(socket)) return;
  const [what, output] = host.os === "darwin"
    ? [
      `launchd job ${LAUNCHD_LABEL}`,
      await host.output(["tail", "-n", "20", LAUNCHD_OUTPUT]),
    ]
    : [
      UNIT_NAME,
      await host.output(["journalctl", "-u", UNIT_NAME, "-n", "20", "--no-pager"]),
    ];
  const said = output.trim().split("\n").map((l) => `  ${l}`).join("\n");
  throw new Error(
    `${what} was installed and started, but its daemon is not listening on ${socket} after ${
      timeout / 1000
    } s. ${said.trim() ? `Its last output:\n${said}\n` : ""}${
      host.os === "darwin"
        ? `Its output: ${LAUNCHD_OUTPUT}; its log: /var/log/kconnect/daemon.log`
        : `See systemctl status ${UNIT_NAME} and journalctl -u ${UNIT_NAME}; its log: /var/log/kconnect/daemon.log`
    }`,
  );
}

/** Stops and removes the service (and the group with `removeGroup`); returns what was done. */
export async function uninstallService(
  host: ServiceHost,
  o: ServiceOptions = {},
): Promise<string[]> {
  const done: string[] = [];
  const file = serviceFile(host.os, o.unitDir);
  if (!o.noServiceManager) {
    if (host.os === "darwin") {
      await host.run(["launchctl", "bootout", `system/${LAUNCHD_LABEL}`]).catch(() => {});
    } else {
      await host.run(["systemctl", "disable", "--now", UNIT_NAME]).catch(() => {});
    }
    done.push("service stopped and disabled");
  }
  if (await host.removeFile(file)) done.push(`removed ${file}`);
  if (!o.noServiceManager && host.os === "linux") await host.run(["systemctl", "daemon-reload"]);
  const group = o.group ?? SERVICE_GROUP;
  if (o.removeGroup && !/^\d+$/.test(group) && await host.groupExists(group)) {
    await host.run(
      host.os === "darwin" ? ["dseditgroup", "-o", "delete", group] : ["groupdel", group],
    );
    done.push(`group ${group} deleted`);
  }
  return done;
}

/** The real machine. */
export const realHost: ServiceHost = {
  os: Deno.build.os === "darwin" ? "darwin" : "linux",
  async run(cmd) {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr).trim() ||
        new TextDecoder().decode(out.stdout).trim();
      throw new Error(`\`${cmd.join(" ")}\` failed (exit ${out.code}): ${text || "no output"}`);
    }
  },
  async groupExists(name) {
    const out = await new Deno.Command("getent", {
      args: ["group", name],
      stdout: "null",
      stderr: "null",
    })
      .output().catch(() => null);
    if (Deno.build.os === "darwin") {
      const d = await new Deno.Command("dscl", {
        args: [".", "-read", `/Groups/${name}`],
        stdout: "null",
        stderr: "null",
      })
        .output().catch(() => null);
      return d?.success ?? false;
    }
    return out?.success ?? false;
  },
  async output(cmd) {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    if (out === null) return "";
    const d = new TextDecoder();
    return d.decode(out.stdout) + d.decode(out.stderr);
  },
  async makeDir(path, mode) {
    await Deno.mkdir(path, { recursive: true, mode });
  },
  async listening(path) {
    try {
      (await Deno.connect({ transport: "unix", path })).close();
      return true;
    } catch {
      return false;
    }
  },
  sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  },
  async writeFile(path, text) {
    await Deno.writeTextFile(path, text, { mode: 0o644 });
  },
  async removeFile(path) {
    try {
      await Deno.remove(path);
      return true;
    } catch {
      return false;
    }
  },
};
