/**
 * `kconnect daemon`: the long-lived root process that `kconnect up`, `down` and `status` talk to
 * (see `src/daemon/server.ts`). Logs go to a size-rotated file (`--log-file`, 5 MiB × 3 older
 * files; `-` for stderr) at level `info` unless `--log-level` says otherwise. SIGTERM or SIGINT
 * disconnects and stops it.
 *
 * Who may use it (`src/daemon/access.ts`): root and the members of `--group` (or
 * `KCONNECT_GROUP`); with no group, root and the `--allow-uid` uids, by default the user who
 * ran sudo (`SUDO_UID` of this root process). A named group that does not exist is refused
 * before anything starts.
 *
 * @module
 */
import type { Command } from "commander";
import { stateDir } from "../journal/journal.ts";
import { logger, setLogLevel, setLogWriter } from "../log.ts";
import { RotatingFile } from "../log_file.ts";
import { Daemon } from "../daemon/server.ts";
import { logFilePath, socketPath } from "../daemon/paths.ts";
import { checkTrustedParents, ensureAdminOnlyDir } from "../host/safe_path.ts";
import {
  type AccessPolicy,
  accessPolicy,
  describeAccess,
  windowsAccessPolicy,
} from "../daemon/access.ts";
import { openPipeNative } from "../daemon/windows_pipe_native.ts";
import { accountSid } from "../daemon/windows_pipe.ts";
import { printLine } from "../cmdline/output.ts";
import { UsageError } from "../cmdline/program.ts";
import { untilSignal } from "../cmdline/signals.ts";

const log = logger("daemon");

interface DaemonCliOptions {
  socket?: string;
  group?: string;
  stateDir?: string;
  logFile?: string;
  exitWhenIdle?: boolean;
  allowUid?: string[];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Runs the daemon until a signal. */
export async function runDaemon(opts: DaemonCliOptions, logLevelGiven: boolean): Promise<void> {
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      "kconnect daemon must run as root: it creates TUN devices and routes (install it with sudo kconnect service install)",
    );
  }
  // Everything that can be refused is checked before anything is created.
  let access: AccessPolicy;
  try {
    access = Deno.build.os === "windows"
      ? windowsAccessPolicy(
        { group: opts.group, allowUids: opts.allowUid },
        Deno.env.toObject(),
        (name) => accountSid(openPipeNative(), name),
      )
      : await accessPolicy(
        { group: opts.group, allowUids: opts.allowUid },
        Deno.env.toObject(),
      );
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  if (!logLevelGiven) setLogLevel("info");
  const logPath = logFilePath(opts.logFile);
  let file: RotatingFile | null = null;
  if (logPath !== "-") {
    try {
      // Root writes here: nothing on the way may be another user's to redirect.
      const abs = Deno.build.os === "windows"
        ? await checkWindowsLogFolder(logPath)
        : logPath.startsWith("/")
        ? logPath
        : `${Deno.cwd()}/${logPath}`;
      if (Deno.build.os !== "windows") await checkTrustedParents(abs, "the daemon's log");
      file = RotatingFile.open(abs);
    } catch (err) {
      throw new Error(`Cannot open the log file ${logPath}: ${(err as Error).message}`);
    }
    const f = file;
    setLogWriter((line) => f.write(line));
  }
  const socket = socketPath(opts.socket);
  const daemon = await Daemon.start({
    socket,
    access,
    stateDir: stateDir(opts.stateDir),
    logFile: file?.path ?? null,
    exitWhenIdle: opts.exitWhenIdle ?? false,
  });
  printLine(
    `kconnect daemon listening on ${socket} (pid ${Deno.pid}, log ${file?.path ?? "stderr"}, for ${
      describeAccess(access)
    })`,
  );
  const stop = new AbortController();
  const why = await Promise.race([untilSignal(stop.signal), daemon.done.then(() => "idle")]);
  stop.abort();
  log.info(`stopping: ${why}`);
  await daemon.close();
  file?.close();
}

/** Windows: creates the log's folder, which only administrators may change (`ensureAdminOnlyDir`). */
async function checkWindowsLogFolder(path: string): Promise<string> {
  const folder = path.slice(0, Math.max(path.lastIndexOf("\\"), path.lastIndexOf("/")));
  if (folder !== "") await ensureAdminOnlyDir(folder, "the daemon's log");
  return path;
}

/** Registers `kconnect daemon`. */
export function registerDaemon(program: Command): void {
  program
    .command("daemon")
    .description("run the kconnect daemon (as root; normally started by the service manager)")
    .option(
      "--socket <path>",
      "control socket (default: KCONNECT_SOCKET, else /run/kconnect/kconnect.sock; Windows: the pipe \\\\.\\pipe\\kconnect)",
    )
    .option(
      "--group <name|gid>",
      "group whose members may use the daemon (default: KCONNECT_GROUP, else none: root and --allow-uid only; Windows: a local group, else SYSTEM and elevated administrators only)",
    )
    .option(
      "--allow-uid <uid>",
      "with no group: a user besides root who may use the daemon (repeatable; default: SUDO_UID, the user who ran sudo)",
      collect,
    )
    .option(
      "--state-dir <dir>",
      "where the journal of host changes lives (default /var/lib/kconnect)",
    )
    .option(
      "--log-file <path>",
      "log file, rotated at 5 MiB keeping 3 (default /var/log/kconnect/daemon.log; - for stderr)",
    )
    .option("--exit-when-idle", "exit once no session is left (for a daemon kconnect up starts)")
    .action((opts: DaemonCliOptions, cmd: Command) =>
      runDaemon(opts, cmd.parent?.getOptionValueSource("logLevel") !== "default")
    );
}
