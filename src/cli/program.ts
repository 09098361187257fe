/**
 * The root `kconnect` command and the top-level runner: global options, how commander writes
 * and exits, and how errors become `kconnect: <message>` with an exit status.
 *
 * Exit status: 0 on success (and for `--help`/`--version`), 1 when a command fails, 2 for a
 * usage error (unknown command or option, missing or invalid argument).
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
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

/**
 * Creates the root command with the global options; subcommands are registered on it by the
 * `register*` functions in `src/cli/<name>.ts`.
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
    .addOption(
      new Option("--log-level <level>", "what to log to stderr")
        .choices(LOG_LEVELS)
        .default(DEFAULT_LOG_LEVEL)
        .env("KCONNECT_LOG_LEVEL"),
    )
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true);
  program.hook("preAction", (thisCommand) => {
    setLogLevel(thisCommand.opts<{ logLevel: string }>().logLevel);
  });
  return program;
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
