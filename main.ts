/**
 * kconnect's entry point: builds the command line from the commands in `src/cli/` (and
 * `traffic-manager`, which the manager bundle shares, from `src/manager/command.ts`) on the
 * command-line frame of `src/cmdline/`, and runs it.
 *
 * `deno run -A main.ts --help` runs it from source; `scripts/build.ts` compiles it into one
 * binary.
 *
 * @module
 */

import type { Command } from "commander";
import { registerCredentials } from "./src/cli/credentials.ts";
import { registerDaemon } from "./src/cli/daemon.ts";
import { registerDown } from "./src/cli/down.ts";
import { registerForward } from "./src/cli/forward.ts";
import { registerGatherLogs } from "./src/cli/gather_logs.ts";
import { registerInstall, registerUninstall } from "./src/cli/install.ts";
import { createProgram, runProgram } from "./src/cmdline/program.ts";
import { registerTrafficManager } from "./src/manager/command.ts";
import { registerSelfTest } from "./src/cli/self_test.ts";
import { registerService } from "./src/cli/service.ts";
import { registerStatus } from "./src/cli/status.ts";
import { registerUp } from "./src/cli/up.ts";
import { registerVersion } from "./src/cli/version.ts";

/**
 * Builds the `kconnect` command with every subcommand registered. Each subcommand lives in
 * `src/cli/<name>.ts` (`traffic-manager` in `src/manager/command.ts`) and exports a
 * `register<Name>(program)` function; add new ones here.
 *
 * @example
 * ```ts
 * import { buildProgram } from "./main.ts";
 * buildProgram().commands.map((c) => c.name()); // ["version", "forward"]
 * ```
 */
export function buildProgram(): Command {
  const program = createProgram();
  registerVersion(program);
  registerUp(program);
  registerDown(program);
  registerStatus(program);
  registerDaemon(program);
  registerCredentials(program);
  registerService(program);
  registerGatherLogs(program);
  registerForward(program);
  registerTrafficManager(program);
  registerInstall(program);
  registerUninstall(program);
  registerSelfTest(program);
  return program;
}

/**
 * Runs kconnect with `args` (without the program name) and returns the exit status; see
 * `src/cmdline/program.ts` for what each status means.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const status = await main(["version", "--json"]); // 0
 * ```
 */
export function main(args: string[]): Promise<number> {
  return runProgram(buildProgram(), args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
