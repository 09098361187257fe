/**
 * The kconnect daemon on Windows: a Scheduled Task that starts `kconnect daemon …` as SYSTEM at
 * every boot, with the highest privileges, restarted after a failure and never stopped for
 * running long (see README "The daemon" for why a task and not a Windows service).
 *
 * This module renders the task definition (Task Scheduler schema 1.2, written as UTF-16 LE with a
 * byte-order mark, the encoding its `encoding="UTF-16"` declaration names and `schtasks /XML`
 * reads) and the `schtasks.exe` argument lists that create, start, stop and delete it. Running
 * them goes through the caller's runner (`ServiceHost.run` in `install.ts`). Written and tested
 * on Linux only: nothing here has been given to a real Task Scheduler.
 *
 * @module
 */
import { quoteWindowsArg } from "../host/windows_run_as_structs.ts";

/** The task's name in Task Scheduler (root folder). */
export const TASK_NAME = "kconnect-daemon";
/** The task definition's file name (in the folder `install.ts` writes it to). */
export const TASK_FILE_NAME = "kconnect-daemon.xml";
/** The SID of LocalSystem, the account the task runs as. */
export const SYSTEM_SID = "S-1-5-18";
/** The program that manages tasks. */
export const SCHTASKS = "schtasks.exe";

/** The namespace of Task Scheduler task definitions. */
export const TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task";

function xml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}

/** Thrown when a command cannot be written into a task faithfully. */
export class TaskCommandError extends Error {
  override name = "TaskCommandError";
}

/**
 * Refuses what Task Scheduler or the program's argument parser would change: `%` (Task
 * Scheduler expands `%VARIABLE%` in an action's command and arguments, with no escape), control
 * characters (newlines, NUL) and empty program paths.
 */
function checkWord(word: string, what: string): void {
  if (word.includes("%")) {
    throw new TaskCommandError(
      `Cannot put ${what} ${
        JSON.stringify(word)
      } into a scheduled task: Task Scheduler would expand %…% in it`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(word)) {
    throw new TaskCommandError(
      `Cannot put ${what} ${
        JSON.stringify(word)
      } into a scheduled task: it holds a control character`,
    );
  }
}

/** Quotes one argument for the Microsoft C runtime's command-line rules (shared with the credentials runner). */
export { quoteWindowsArg };

/**
 * Splits a command line's arguments the way the Microsoft C runtime does for `argv[1…]` (the
 * inverse of {@linkcode quoteWindowsArg} joined with spaces): `2n` backslashes before a quote
 * are `n` and the quote opens or closes, `2n+1` are `n` and a literal quote, `""` inside quotes
 * is a literal quote, other backslashes are literal.
 *
 * @example
 * ```ts
 * import { splitWindowsArgs } from "./windows_task.ts";
 * splitWindowsArgs('daemon --group "my group"'); // ["daemon", "--group", "my group"]
 * ```
 */
export function splitWindowsArgs(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (true) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) return words;
    let w = "";
    let quoted = false;
    while (i < line.length && (quoted || (line[i] !== " " && line[i] !== "\t"))) {
      if (line[i] === "\\") {
        let n = 0;
        while (line[i] === "\\") {
          n++;
          i++;
        }
        if (line[i] === '"') {
          w += "\\".repeat(Math.floor(n / 2));
          if (n % 2 === 1) {
            w += '"';
            i++;
          }
        } else {
          w += "\\".repeat(n);
        }
      } else if (line[i] === '"') {
        if (quoted && line[i + 1] === '"') {
          w += '"';
          i += 2;
        } else {
          quoted = !quoted;
          i++;
        }
      } else {
        w += line[i++];
      }
    }
    words.push(w);
  }
}

/** What goes into the task. */
export interface TaskOptions {
  /** The daemon's command line (program first, an absolute path). */
  command: string[];
  /** The description Task Scheduler shows. */
  description?: string;
}

/** The folder of a Windows path (`C:\a\b.exe` gives `C:\a`). */
function folderOf(path: string): string {
  const i = Math.max(path.lastIndexOf("\\"), path.lastIndexOf("/"));
  if (i < 0) return path;
  return i === 2 && path[1] === ":" ? path.slice(0, 3) : path.slice(0, i);
}

/**
 * Renders the task definition: started at boot (and started late if the machine was off at the
 * time), as SYSTEM with the highest privileges, at normal priority, with no execution time
 * limit, restarted every minute after a failure (up to 999 times), a second start ignored while
 * one runs, and not held back or stopped on battery power. The command runs in its program's
 * folder. Lines end in CRLF, as Task Scheduler's own exports do.
 *
 * @throws {TaskCommandError} when a word of the command holds `%` or a control character, or the
 * program is not an absolute path.
 *
 * @example
 * ```ts
 * import { taskXml } from "./windows_task.ts";
 * const x = taskXml({ command: ["C:\\Program Files\\kconnect\\kconnect.exe", "daemon"] });
 * x.includes("<UserId>S-1-5-18</UserId>"); // true
 * ```
 */
export function taskXml(o: TaskOptions): string {
  const [program, ...args] = o.command;
  if (program === undefined || !/^([A-Za-z]:\\|\\\\)/.test(program)) {
    throw new TaskCommandError(
      `The scheduled task's program must be an absolute Windows path, not ${
        JSON.stringify(program ?? "")
      }`,
    );
  }
  checkWord(program, "the program");
  for (const a of args) checkWord(a, "the argument");
  const description = o.description ??
    "kconnect daemon: a Kubernetes cluster's network on this machine. Written by `kconnect service install`; `kconnect service uninstall` removes it.";
  return [
    '<?xml version="1.0" encoding="UTF-16"?>',
    `<Task version="1.2" xmlns="${TASK_NAMESPACE}">`,
    "  <RegistrationInfo>",
    "    <Author>kconnect</Author>",
    `    <Description>${xml(description)}</Description>`,
    `    <URI>\\${TASK_NAME}</URI>`,
    "  </RegistrationInfo>",
    "  <Triggers>",
    "    <BootTrigger>",
    "      <Enabled>true</Enabled>",
    "    </BootTrigger>",
    "  </Triggers>",
    "  <Principals>",
    '    <Principal id="Author">',
    `      <UserId>${SYSTEM_SID}</UserId>`,
    "      <RunLevel>HighestAvailable</RunLevel>",
    "    </Principal>",
    "  </Principals>",
    "  <Settings>",
    "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
    "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
    "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
    "    <AllowHardTerminate>true</AllowHardTerminate>",
    "    <StartWhenAvailable>true</StartWhenAvailable>",
    "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>",
    "    <IdleSettings>",
    "      <StopOnIdleEnd>false</StopOnIdleEnd>",
    "      <RestartOnIdle>false</RestartOnIdle>",
    "    </IdleSettings>",
    "    <AllowStartOnDemand>true</AllowStartOnDemand>",
    "    <Enabled>true</Enabled>",
    "    <Hidden>false</Hidden>",
    "    <RunOnlyIfIdle>false</RunOnlyIfIdle>",
    "    <WakeToRun>false</WakeToRun>",
    "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
    "    <Priority>4</Priority>",
    "    <RestartOnFailure>",
    "      <Interval>PT1M</Interval>",
    "      <Count>999</Count>",
    "    </RestartOnFailure>",
    "  </Settings>",
    '  <Actions Context="Author">',
    "    <Exec>",
    `      <Command>${xml(program)}</Command>`,
    ...(args.length > 0
      ? [`      <Arguments>${xml(args.map(quoteWindowsArg).join(" "))}</Arguments>`]
      : []),
    `      <WorkingDirectory>${xml(folderOf(program))}</WorkingDirectory>`,
    "    </Exec>",
    "  </Actions>",
    "</Task>",
    "",
  ].join("\r\n");
}

/**
 * `text` as UTF-16 LE with a byte-order mark (FF FE), the file `schtasks /Create /XML` is given.
 *
 * @example
 * ```ts
 * import { utf16le } from "./windows_task.ts";
 * utf16le("<"); // Uint8Array [0xff, 0xfe, 0x3c, 0x00]
 * ```
 */
export function utf16le(text: string): Uint8Array {
  const out = new Uint8Array(2 + text.length * 2);
  out[0] = 0xff;
  out[1] = 0xfe;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out[2 + 2 * i] = u & 0xff;
    out[3 + 2 * i] = u >> 8;
  }
  return out;
}

/** The task definition file's bytes for `o`: {@linkcode taskXml} as {@linkcode utf16le}. */
export function taskFileBytes(o: TaskOptions): Uint8Array {
  return utf16le(taskXml(o));
}

/** `schtasks.exe` command lines (program first) for the task `name`. */
export const schtasks = {
  /** Creates the task from the definition in `file`, replacing one of the same name. */
  create: (file: string, name = TASK_NAME): string[] => [
    SCHTASKS,
    "/Create",
    "/TN",
    name,
    "/XML",
    file,
    "/F",
  ],
  /** Starts the task now. */
  run: (name = TASK_NAME): string[] => [SCHTASKS, "/Run", "/TN", name],
  /** Stops the running task (Task Scheduler ends its process). */
  end: (name = TASK_NAME): string[] => [SCHTASKS, "/End", "/TN", name],
  /** Deletes the task without asking. */
  delete: (name = TASK_NAME): string[] => [SCHTASKS, "/Delete", "/TN", name, "/F"],
  /** Succeeds when the task exists (fails otherwise). */
  query: (name = TASK_NAME): string[] => [SCHTASKS, "/Query", "/TN", name],
};

/** What installing and removing the task needs: a runner that throws with the command's output. */
export interface TaskRunner {
  /** Runs a command; throws an error holding its output when it fails. */
  run(cmd: string[]): Promise<void>;
}

/** Creates the task from `file` (already written) and starts it; returns what was done. */
export async function createAndStartTask(r: TaskRunner, file: string): Promise<string[]> {
  await r.run(schtasks.create(file));
  await r.run(schtasks.run());
  return [`scheduled task ${TASK_NAME} created (at boot, as SYSTEM) and started`];
}

/**
 * Stops and deletes the task when it exists; returns what was done. A stop that fails (the task
 * was not running) is ignored; a delete that fails is not.
 */
export async function stopAndDeleteTask(r: TaskRunner): Promise<string[]> {
  const exists = await r.run(schtasks.query()).then(() => true, () => false);
  if (!exists) return [`no scheduled task ${TASK_NAME}`];
  await r.run(schtasks.end()).catch(() => {});
  await r.run(schtasks.delete());
  return [`scheduled task ${TASK_NAME} stopped and deleted`];
}
