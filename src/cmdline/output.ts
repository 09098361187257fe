/**
 * The one place where commands write their output. Results go to stdout, user-facing
 * messages (usage errors, the final `kconnect: <message>`) to stderr; diagnostics go through
 * the logger in `src/log.ts` instead. Writes are synchronous so that output and an immediate
 * `Deno.exit()` cannot race.
 *
 * What is printed often holds text from outside: the traffic manager's warnings, cluster domain
 * and namespaces, an exec plugin's stderr, another member's error in `status`. So every write
 * here escapes control characters ({@linkcode escapeControls}: C0 but tab and newline, DEL, C1,
 * bidirectional overrides) — nobody can send ANSI or OSC sequences to a user's terminal through
 * kconnect. kconnect's own output has none; JSON output keeps its meaning, as the escapes are
 * JSON's.
 *
 * @module
 */
import { escapeControls } from "../log.ts";

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(escapeControls(text, { keepNewlines: true }));
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/**
 * Writes `text` to stdout as given but for control characters (add the newline yourself, or use
 * {@linkcode printLine}).
 *
 * @example
 * ```ts
 * import { print } from "./output.ts";
 * print("no newline here");
 * ```
 */
export function print(text: string): void {
  writeAll(Deno.stdout, text);
}

/**
 * Writes `text` and a newline to stdout.
 *
 * @example
 * ```ts
 * import { printLine } from "./output.ts";
 * printLine("kconnect 0.1.0");
 * ```
 */
export function printLine(text = ""): void {
  writeAll(Deno.stdout, text + "\n");
}

/**
 * Writes `text` to stderr as given but for control characters.
 *
 * @example
 * ```ts
 * import { printError } from "./output.ts";
 * printError("kconnect: something failed\n");
 * ```
 */
export function printError(text: string): void {
  try {
    writeAll(Deno.stderr, text);
  } catch {
    // Nowhere left to report to.
  }
}
