/**
 * What `CreateProcessAsUserW` is handed, byte for byte, as pure builders: the command line
 * (quoted so that the MSVC C runtime and `CommandLineToArgvW` split it back into exactly the
 * arguments given), the UTF-16LE environment block, and the x64 layouts of `STARTUPINFOW`,
 * `STARTUPINFOEXW`, `PROCESS_INFORMATION`, `SECURITY_ATTRIBUTES` and
 * `JOBOBJECT_EXTENDED_LIMIT_INFORMATION`. Pointers and handles are
 * passed in as numbers (bigint addresses), so the builders do no I/O and tests compare bytes.
 * The sizes and offsets are checked against the mingw-w64 headers by
 * `windows_run_as_structs_test.ts`.
 *
 * @module
 */

/** `sizeof(STARTUPINFOW)` on x64. */
export const STARTUPINFOW_SIZE = 104;
/** `sizeof(STARTUPINFOEXW)` on x64: `STARTUPINFOW` then `lpAttributeList`. */
export const STARTUPINFOEXW_SIZE = 112;
/** `sizeof(PROCESS_INFORMATION)` on x64. */
export const PROCESS_INFORMATION_SIZE = 24;
/** `sizeof(SECURITY_ATTRIBUTES)` on x64. */
export const SECURITY_ATTRIBUTES_SIZE = 24;

/** Offsets of the `STARTUPINFOW` fields (and `STARTUPINFOEXW.lpAttributeList`) on x64. */
export const StartupInfo = {
  cb: 0,
  lpReserved: 8,
  lpDesktop: 16,
  lpTitle: 24,
  dwX: 32,
  dwY: 36,
  dwXSize: 40,
  dwYSize: 44,
  dwXCountChars: 48,
  dwYCountChars: 52,
  dwFillAttribute: 56,
  dwFlags: 60,
  wShowWindow: 64,
  cbReserved2: 66,
  lpReserved2: 72,
  hStdInput: 80,
  hStdOutput: 88,
  hStdError: 96,
} as const;
/** `offsetof(STARTUPINFOEXW, lpAttributeList)`. */
export const STARTUPINFOEX_ATTRIBUTE_LIST = 104;

/** Offsets of `PROCESS_INFORMATION` on x64. */
export const ProcessInformation = {
  hProcess: 0,
  hThread: 8,
  dwProcessId: 16,
  dwThreadId: 20,
} as const;

/** Offsets of `SECURITY_ATTRIBUTES` on x64. */
export const SecurityAttributes = {
  nLength: 0,
  lpSecurityDescriptor: 8,
  bInheritHandle: 16,
} as const;

/** `sizeof(JOBOBJECT_BASIC_LIMIT_INFORMATION)` on x64. */
export const JOBOBJECT_BASIC_LIMIT_INFORMATION_SIZE = 64;
/** `sizeof(JOBOBJECT_EXTENDED_LIMIT_INFORMATION)` on x64. */
export const JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE = 144;

/** Offsets of `JOBOBJECT_BASIC_LIMIT_INFORMATION` on x64. */
export const JobBasicLimitInformation = {
  PerProcessUserTimeLimit: 0,
  PerJobUserTimeLimit: 8,
  LimitFlags: 16,
  MinimumWorkingSetSize: 24,
  MaximumWorkingSetSize: 32,
  ActiveProcessLimit: 40,
  Affinity: 48,
  PriorityClass: 56,
  SchedulingClass: 60,
} as const;

/** Offsets of `JOBOBJECT_EXTENDED_LIMIT_INFORMATION` on x64 (`IoInfo` is an `IO_COUNTERS`). */
export const JobExtendedLimitInformation = {
  BasicLimitInformation: 0,
  IoInfo: 64,
  ProcessMemoryLimit: 112,
  JobMemoryLimit: 120,
  PeakProcessMemoryUsed: 128,
  PeakJobMemoryUsed: 136,
} as const;

/**
 * A `JOBOBJECT_EXTENDED_LIMIT_INFORMATION` (144 bytes) for `SetInformationJobObject` with
 * `JobObjectExtendedLimitInformation`: `BasicLimitInformation.LimitFlags` as given, every other
 * field zero (no time, memory, process-count or affinity limit; the zeros of the fields a flag
 * does not name are ignored by Windows).
 *
 * @example
 * ```ts
 * import { jobExtendedLimitInformation } from "./windows_run_as_structs.ts";
 * const info = jobExtendedLimitInformation(0x2000); // JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
 * if (info.length !== 144 || info[17] !== 0x20) throw new Error();
 * ```
 */
export function jobExtendedLimitInformation(limitFlags: number): Uint8Array {
  if (!Number.isInteger(limitFlags) || limitFlags < 0 || limitFlags > 0xffffffff) {
    throw new RangeError(`LimitFlags is a DWORD, not ${limitFlags}`);
  }
  const out = new Uint8Array(JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE);
  new DataView(out.buffer).setUint32(
    JobExtendedLimitInformation.BasicLimitInformation + JobBasicLimitInformation.LimitFlags,
    limitFlags,
    true,
  );
  return out;
}

/** The longest command line `CreateProcess` takes, in UTF-16 units with its NUL. */
export const MAX_COMMAND_LINE = 32767;

/**
 * Quotes one argument so that the MSVC C runtime (and `CommandLineToArgvW`) reads it back
 * unchanged: bare when it is non-empty and has no space, tab, newline, vertical tab or quote;
 * otherwise in quotes, with each `"` preceded by twice its backslashes plus one, and the
 * backslashes before the closing quote doubled. Backslashes elsewhere stay as they are.
 *
 * @example
 * ```ts
 * import { quoteWindowsArg } from "./windows_run_as_structs.ts";
 * if (quoteWindowsArg('a "b"\\') !== '"a \\"b\\"\\\\"') throw new Error();
 * if (quoteWindowsArg("") !== '""') throw new Error();
 * ```
 */
export function quoteWindowsArg(arg: string): string {
  if (arg.includes("\0")) throw new TypeError("A command-line argument cannot contain NUL");
  if (arg !== "" && !/[ \t\n\v"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      slashes++;
      continue;
    }
    if (ch === '"') out += "\\".repeat(slashes * 2 + 1) + '"';
    else out += "\\".repeat(slashes) + ch;
    slashes = 0;
  }
  return out + "\\".repeat(slashes * 2) + '"';
}

/**
 * Whether `path` is an absolute Windows path: `C:\…` (or `C:/…`), a UNC path `\\server\share…`,
 * or a `\\?\` path.
 *
 * @example
 * ```ts
 * import { isWindowsAbsolute } from "./windows_run_as_structs.ts";
 * if (!isWindowsAbsolute("C:\\Windows") || isWindowsAbsolute("Windows")) throw new Error();
 * ```
 */
export function isWindowsAbsolute(path: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(path) || /^\\\\[^\\/]/.test(path);
}

/**
 * The command line for `program` and `args`: the program in quotes (the C runtime reads the
 * first word up to the next quote, with no backslash escapes, so it must be an absolute path
 * without `"`), then each argument quoted by {@linkcode quoteWindowsArg}, one space apart.
 *
 * @example
 * ```ts
 * import { windowsCommandLine } from "./windows_run_as_structs.ts";
 * const line = windowsCommandLine("C:\\kc\\kconnect.exe", ["credentials", "--json"]);
 * if (line !== '"C:\\kc\\kconnect.exe" credentials --json') throw new Error();
 * ```
 */
export function windowsCommandLine(program: string, args: readonly string[]): string {
  if (!isWindowsAbsolute(program) || /["\0]/.test(program)) {
    throw new TypeError(
      `The program must be an absolute Windows path without quotes: ${JSON.stringify(program)}`,
    );
  }
  const line = [`"${program}"`, ...args.map(quoteWindowsArg)].join(" ");
  if (line.length + 1 > MAX_COMMAND_LINE) {
    throw new RangeError(
      `The command line is ${line.length} characters; Windows takes at most ${
        MAX_COMMAND_LINE - 1
      }`,
    );
  }
  return line;
}

/** `text` as NUL-terminated UTF-16LE bytes (an `LPCWSTR`). */
export function wideBytes(text: string): Uint8Array {
  if (text.includes("\0")) throw new TypeError("A wide string cannot contain NUL");
  const out = new Uint8Array((text.length + 1) * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < text.length; i++) view.setUint16(i * 2, text.charCodeAt(i), true);
  return out;
}

/** The case-insensitive order Windows keeps environment blocks in (ordinal, upper case). */
function envOrder(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The environment block for `CREATE_UNICODE_ENVIRONMENT`: UTF-16LE `NAME=value\0` strings sorted
 * by name without regard to case (ordinal comparison of the upper-cased names, as Windows
 * expects), then one more `\0`; an empty environment is two `\0`s. Names must be non-empty and
 * have no `=` (except a leading one, as in `=C:`) and no NUL; values no NUL; two names that differ
 * only in case are refused (Windows would keep one of them).
 *
 * @example
 * ```ts
 * import { environmentBlock } from "./windows_run_as_structs.ts";
 * const b = environmentBlock({ b: "2", A: "1" });
 * const text = String.fromCharCode(...new Uint16Array(b.buffer));
 * if (text !== "A=1\0b=2\0\0") throw new Error(JSON.stringify(text));
 * ```
 */
export function environmentBlock(env: Readonly<Record<string, string>>): Uint8Array {
  const names = Object.keys(env).sort(envOrder);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (name === "" || name.includes("\0") || name.indexOf("=", 1) !== -1) {
      throw new TypeError(`Not an environment variable name: ${JSON.stringify(name)}`);
    }
    if (env[name].includes("\0")) {
      throw new TypeError(`The environment variable ${name} contains NUL`);
    }
    if (i > 0 && envOrder(names[i - 1], name) === 0) {
      throw new TypeError(
        `The environment has both ${names[i - 1]} and ${name}, one name on Windows`,
      );
    }
  }
  const text = names.length === 0 ? "\0" : names.map((n) => `${n}=${env[n]}\0`).join("");
  const out = new Uint8Array((text.length + 1) * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < text.length; i++) view.setUint16(i * 2, text.charCodeAt(i), true);
  return out;
}

/** What goes into a `STARTUPINFOW`/`STARTUPINFOEXW`: addresses and handle values. */
export interface StartupInfoFields {
  /** Address of the `lpDesktop` wide string; 0 for NULL (inherit the daemon's). */
  desktop: bigint;
  /** The child's standard handles (`STARTF_USESTDHANDLES` is set). */
  stdin: bigint;
  stdout: bigint;
  stderr: bigint;
  /** Address of the attribute list: makes it a `STARTUPINFOEXW` (112 bytes); else 104. */
  attributeList?: bigint;
}

/**
 * A `STARTUPINFOW` (104 bytes), or a `STARTUPINFOEXW` (112) when `attributeList` is given, with
 * `cb` its size, `dwFlags` `STARTF_USESTDHANDLES`, the desktop and the three handles; every
 * other field zero.
 *
 * @example
 * ```ts
 * import { startupInfo } from "./windows_run_as_structs.ts";
 * const s = startupInfo({ desktop: 0n, stdin: 4n, stdout: 8n, stderr: 12n, attributeList: 16n });
 * if (s.length !== 112 || s[0] !== 112 || s[61] !== 1 || s[104] !== 16) throw new Error();
 * ```
 */
export function startupInfo(f: StartupInfoFields): Uint8Array {
  const ex = f.attributeList !== undefined;
  const out = new Uint8Array(ex ? STARTUPINFOEXW_SIZE : STARTUPINFOW_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(StartupInfo.cb, out.length, true);
  view.setBigUint64(StartupInfo.lpDesktop, f.desktop, true);
  view.setUint32(StartupInfo.dwFlags, 0x100, /* STARTF_USESTDHANDLES */ true);
  view.setBigUint64(StartupInfo.hStdInput, f.stdin, true);
  view.setBigUint64(StartupInfo.hStdOutput, f.stdout, true);
  view.setBigUint64(StartupInfo.hStdError, f.stderr, true);
  if (ex) view.setBigUint64(STARTUPINFOEX_ATTRIBUTE_LIST, f.attributeList!, true);
  return out;
}

/**
 * A `SECURITY_ATTRIBUTES` (24 bytes): `nLength` 24, the security descriptor at address
 * `descriptor` (0: none, the default), and `bInheritHandle` as given.
 *
 * @example
 * ```ts
 * import { securityAttributes } from "./windows_run_as_structs.ts";
 * const sa = securityAttributes(true);
 * if (sa.length !== 24 || sa[0] !== 24 || sa[16] !== 1) throw new Error();
 * ```
 */
export function securityAttributes(inherit: boolean, descriptor = 0n): Uint8Array {
  const out = new Uint8Array(SECURITY_ATTRIBUTES_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(SecurityAttributes.nLength, SECURITY_ATTRIBUTES_SIZE, true);
  view.setBigUint64(SecurityAttributes.lpSecurityDescriptor, descriptor, true);
  view.setInt32(SecurityAttributes.bInheritHandle, inherit ? 1 : 0, true);
  return out;
}

/** A `PROCESS_INFORMATION` as `CreateProcess` filled it. */
export interface ProcessInfo {
  process: bigint;
  thread: bigint;
  pid: number;
  tid: number;
}

/**
 * Reads a `PROCESS_INFORMATION` (24 bytes).
 *
 * @example
 * ```ts
 * import { readProcessInformation } from "./windows_run_as_structs.ts";
 * const pi = new Uint8Array(24);
 * pi[0] = 0x10;
 * pi[16] = 7;
 * const r = readProcessInformation(pi);
 * if (r.process !== 0x10n || r.pid !== 7) throw new Error();
 * ```
 */
export function readProcessInformation(bytes: Uint8Array): ProcessInfo {
  if (bytes.length < PROCESS_INFORMATION_SIZE) {
    throw new RangeError(`PROCESS_INFORMATION is ${PROCESS_INFORMATION_SIZE} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    process: view.getBigUint64(ProcessInformation.hProcess, true),
    thread: view.getBigUint64(ProcessInformation.hThread, true),
    pid: view.getUint32(ProcessInformation.dwProcessId, true),
    tid: view.getUint32(ProcessInformation.dwThreadId, true),
  };
}
