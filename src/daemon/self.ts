/**
 * How to run this kconnect again as another process: the compiled binary itself, or
 * `deno run -A <main.ts>` when running from source.
 *
 * @module
 */

/** Whether this process is `deno` running kconnect's source (not a compiled binary). */
export function runningFromSource(): boolean {
  return /(^|\/)deno(\.exe)?$/.test(Deno.execPath());
}

/** The path of kconnect's `main.ts`, from this file's location. */
export function mainModulePath(): string {
  return new URL("../../main.ts", import.meta.url).pathname;
}

/**
 * The command (program and leading arguments) that runs this kconnect: `[binary]` when
 * compiled, `[deno, "run", "-A", "<main.ts>"]` from source.
 *
 * @example
 * ```ts
 * import { selfCommand } from "./self.ts";
 * const [program] = selfCommand(); // e.g. "/usr/bin/deno"
 * ```
 */
export function selfCommand(): string[] {
  if (!runningFromSource()) return [Deno.execPath()];
  return [Deno.execPath(), "run", "-A", "--no-lock", mainModulePath()];
}
