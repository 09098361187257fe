/**
 * Placeholder for `kconnect forward`, which another change replaces. It only registers the
 * command so that `main.ts` can wire it up now.
 *
 * @module
 */

import type { Command } from "commander";

/**
 * Registers `kconnect forward` on `program`; for now it only reports that it is not available.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * import { registerForward } from "./forward.ts";
 * registerForward(new Command("kconnect"));
 * ```
 */
export function registerForward(program: Command): void {
  program
    .command("forward")
    .description("(not available yet)")
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new Error("forward is not available yet");
    });
}
