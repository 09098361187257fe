/**
 * `kconnect service install` / `uninstall`: the daemon as a system service (systemd on Linux,
 * launchd on macOS, a SYSTEM scheduled task on Windows: `windows_task.ts`), the group whose
 * members may use it, and the invoking sudo user in it (Linux and macOS).
 *
 * Everything that touches the machine goes through {@linkcode ServiceHost}, so tests can
 * install into a directory of their own without creating groups or calling systemctl.
 *
 * The service runs its command as root at every boot, so everything that command loads must be
 * root's alone ({@linkcode checkRootOnlyCode}): the program, and from a source checkout its
 * `main.ts`, `deno.json`, `deno.lock` and `src/` tree and the Deno cache (`DENO_DIR`) — owned by
 * root, not writable by other users where they can reach them, below directories no other user
 * can change. A checkout in a user's home is refused: whoever owns it (or anything running as
 * them) would get root at the next start. Install a compiled binary, or copy the checkout and
 * its cache somewhere root owns. From source the unit runs with the lock (`--frozen
 * --cached-only`, `src/host/self.ts`), so nothing is fetched either.
 *
 * @module
 */
import { runningFromSource, selfCommand } from "../host/self.ts";
import { checkTrustedParents, UntrustedPathError } from "../host/safe_path.ts";
import { DEFAULT_PIPE, DEFAULT_SOCKET, SERVICE_GROUP } from "../daemon/paths.ts";
import { windowsDataDir } from "../host/data_dir.ts";
import { LAUNCHD_LABEL, launchdPlist } from "./launchd.ts";
import { systemdUnit, UNIT_NAME } from "./systemd.ts";
import {
  createAndStartTask,
  stopAndDeleteTask,
  TASK_FILE_NAME,
  TASK_NAME,
  taskFileBytes,
  taskXml,
} from "./windows_task.ts";
import { defaultWintunPath } from "../tun/wintun_pin.ts";
import { adminOnlyProblem } from "../host/windows_acl.ts";

/** What installing needs from the machine. */
export interface ServiceHost {
  os: "linux" | "darwin" | "windows";
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
  /** Writes a file's bytes (Windows: the UTF-16 task definition). */
  writeBytes?(path: string, data: Uint8Array): Promise<void>;
  /** Windows: why others than administrators could change `path`, or null when they cannot. */
  adminOnlyProblem?(path: string): Promise<string | null>;
}

/** Where launchd writes the daemon's stdout and stderr. */
export const LAUNCHD_OUTPUT = "/var/log/kconnect/launchd.log";

/** Options of {@linkcode installService}. */
export interface ServiceOptions {
  /** Group name or gid allowed to use the daemon. Default `kconnect`. */
  group?: string;
  /**
   * Where the unit goes. Default /etc/systemd/system (Linux), /Library/LaunchDaemons (macOS),
   * `%ProgramFiles%\kconnect` (Windows: the task definition, the folder of `wintun.dll`).
   */
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
  if (os === "windows") {
    const dir = unitDir ?? defaultWintunPath().slice(0, defaultWintunPath().lastIndexOf("\\"));
    return `${dir.replace(/[\\/]+$/, "")}\\${TASK_FILE_NAME}`;
  }
  return os === "darwin"
    ? `${unitDir ?? "/Library/LaunchDaemons"}/${LAUNCHD_LABEL}.plist`
    : `${unitDir ?? "/etc/systemd/system"}/${UNIT_NAME}`;
}

/**
 * The daemon's command and environment for `o`. A scheduled task has no environment of its own
 * (Windows: none), so from source its deno uses SYSTEM's own Deno cache.
 */
function serviceCommand(
  o: ServiceOptions,
  os: ServiceHost["os"],
): { command: string[]; env: Record<string, string> } {
  const command = [...(o.command ?? selfCommand()), "daemon", "--group", o.group ?? SERVICE_GROUP];
  const env: Record<string, string> = {};
  if (os !== "windows" && o.command === undefined && runningFromSource()) {
    // deno run needs its module cache; a system service has no HOME to find it by.
    const home = Deno.env.get("HOME") ?? "/root";
    env.DENO_DIR = Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`;
  }
  return { command, env };
}

/** The service file's text for `o`. */
export function serviceText(os: ServiceHost["os"], o: ServiceOptions = {}): string {
  const { command, env } = serviceCommand(o, os);
  if (os === "windows") return taskXml({ command });
  return os === "darwin"
    ? launchdPlist({
      programArguments: command,
      logFile: LAUNCHD_OUTPUT,
      environment: env,
    })
    : systemdUnit({ execStart: command, environment: env });
}

/** Largest number of entries {@linkcode checkRootOnlyCode} looks at in one tree. */
const MAX_TREE_ENTRIES = 500_000;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

/** Whether others can reach entries below directory `dir` (search permission on every component). */
async function reachable(dir: string): Promise<boolean> {
  let p = "";
  for (const part of ["", ...dir.split("/").filter((x) => x !== "")]) {
    p = part === "" ? "/" : p === "/" ? `/${part}` : `${p}/${part}`;
    const st = await Deno.stat(p).catch(() => null);
    if (st === null) return true;
    const mode = st.mode ?? 0;
    const groupSearch = (mode & 0o010) !== 0 && (st.gid ?? 0) > 999;
    if ((mode & 0o001) === 0 && !groupSearch) return false;
  }
  return true;
}

/**
 * Checks that what root runs from `paths` is root's alone: each path's parents are trusted
 * (`checkTrustedParents`), and each path — a file, or a directory with everything below it — is
 * owned by root and, where other users can reach it, not writable by them. Symbolic links are
 * followed (their targets checked the same way). Paths that do not exist are checked for their
 * parents only.
 *
 * @throws {Error} naming the first path another user could change, and what to do instead.
 */
export async function checkRootOnlyCode(paths: string[]): Promise<void> {
  const seen = new Set<string>();
  let entries = 0;
  const refuse = (path: string, why: string) =>
    new Error(
      `Cannot install the kconnect service: it would run ${path} as root, and ${why}, so another user could change what root runs. ` +
        "Install a compiled kconnect binary (owned by root), or copy the checkout and its Deno cache (DENO_DIR) to a directory only root can write, such as /usr/local/lib/kconnect, and run service install from there",
    );
  const walk = async (path: string, open: boolean): Promise<void> => {
    if (seen.has(path)) return;
    seen.add(path);
    if (++entries > MAX_TREE_ENTRIES) throw refuse(path, "the tree is too large to check");
    const st = await Deno.lstat(path);
    if (st.isSymlink) {
      if (st.uid !== 0) throw refuse(path, `it is a symbolic link owned by uid ${st.uid}`);
      const target = await Deno.realPath(path).catch(() => null);
      if (target !== null) await top(target);
      return;
    }
    if (st.uid !== 0) throw refuse(path, `it is owned by uid ${st.uid}`);
    const mode = st.mode ?? 0;
    const othersWrite = (mode & 0o002) !== 0 ||
      ((mode & 0o020) !== 0 && (st.gid ?? 0) > 999);
    if (open && othersWrite) {
      throw refuse(path, `it is writable by other users (mode ${octal(mode)})`);
    }
    if (st.isDirectory) {
      const below = open &&
        ((mode & 0o001) !== 0 || ((mode & 0o010) !== 0 && (st.gid ?? 0) > 999));
      for await (const e of Deno.readDir(path)) await walk(`${path}/${e.name}`, open && below);
    }
  };
  const top = async (path: string): Promise<void> => {
    try {
      await checkTrustedParents(path, "the service's code");
    } catch (err) {
      if (err instanceof UntrustedPathError) throw refuse(path, err.message);
      throw err;
    }
    try {
      await Deno.lstat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    const parent = path.slice(0, Math.max(1, path.lastIndexOf("/")));
    await walk(path, await reachable(parent));
  };
  for (const p of paths) await top(p);
}

/**
 * What the service's command loads: the program, every absolute path on its command line, from
 * a checkout (a `main.ts`) its `src/` tree, and its `DENO_DIR`.
 */
export function serviceCodePaths(command: string[], env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of command) {
    if (!w.startsWith("/")) continue;
    out.push(w);
    if (w.endsWith("/main.ts")) {
      const root = w.slice(0, -"main.ts".length);
      out.push(`${root}src`, `${root}deno.json`, `${root}deno.lock`);
    }
  }
  if (env.DENO_DIR) out.push(env.DENO_DIR);
  return out;
}

/** Installs and starts the service; returns what was done, one line each. */
export async function installService(host: ServiceHost, o: ServiceOptions = {}): Promise<string[]> {
  if (host.os === "windows") return await installWindowsTask(host, o);
  const done: string[] = [];
  const group = o.group ?? SERVICE_GROUP;
  const { command, env } = serviceCommand(o, host.os);
  await checkRootOnlyCode(serviceCodePaths(command, env));
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

/** The folder of a Windows path. */
function windowsFolder(path: string): string {
  const i = Math.max(path.lastIndexOf("\\"), path.lastIndexOf("/"));
  return i === 2 && path[1] === ":" ? path.slice(0, 3) : path.slice(0, Math.max(i, 0));
}

/**
 * What the task's command loads on Windows, and the folders they are in: the program, every
 * absolute path on its command line, from a checkout (a `main.ts`) its `src`, `deno.json` and
 * `deno.lock`. Folders are checked themselves, not walked. A word starting with `/` (a path in
 * Unix form, as `selfCommand()` may give from source) is named too, so that it is refused when
 * its permissions cannot be read rather than never checked.
 */
export function windowsCodePaths(command: string[]): string[] {
  const out = new Set<string>();
  for (const w of command) {
    if (!/^([A-Za-z]:[\\/]|\\\\|\/)/.test(w)) continue;
    out.add(w);
    out.add(windowsFolder(w));
    if (/[\\/]main\.ts$/.test(w)) {
      const root = w.slice(0, -"main.ts".length);
      for (const f of ["src", "deno.json", "deno.lock"]) out.add(`${root}${f}`);
    }
  }
  return [...out];
}

/**
 * Windows: writes the task definition, creates the local group (adding the user who installs)
 * and creates and starts the task, then waits until the daemon answers on its pipe. Refuses,
 * before writing the definition, when someone other than administrators could change what
 * SYSTEM would run (the program, its folder, a checkout's code) or the folder the definition is
 * written to (it could be swapped before `schtasks /Create` reads it).
 */
async function installWindowsTask(host: ServiceHost, o: ServiceOptions): Promise<string[]> {
  const { command } = serviceCommand(o, "windows");
  const file = serviceFile("windows", o.unitDir);
  const bytes = taskFileBytes({ command });
  if (!host.writeBytes || !host.adminOnlyProblem) {
    throw new Error("Cannot install the kconnect task: this host cannot write or check files");
  }
  const problemOf = host.adminOnlyProblem.bind(host);
  const check = async (p: string) => {
    const problem = await problemOf(p);
    if (problem !== null) {
      throw new Error(
        `Cannot install the kconnect task: it would run as SYSTEM from ${p}, and ${problem}, so someone other than an administrator could change what SYSTEM runs. ` +
          "Install kconnect.exe in a folder only administrators can change, such as %ProgramFiles%\\kconnect, and run service install from there",
      );
    }
  };
  for (const p of windowsCodePaths(command)) await check(p);
  await host.makeDir(windowsFolder(file), 0o755);
  await check(windowsFolder(file));
  await host.writeBytes(file, bytes);
  const done = [`wrote ${file}`];
  done.push(...await ensureWindowsGroup(host, o.group ?? SERVICE_GROUP, o.user));
  if (!o.noServiceManager) {
    done.push(...await createAndStartTask(host, file));
    await awaitListening(host, { ...o, socket: o.socket ?? DEFAULT_PIPE });
    done.push("the daemon is listening");
  }
  return done;
}

/**
 * Windows: creates the local group the daemon's pipe lets in (unless it exists or is given as a
 * SID) and adds `user` (`DOMAIN\name`) to it. "Already a member" (system error 1378) is fine.
 */
async function ensureWindowsGroup(
  host: ServiceHost,
  group: string,
  user: string | undefined,
): Promise<string[]> {
  if (/^S-1-/.test(group)) return [];
  const done: string[] = [];
  const exists = await host.run(["net", "localgroup", group]).then(() => true, () => false);
  if (!exists) {
    await host.run([
      "net",
      "localgroup",
      group,
      "/add",
      "/comment:kconnect users: may use the kconnect daemon",
    ]);
    done.push(`local group ${group} created`);
  }
  if (user) {
    const out = await host.output(["net", "localgroup", group, user, "/add"]);
    if (/\b1378\b/.test(out)) done.push(`user ${user} is already in group ${group}`);
    else if (/\berror\b/i.test(out)) {
      throw new Error(`Cannot add ${user} to the local group ${group}: ${out.trim()}`);
    } else done.push(`user ${user} added to group ${group} (takes effect at the next sign-in)`);
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
  const [what, output] = host.os === "windows"
    ? [
      `scheduled task ${TASK_NAME}`,
      await host.output(["schtasks", "/Query", "/TN", TASK_NAME, "/V", "/FO", "LIST"]),
    ]
    : host.os === "darwin"
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
      host.os === "windows"
        ? `Its log: ${windowsDataDir()}\\daemon.log`
        : host.os === "darwin"
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
  if (host.os === "windows") {
    if (!o.noServiceManager) done.push(...await stopAndDeleteTask(host));
    if (await host.removeFile(file)) done.push(`removed ${file}`);
    return done;
  }
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
  os: Deno.build.os === "windows" ? "windows" : Deno.build.os === "darwin" ? "darwin" : "linux",
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
  async writeBytes(path, data) {
    await Deno.writeFile(path, data, { mode: 0o644 });
  },
  adminOnlyProblem(path) {
    return Promise.resolve(adminOnlyProblem(path));
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
