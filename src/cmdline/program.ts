/**
 * The root `kconnect` command and the top-level runner: global options, how commander writes
 * and exits, and how errors become `kconnect: <message>` with an exit status. Both programs are
 * built on it: the `kconnect` binary (`main.ts`, commands from `src/cli/`) and the traffic
 * manager's bundle (`src/manager/main.ts`, `traffic-manager` only).
 *
 * Global options (`--kubeconfig`, `--context`, `-n/--namespace`, `--log-level`) are accepted by
 * every command, before or after its name, as kubectl's are (see {@linkcode createProgram});
 * `-V/--version` only before a command name.
 *
 * Exit status: 0 on success (and for `--help`/`--version`), 1 when a command fails, 2 for a
 * usage error (unknown command or option, missing or invalid argument).
 *
 * @module
 */

import { Command, CommanderError, Help, Option } from "commander";
import { DEFAULT_LOG_LEVEL, getLogLevel, LOG_LEVELS, logger, setLogLevel } from "../log.ts";
import { VERSION } from "../version.ts";
import { print, printError } from "./output.ts";

/** Exit status for a command that failed. */
export const EXIT_FAILURE = 1;
/** Exit status for a usage error. */
export const EXIT_USAGE = 2;

/** Commander error codes that mean the command line itself was wrong. */
const USAGE_CODES = new Set([
  "commander.unknownOption",
  "commander.unknownCommand",
  "commander.missingArgument",
  "commander.optionMissingArgument",
  "commander.missingMandatoryOptionValue",
  "commander.conflictingOption",
  "commander.excessArguments",
  "commander.invalidArgument",
]);

const log = logger("cli");

/**
 * Thrown by a command's action when the command line is wrong in a way commander cannot check
 * (e.g. a malformed `--route`): {@linkcode runProgram} reports it like commander's own usage
 * errors, with exit status 2. For option values, commander's `InvalidArgumentError` thrown
 * from an option's parse function does the same.
 *
 * @example
 * ```ts
 * import { UsageError } from "./program.ts";
 * const err = new UsageError("--route 10.96.0.0/33: prefix length must be at most 32");
 * err.name; // "UsageError"
 * ```
 */
export class UsageError extends Error {
  /** Creates a usage error with the message shown after `kconnect: `. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * Thrown by a command's action to end with a particular exit status after it has printed what
 * it had to say (e.g. `kconnect status` exits 3 when not connected). Nothing more is printed.
 *
 * @example
 * ```ts
 * import { ExitStatus } from "./program.ts";
 * new ExitStatus(3).status; // 3
 * ```
 */
export class ExitStatus extends Error {
  /** The exit status. */
  readonly status: number;
  /** Creates it. */
  constructor(status: number) {
    super(`exit status ${status}`);
    this.name = "ExitStatus";
    this.status = status;
  }
}

/** Help heading of the kubectl-style global options, in every command's `--help`. */
export const GLOBAL_OPTIONS_HEADING = "Global Options:";

/** How the help of a command that has no use for a kubectl flag describes it. */
export const IGNORED_NOTE = "accepted for kubectl compatibility; ignored by this command";

/** The kubectl flags that scripts pass to every command. */
const KUBECTL_FLAGS = [
  {
    flags: "--kubeconfig <path>",
    what: "kubeconfig file",
    detail: "(default: KUBECONFIG or ~/.kube/config)",
  },
  { flags: "--context <name>", what: "kube context", detail: "(default: the current context)" },
  { flags: "-n, --namespace <ns>", what: "namespace", detail: "(default: the context's)" },
] as const;

const LOG_LEVEL_FLAGS = "--log-level <level>";
const LOG_LEVEL_WHAT = "what to log to stderr";

/** Attribute names of the global options (`opts()` keys). */
const GLOBAL_KEYS = [...KUBECTL_FLAGS.map((f) => f.flags), LOG_LEVEL_FLAGS].map((flags) =>
  new Option(flags).attributeName()
);

/**
 * Creates the root command with the global options; subcommands are registered on it by the
 * `register*` functions in `src/cli/<name>.ts` (and `src/manager/command.ts`).
 *
 * The global options (`--kubeconfig`, `--context`, `-n/--namespace`, `--log-level`) are accepted
 * by every command, before or after its name, as kubectl accepts them:
 * {@linkcode addGlobalOptions} (which {@linkcode runProgram} calls) gives each subcommand the ones
 * it does not define itself, and before each action their values are shared along the chain from
 * the root to the command that runs, the one nearest that command winning. A command that uses
 * one defines it itself as usual and reads it from its own `opts()`; a command that does not
 * says so in its `--help`.
 *
 * Options are positional: the root's are read before the command name, the command's after it.
 *
 * @example
 * ```ts
 * import { createProgram } from "./program.ts";
 * const program = createProgram();
 * program.name(); // "kconnect"
 * ```
 */
export function createProgram(): Command {
  const program = new Command("kconnect")
    .description(
      "Make a remote Kubernetes cluster's network local: pod and service IPs and cluster DNS " +
        "names, through a TUN device and a tunnel over the API server.",
    )
    .version(VERSION, "-V, --version", "print the version number")
    // Inherited by subcommands created after this: each reads its own options after its name.
    .enablePositionalOptions()
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true)
    .configureHelp({
      // The global options come last in every command's help, after its own.
      groupItems<T extends Command | Option>(
        this: Help,
        unsorted: T[],
        visible: T[],
        getGroup: (item: T) => string,
      ): Map<string, T[]> {
        type Groups = Map<string, T[]>;
        const byGroup = getGroup as (item: Command | Option) => string;
        const groups = Help.prototype.groupItems.call(this, unsorted, visible, byGroup) as Groups;
        const global = groups.get(GLOBAL_OPTIONS_HEADING);
        if (global) {
          groups.delete(GLOBAL_OPTIONS_HEADING);
          groups.set(GLOBAL_OPTIONS_HEADING, global);
        }
        return groups;
      },
    });
  for (const f of KUBECTL_FLAGS) {
    program.addOption(
      new Option(f.flags, `${f.what} ${f.detail}, for the commands that use one`)
        .helpGroup(GLOBAL_OPTIONS_HEADING),
    );
  }
  program.addOption(
    new Option(LOG_LEVEL_FLAGS, LOG_LEVEL_WHAT)
      .choices(LOG_LEVELS)
      .default(DEFAULT_LOG_LEVEL)
      .env("KCONNECT_LOG_LEVEL")
      .helpGroup(GLOBAL_OPTIONS_HEADING),
  );
  program.addHelpText(
    "after",
    "\nGlobal options are accepted by every command, before or after its name\n" +
      "(kconnect --kubeconfig FILE status, kconnect status --kubeconfig FILE); a command\n" +
      "that has no use for one says so in its --help.",
  );
  program.hook("preAction", (thisCommand, actionCommand) => {
    shareGlobalOptions(actionCommand);
    setLogLevel(thisCommand.opts<{ logLevel: string }>().logLevel);
  });
  return program;
}

/**
 * Gives every subcommand of `program`, at every depth, the global options it does not define
 * itself: `--kubeconfig`, `--context` and `-n, --namespace` described as ignored by it, and
 * `--log-level`. Options a command defines itself (`up`'s `--kubeconfig`, …) stay as they are,
 * only listed under the global heading in its help. Idempotent; {@linkcode runProgram} calls it.
 *
 * @example
 * ```ts
 * import { addGlobalOptions, createProgram } from "./program.ts";
 * const program = createProgram();
 * program.command("hello").action(() => {});
 * addGlobalOptions(program);
 * program.commands[0].options.map((o) => o.long);
 * // ["--kubeconfig", "--context", "--namespace", "--log-level"]
 * ```
 */
export function addGlobalOptions(program: Command): void {
  for (const command of program.commands) {
    const has = (flag: string | undefined) =>
      command.options.find((o) => flag !== undefined && (o.long === flag || o.short === flag));
    const add = (flags: string, description: string, choices?: readonly string[]) => {
      const probe = new Option(flags);
      const own = has(probe.long);
      if (own) {
        own.helpGroup(GLOBAL_OPTIONS_HEADING);
        return;
      }
      // A command using the short flag for something else keeps it: only the long one is global.
      if (has(probe.short)) flags = flags.replace(/^-\w, /, "");
      const option = new Option(flags, description).helpGroup(GLOBAL_OPTIONS_HEADING);
      command.addOption(choices ? option.choices(choices) : option);
    };
    for (const f of KUBECTL_FLAGS) add(f.flags, `${f.what}: ${IGNORED_NOTE}`);
    add(LOG_LEVEL_FLAGS, LOG_LEVEL_WHAT, LOG_LEVELS);
    addGlobalOptions(command);
  }
}

const SOURCE_RANK: Record<string, number> = { cli: 3, env: 2, config: 2, implied: 2, default: 1 };

/**
 * Makes each global option's value the same on `command` and its ancestors: the value given on
 * the command line nearest to `command` (so `kconnect --kubeconfig A up --kubeconfig B` uses B),
 * else from the environment, else a default. Each keeps its source, so `getOptionValueSource()`
 * tells on any of them whether it was given.
 */
function shareGlobalOptions(command: Command): void {
  const chain: Command[] = [];
  for (let c: Command | null = command; c; c = c.parent) chain.push(c);
  for (const key of GLOBAL_KEYS) {
    let best: Command | undefined;
    let bestRank = 0;
    for (const c of chain) {
      if (c.getOptionValue(key) === undefined) continue;
      const rank = SOURCE_RANK[c.getOptionValueSource(key) ?? ""] ?? 0;
      if (rank > bestRank) [best, bestRank] = [c, rank];
    }
    if (best === undefined) continue;
    const value = best.getOptionValue(key);
    const source = best.getOptionValueSource(key);
    for (const c of chain) {
      if (c.options.some((o) => o.attributeName() === key)) {
        c.setOptionValueWithSource(key, value, source);
      }
    }
  }
}

function configure(command: Command): void {
  command.exitOverride();
  command.configureOutput({
    writeOut: print,
    writeErr: printError,
    // Errors are reported once, by runProgram(), as "kconnect: <message>".
    outputError: () => {},
  });
  for (const sub of command.commands) configure(sub);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    let message = err.message;
    for (let cause = err.cause; cause instanceof Error; cause = cause.cause) {
      message += `: ${cause.message}`;
    }
    return message;
  }
  return String(err);
}

/**
 * Parses `args` (without the program name) and runs the chosen command. Never throws and
 * never exits: it reports errors on stderr as `kconnect: <message>` (with the stack trace
 * only at log level `debug`) and returns the exit status.
 *
 * @example
 * ```ts
 * import { createProgram, runProgram } from "./program.ts";
 * const program = createProgram();
 * program.command("hello").action(() => {});
 * const status = await runProgram(program, ["hello"]); // 0
 * ```
 */
export async function runProgram(program: Command, args: string[]): Promise<number> {
  addGlobalOptions(program);
  configure(program);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      if (err.code === "commander.help") {
        // Help was written already: on stdout (`kconnect help <command>`, status 0) or on
        // stderr because no command was given.
        return err.exitCode === 0 ? 0 : EXIT_USAGE;
      }
      if (USAGE_CODES.has(err.code)) {
        printError(`kconnect: ${err.message.replace(/^error: /, "")}\n`);
        printError("Run 'kconnect --help' for usage.\n");
        return EXIT_USAGE;
      }
      printError(`kconnect: ${err.message.replace(/^error: /, "")}\n`);
      return err.exitCode || EXIT_FAILURE;
    }
    if (err instanceof ExitStatus) return err.status;
    printError(`kconnect: ${describe(err)}\n`);
    if (err instanceof UsageError) {
      printError("Run 'kconnect --help' for usage.\n");
      return EXIT_USAGE;
    }
    if (getLogLevel() === "debug" && err instanceof Error && err.stack) {
      log.debug(err.stack);
    }
    return EXIT_FAILURE;
  }
}
