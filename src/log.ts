/**
 * kconnect's one logger. Quiet by default: only errors and warnings are written unless
 * `--log-level` (or `setLogLevel()`) asks for more. Every line goes to stderr, so stdout stays
 * free for a command's own output (see `src/cmdline/output.ts`).
 *
 * A line looks like `2025-01-02T03:04:05.678Z WARN  tun: queue full dropped=3`. Messages and
 * values may carry text from outside (a manager's warnings, an exec plugin's stderr), so control
 * characters in them are escaped ({@linkcode escapeControls}), and a message's own newlines
 * (a multi-line error, a stack trace) continue the line indented by two spaces: every record
 * starts with its timestamp and nothing logged can move a terminal's cursor or forge a record.
 *
 * Beside it, {@linkcode Progress}: the port through which long operations report their steps to
 * the user, whoever shows them.
 *
 * @example Log from a module
 * ```ts
 * import { logger, setLogLevel } from "./log.ts";
 *
 * const log = logger("tun");
 * setLogLevel("error");
 * log.info("opened", { name: "kc0", mtu: 1500 }); // below the level: not written
 * ```
 *
 * @module
 */

/** The levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Extra key/value pairs appended to a line as `key=value`. */
export type LogFields = Record<string, unknown>;

/** A logger bound to a scope (the part of the program that writes). */
export interface Logger {
  /** Something failed and the program cannot do what was asked. */
  error(message: string, fields?: LogFields): void;
  /** Something is wrong but the program goes on. */
  warn(message: string, fields?: LogFields): void;
  /** A notable step: a device opened, a route added. */
  info(message: string, fields?: LogFields): void;
  /** Detail for finding bugs; may be frequent. */
  debug(message: string, fields?: LogFields): void;
}

/**
 * The steps of a long operation (`up`, `install`), for the person waiting: what the operation
 * reports, not how it is shown. The command line prints them (`consoleProgress` in
 * `src/cli/progress.ts`); the daemon sends them to its client.
 */
export interface Progress {
  /** A step is done: `name` and what came of it. */
  done(name: string, detail: string): void;
  /** An indented detail line under the last step. */
  detail(text: string): void;
  /** A warning line. */
  warn(text: string): void;
}

/** The level a fresh process logs at. */
export const DEFAULT_LOG_LEVEL: LogLevel = "warn";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const encoder = new TextEncoder();

let currentLevel: LogLevel = DEFAULT_LOG_LEVEL;
let writer: (line: string) => void = writeStderr;

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

/**
 * Tells whether `value` names a log level.
 *
 * @example
 * ```ts
 * import { isLogLevel } from "./log.ts";
 * isLogLevel("debug"); // true
 * isLogLevel("trace"); // false
 * ```
 */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Sets the most detailed level that is written; lines below it are dropped.
 *
 * @throws {TypeError} when `level` is not one of {@linkcode LOG_LEVELS}.
 *
 * @example
 * ```ts
 * import { getLogLevel, setLogLevel } from "./log.ts";
 * setLogLevel("debug");
 * getLogLevel(); // "debug"
 * setLogLevel("warn");
 * ```
 */
export function setLogLevel(level: string): void {
  if (!isLogLevel(level)) {
    throw new TypeError(
      `Cannot set log level "${level}": expected one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  currentLevel = level;
}

/**
 * Returns the level set by {@linkcode setLogLevel} (default {@linkcode DEFAULT_LOG_LEVEL}).
 *
 * @example
 * ```ts
 * import { getLogLevel } from "./log.ts";
 * getLogLevel(); // "warn" unless changed
 * ```
 */
export function getLogLevel(): LogLevel {
  return currentLevel;
}

/**
 * Tells whether a line at `level` would be written now; use it to skip building costly
 * messages.
 *
 * @example
 * ```ts
 * import { isLogEnabled } from "./log.ts";
 * if (isLogEnabled("debug")) {
 *   // format a packet dump only when it will be shown
 * }
 * ```
 */
export function isLogEnabled(level: LogLevel): boolean {
  return RANK[level] <= RANK[currentLevel];
}

/**
 * Replaces where lines go (stderr by default) and returns the previous writer, so tests can
 * capture log output and put the old writer back.
 *
 * @example
 * ```ts
 * import { logger, setLogWriter } from "./log.ts";
 * const lines: string[] = [];
 * const previous = setLogWriter((line) => lines.push(line));
 * logger("test").error("boom");
 * setLogWriter(previous);
 * ```
 */
export function setLogWriter(next: (line: string) => void): (line: string) => void {
  const previous = writer;
  writer = next;
  return previous;
}

// C0 controls but tab and newline, DEL, C1 controls, bidirectional overrides and isolates, and
// the Unicode line and paragraph separators.
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS_ALL =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r" };

function escapeOne(c: string): string {
  return SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * Replaces the control characters in untrusted `text` with visible escapes (`\u001b`, `\n`):
 * C0 and C1 controls, DEL, bidirectional overrides and the Unicode line separators. Tabs stay,
 * and newlines too when `keepNewlines` is set. The escapes are JSON's, so inside a JSON string
 * they mean the same characters.
 *
 * @example
 * ```ts
 * import { escapeControls } from "./log.ts";
 * escapeControls("\x1b]0;owned\x07ok"); // "\\u001b]0;owned\\u0007ok"
 * escapeControls("a\nb"); // "a\\nb"
 * escapeControls("a\nb", { keepNewlines: true }); // "a\nb"
 * ```
 */
export function escapeControls(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines ? CONTROLS : CONTROLS_ALL, escapeOne);
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return escapeControls(JSON.stringify(value.message));
  if (typeof value === "string") {
    const plain = /^[^\s"=]+$/.test(value) && escapeControls(value) === value;
    return plain ? value : escapeControls(JSON.stringify(value));
  }
  if (typeof value === "bigint") return value.toString();
  if (value === undefined) return "undefined";
  try {
    return escapeControls(JSON.stringify(value) ?? String(value));
  } catch {
    return escapeControls(String(value));
  }
}

/**
 * Formats one log line (without writing it). Exposed for tests.
 *
 * @example
 * ```ts
 * import { formatLogLine } from "./log.ts";
 * const line = formatLogLine(new Date(0), "info", "dns", "listening", { port: 53 });
 * // "1970-01-01T00:00:00.000Z INFO  dns: listening port=53\n"
 * ```
 */
export function formatLogLine(
  time: Date,
  level: LogLevel,
  scope: string,
  message: string,
  fields?: LogFields,
): string {
  const text = escapeControls(message.replace(/\n+$/, ""), { keepNewlines: true })
    .replaceAll("\n", "\n  ");
  let line = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${scope}: ${text}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) line += ` ${key}=${formatValue(value)}`;
  }
  return line + "\n";
}

function write(level: LogLevel, scope: string, message: string, fields?: LogFields): void {
  if (RANK[level] > RANK[currentLevel]) return;
  try {
    writer(formatLogLine(new Date(), level, scope, message, fields));
  } catch {
    // A closed stderr must not take the program down.
  }
}

/**
 * Returns a logger whose lines are tagged with `scope` (e.g. `"tun"`, `"dns"`, `"cli"`).
 *
 * @example
 * ```ts
 * import { logger } from "./log.ts";
 * const log = logger("routes");
 * log.warn("route already present", { dst: "10.96.0.0/12" });
 * ```
 */
export function logger(scope: string): Logger {
  return {
    error: (message, fields) => write("error", scope, message, fields),
    warn: (message, fields) => write("warn", scope, message, fields),
    info: (message, fields) => write("info", scope, message, fields),
    debug: (message, fields) => write("debug", scope, message, fields),
  };
}
