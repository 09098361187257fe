/**
 * Step-by-step progress for long commands: one line per finished step, on stdout.
 *
 * @module
 */
import type { Progress } from "../log.ts";
import { printLine } from "../cmdline/output.ts";

/** Progress written to stdout, one line per event. */
export const consoleProgress: Progress = {
  done: (name, detail) => printLine(`✓ ${name}: ${detail}`),
  detail: (text) => printLine(`    ${text}`),
  warn: (text) => printLine(`! ${text}`),
};
