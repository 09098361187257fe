/**
 * Step-by-step progress for long commands: one line per finished step, on stdout.
 *
 * @module
 */
import { printLine } from "./output.ts";

/** Reports steps of a long operation. */
export interface Progress {
  /** A step is done: `name` and what came of it. */
  done(name: string, detail: string): void;
  /** An indented detail line under the last step. */
  detail(text: string): void;
  /** A warning line. */
  warn(text: string): void;
}

/** Progress written to stdout, one line per event. */
export const consoleProgress: Progress = {
  done: (name, detail) => printLine(`✓ ${name}: ${detail}`),
  detail: (text) => printLine(`    ${text}`),
  warn: (text) => printLine(`! ${text}`),
};
