/**
 * Checks Windows struct layouts and constants against the real headers, for tests: C
 * `_Static_assert`s compiled (syntax only) by mingw-w64's `x86_64-w64-mingw32-gcc`, which
 * `scripts/setup.sh` installs (`gcc-mingw-w64-x86-64-win32`).
 *
 * @module
 */
import assert from "node:assert/strict";

/** The compiler. */
export const MINGW = "x86_64-w64-mingw32-gcc";

/** Whether mingw-w64 is installed (tests that need it are ignored otherwise, and CI fails then). */
export const hasMingw: boolean = (() => {
  try {
    return new Deno.Command(MINGW, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/**
 * Compiles `checks` (C statements, usually `_Static_assert`s) after `#include`s of `headers`
 * for Windows 10, and fails with the compiler's message when any does not hold. At least
 * `atLeast` checks must be given, so a generator that makes none cannot pass.
 */
export async function assertWindowsHeaders(
  headers: readonly string[],
  checks: readonly string[],
  atLeast: number,
): Promise<void> {
  assert.ok(checks.length >= atLeast, `${checks.length} checks, expected at least ${atLeast}`);
  const source = [
    "#define _WIN32_WINNT 0x0A00",
    ...headers.map((h) => `#include <${h}>`),
    "#include <stddef.h>",
    ...checks,
    "",
  ].join("\n");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/layout.c`, source);
    const out = await new Deno.Command(MINGW, {
      args: ["-fsyntax-only", `${dir}/layout.c`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
