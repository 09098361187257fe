/**
 * `kconnect service install|uninstall|show`: the daemon as a system service (see
 * `src/service/install.ts`).
 *
 * @module
 */
import type { Command } from "commander";
import { installService, realHost, serviceText, uninstallService } from "../service/install.ts";
import { print, printLine } from "../cmdline/output.ts";

interface ServiceCliOptions {
  group?: string;
  unitDir?: string;
  serviceManager?: boolean;
  removeGroup?: boolean;
}

function needRoot(what: string): void {
  // Windows has no uid: Windows itself refuses a process that is not elevated (creating the
  // folder under Program Files, schtasks.exe: "Access is denied"), and that error is reported.
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      `kconnect service ${what} must run as root (try: sudo kconnect service ${what})`,
    );
  }
}

/** `DOMAIN\\name` of the user running this process on Windows, or undefined. */
function windowsUser(domain: string | undefined, name: string | undefined): string | undefined {
  if (!name || name.endsWith("$")) return undefined; // none, or a machine account (SYSTEM)
  return domain ? `${domain}\\${name}` : name;
}

/** Registers `kconnect service`. */
export function registerService(program: Command): void {
  const service = program.command("service").description(
    "install or remove the kconnect daemon as a system service (systemd, launchd, a Windows scheduled task)",
  );
  const common = (c: Command) =>
    c.option("--group <name|gid>", "group whose members may use the daemon", "kconnect")
      .option(
        "--unit-dir <dir>",
        "where the unit file goes (default /etc/systemd/system; macOS /Library/LaunchDaemons; Windows %ProgramFiles%\\kconnect)",
      )
      .option(
        "--no-service-manager",
        "only write or remove the file: no systemctl/launchctl/schtasks",
      );
  common(
    service.command("install").description(
      "write the unit, create the group (adding the sudo user), enable and start the daemon",
    ),
  ).action(async (o: ServiceCliOptions) => {
    needRoot("install");
    // Windows: the administrator who installs (DOMAIN\\name) joins the group, as sudo's user does.
    const user = Deno.build.os === "windows"
      ? windowsUser(Deno.env.get("USERDOMAIN"), Deno.env.get("USERNAME"))
      : Deno.env.get("SUDO_USER");
    for (
      const line of await installService(realHost, {
        group: o.group,
        unitDir: o.unitDir,
        user,
        noServiceManager: o.serviceManager === false,
      })
    ) printLine(line);
  });
  common(service.command("uninstall").description("stop, disable and remove the daemon's service"))
    .option("--remove-group", "delete the group too")
    .action(async (o: ServiceCliOptions) => {
      needRoot("uninstall");
      for (
        const line of await uninstallService(realHost, {
          group: o.group,
          unitDir: o.unitDir,
          noServiceManager: o.serviceManager === false,
          removeGroup: o.removeGroup,
        })
      ) printLine(line);
    });
  service.command("show").description("print the unit (plist, task XML) install would write")
    .option("--group <name|gid>", "group whose members may use the daemon", "kconnect")
    .action((o: ServiceCliOptions) => print(serviceText(realHost.os, { group: o.group })));
}
