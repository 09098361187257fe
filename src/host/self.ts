/**
 * How to run this kconnect again as another process: the compiled binary itself, or
 * `deno run` of `main.ts` when running from source.
 *
 * From source, the child runs from the lock file and the Deno cache exactly as they are
 * (`--frozen --cached-only`, with this checkout's `deno.json` named explicitly so the working
 * directory does not matter): the daemon, a credentials helper or anything started inside a
 * network namespace may have no route to the npm registry, and must never need one. The parent
 * already loaded the same module graph, so the cache holds it.
 *
 * @module
 */
import { CLIENT_V8_FLAGS, v8FlagsArg } from "../v8_flags.ts";

/** Whether this process is `deno` running kconnect's source (not a compiled binary). */
export function runningFromSource(): boolean {
  return /(^|\/)deno(\.exe)?$/.test(Deno.execPath());
}

/** The repository root when running from source (with a trailing slash). */
function sourceRoot(): string {
  return decodeURIComponent(new URL("../../", import.meta.url).pathname);
}

/** The path of kconnect's `main.ts`, from this file's location. */
export function mainModulePath(): string {
  return `${sourceRoot()}main.ts`;
}

/**
 * `deno run` flags for running this checkout's code offline: its `deno.json` (and so its
 * import map and `deno.lock`), the lock must not change, and nothing is fetched.
 *
 * @example
 * ```ts
 * import { sourceRunFlags } from "./self.ts";
 * const args = ["run", "-A", ...sourceRunFlags(), "tool.ts"];
 * ```
 */
export function sourceRunFlags(): string[] {
  return ["--config", `${sourceRoot()}deno.json`, "--frozen", "--cached-only"];
}

/**
 * The command (program and leading arguments) that runs this kconnect: `[binary]` when
 * compiled, `[deno, "run", "-A", …sourceRunFlags(), <V8 flags>, "<main.ts>"]` from source (with
 * the V8 flags the binary is compiled with, `src/v8_flags.ts`).
 *
 * @example
 * ```ts
 * import { selfCommand } from "./self.ts";
 * const [program] = selfCommand(); // e.g. "/usr/bin/deno"
 * ```
 */
export function selfCommand(): string[] {
  if (!runningFromSource()) return [Deno.execPath()];
  return [
    Deno.execPath(),
    "run",
    "-A",
    ...sourceRunFlags(),
    v8FlagsArg(CLIENT_V8_FLAGS),
    mainModulePath(),
  ];
}
