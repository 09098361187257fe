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
import { LAUNCHD_LABEL, launchdPlist } from "./launchd.ts";
import { systemdUnit, UNIT_NAME } from "./systemd.ts";

/** What installing needs from the machine. */
export interface ServiceHost {
  os: "linux" | "darwin";
  /** Runs a command; throws with its output when it fails. */
  run(cmd: string[]): Promise<void>;
  /** Whether the group exists. */
  groupExists(name: string): Promise<boolean>;
  writeFile(path: string, text: string): Promise<void>;
  removeFile(path: string): Promise<boolean>;
}

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
}

/** The service file's path. */
export function serviceFile(os: ServiceHost["os"], unitDir?: string): string {
  return os === "darwin"
    ? `${unitDir ?? "/Library/LaunchDaemons"}/${LAUNCHD_LABEL}.plist`
    : `${unitDir ?? "/etc/systemd/system"}/${UNIT_NAME}`;
}

/** The service file's text for `o`. */
export function serviceText(os: ServiceHost["os"], o: ServiceOptions = {}): string {
  const command = [...(o.command ?? selfCommand()), "daemon", "--group", o.group ?? "kconnect"];
  const env: Record<string, string> = {};
  if (o.command === undefined && runningFromSource()) {
    // deno run needs its module cache; a system service has no HOME to find it by.
    const home = Deno.env.get("HOME") ?? "/root";
    env.DENO_DIR = Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`;
  }
  return os === "darwin"
    ? launchdPlist({
      programArguments: command,
      logFile: "/var/log/kconnect/launchd.log",
      environment: env,
    })
    : systemdUnit({ execStart: command, environment: env });
}

/** Installs and starts the service; returns what was done, one line each. */
export async function installService(host: ServiceHost, o: ServiceOptions = {}): Promise<string[]> {
  const done: string[] = [];
  const group = o.group ?? "kconnect";
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
      await host.run(["launchctl", "bootstrap", "system", file]);
      done.push(`launchd job ${LAUNCHD_LABEL} loaded`);
    } else {
      await host.run(["systemctl", "daemon-reload"]);
      await host.run(["systemctl", "enable", "--now", UNIT_NAME]);
      done.push(`${UNIT_NAME} enabled and started`);
    }
  }
  return done;
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
  const group = o.group ?? "kconnect";
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
