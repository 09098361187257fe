/**
 * Windows: kconnect's folder for the daemon's log and state, `%ProgramData%\kconnect`.
 *
 * @module
 */

/**
 * `%ProgramData%\kconnect`. Users may create folders in ProgramData, so whoever writes there as
 * SYSTEM checks first that only administrators can change the folder.
 *
 * @example
 * ```ts
 * import { windowsDataDir } from "./data_dir.ts";
 * windowsDataDir(() => "D:\\ProgramData\\"); // "D:\\ProgramData\\kconnect"
 * ```
 */
export function windowsDataDir(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): string {
  return `${(env("ProgramData") ?? "C:\\ProgramData").replace(/\\+$/, "")}\\kconnect`;
}
