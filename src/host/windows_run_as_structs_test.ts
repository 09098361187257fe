/**
 * The command line, environment block and structs `CreateProcessAsUserW` gets, byte for byte;
 * the quoting checked against a slow reference parser of the MSVC runtime's rules; and every
 * size, offset, constant and function prototype checked against the real mingw-w64 headers by
 * compiling `_Static_assert`s, when `x86_64-w64-mingw32-gcc` is installed
 * (`apt-get install gcc-mingw-w64-x86-64-win32`, as `scripts/setup.sh` does).
 */
import { assertWindowsHeaders, hasMingw } from "./_test_mingw.ts";
import assert from "node:assert/strict";
import {
  environmentBlock,
  JobBasicLimitInformation,
  JobExtendedLimitInformation,
  jobExtendedLimitInformation,
  JOBOBJECT_BASIC_LIMIT_INFORMATION_SIZE,
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE,
  MAX_COMMAND_LINE,
  PROCESS_INFORMATION_SIZE,
  ProcessInformation,
  quoteWindowsArg,
  readProcessInformation,
  SECURITY_ATTRIBUTES_SIZE,
  SecurityAttributes,
  securityAttributes,
  StartupInfo,
  startupInfo,
  STARTUPINFOEX_ATTRIBUTE_LIST,
  STARTUPINFOEXW_SIZE,
  STARTUPINFOW_SIZE,
  wideBytes,
  windowsCommandLine,
} from "./windows_run_as_structs.ts";
import * as sym from "./windows_run_as_symbols.ts";

function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return new Uint8Array(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

/** UTF-16LE of `s`, written out the slow way. */
function utf16le(s: string): Uint8Array {
  return new Uint8Array([...s].flatMap((c) => {
    const u = c.charCodeAt(0);
    return [u & 0xff, u >> 8];
  }));
}

/**
 * A slow reference of how the MSVC C runtime (2008 and later) and `CommandLineToArgvW` split a
 * command line: argv[0] up to the next space outside quotes, quotes removed, no escapes; then
 * spaces and tabs separate; 2n backslashes before `"` give n and the quote toggles quoting,
 * 2n+1 give n and a literal `"`; other backslashes are literal; `""` inside quotes is a `"`.
 */
function parseCommandLine(line: string): string[] {
  const argv: string[] = [];
  let i = 0;
  let first = "";
  let quoted = false;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if ((c === " " || c === "\t") && !quoted) break;
    else first += c;
  }
  argv.push(first);
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) return argv;
    let arg = "";
    quoted = false;
    for (; i < line.length; i++) {
      const c = line[i];
      if (c === "\\") {
        let n = 0;
        while (line[i] === "\\") {
          n++;
          i++;
        }
        if (line[i] === '"') {
          arg += "\\".repeat(n >> 1);
          if (n % 2 === 1) {
            arg += '"';
            continue;
          }
        } else {
          arg += "\\".repeat(n);
        }
        i--;
        continue;
      }
      if (c === '"') {
        if (quoted && line[i + 1] === '"') {
          arg += '"';
          i++;
        } else quoted = !quoted;
        continue;
      }
      if ((c === " " || c === "\t") && !quoted) break;
      arg += c;
    }
    argv.push(arg);
  }
}

// [argument, how it is quoted]
const QUOTING: [string, string][] = [
  ["plain", "plain"],
  ["", '""'],
  ["a b", '"a b"'],
  ["tab\there", '"tab\there"'],
  ["line\nbreak", '"line\nbreak"'],
  ["a\\b", "a\\b"], // backslashes not before a quote stay as they are
  ["\\", "\\"],
  ["\\\\server\\share", "\\\\server\\share"],
  ["C:\\Program Files\\", '"C:\\Program Files\\\\"'], // doubled before the closing quote
  ["a b\\\\", '"a b\\\\\\\\"'],
  ['"', '"\\""'],
  ['a"b', '"a\\"b"'],
  ['a\\"b', '"a\\\\\\"b"'], // 1 backslash + quote: 3 backslashes, then \"
  ['a\\\\"b', '"a\\\\\\\\\\"b"'],
  ['say "hi" \\', '"say \\"hi\\" \\\\"'],
  [
    "--kubeconfig=C:\\Users\\Jo Doe\\.kube\\config",
    '"--kubeconfig=C:\\Users\\Jo Doe\\.kube\\config"',
  ],
  ["ü€😀", "ü€😀"],
];

Deno.test("quoteWindowsArg() quotes the tricky cases as the MSVC runtime expects", () => {
  for (const [arg, quoted] of QUOTING) {
    assert.equal(quoteWindowsArg(arg), quoted, JSON.stringify(arg));
    assert.deepEqual(parseCommandLine(`"C:\\p.exe" ${quoted}`), ["C:\\p.exe", arg]);
  }
  assert.throws(() => quoteWindowsArg("a\0b"), TypeError);
});

Deno.test("windowsCommandLine() round-trips through the reference parser (table and random)", () => {
  const program = "C:\\Program Files\\kconnect\\kconnect.exe";
  const args = QUOTING.map(([a]) => a);
  const line = windowsCommandLine(program, args);
  assert.ok(line.startsWith(`"${program}" plain "" "a b"`), line);
  assert.deepEqual(parseCommandLine(line), [program, ...args]);
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const alphabet = ["a", " ", "\\", '"', "\t", "b"];
  for (let round = 0; round < 2000; round++) {
    const argv = Array.from(
      { length: rand(4) },
      () => Array.from({ length: rand(7) }, () => alphabet[rand(alphabet.length)]).join(""),
    );
    assert.deepEqual(parseCommandLine(windowsCommandLine(program, argv)), [program, ...argv]);
  }
});

Deno.test("windowsCommandLine() refuses what Windows cannot run as given", () => {
  assert.throws(() => windowsCommandLine("kconnect.exe", []), TypeError, "relative");
  assert.throws(() => windowsCommandLine('C:\\a"b.exe', []), TypeError);
  assert.throws(() => windowsCommandLine("C:\\a.exe", ["x\0"]), TypeError);
  assert.equal(windowsCommandLine("\\\\srv\\share\\k.exe", []), '"\\\\srv\\share\\k.exe"');
  const room = MAX_COMMAND_LINE - 1 - '"C:\\a.exe" '.length;
  assert.equal(windowsCommandLine("C:\\a.exe", ["x".repeat(room)]).length, MAX_COMMAND_LINE - 1);
  assert.throws(() => windowsCommandLine("C:\\a.exe", ["x".repeat(room + 1)]), RangeError);
});

Deno.test("wideBytes() is NUL-terminated UTF-16LE (golden)", () => {
  assert.deepEqual(wideBytes("C:\\"), hex("43 00 3a 00 5c 00 00 00"));
  assert.deepEqual(wideBytes("€"), hex("ac 20 00 00"));
  assert.deepEqual(wideBytes(""), hex("00 00"));
});

Deno.test("environmentBlock() sorts by upper-cased name and ends in a double NUL (golden)", () => {
  // "_" (0x5f) sorts after "P" upper-cased but before "p": Windows compares upper case.
  const block = environmentBlock({ _x: "y", Path: "C:\\W", b: "2", A: "1", "=C:": "C:\\" });
  assert.deepEqual(block, utf16le("=C:=C:\\\0A=1\0b=2\0Path=C:\\W\0_x=y\0\0"));
  // deno-fmt-ignore
  assert.deepEqual(environmentBlock({ b: "", A: "é" }), hex(`
    41 00 3d 00 e9 00 00 00   # A=é\\0
    62 00 3d 00 00 00         # b=\\0
    00 00                     # end of the block
  `));
  assert.deepEqual(environmentBlock({}), hex("00 00 00 00"), "empty: two NULs");
});

Deno.test("environmentBlock() refuses names and values Windows cannot hold", () => {
  assert.throws(() => environmentBlock({ "": "x" }), TypeError);
  assert.throws(() => environmentBlock({ "A=B": "x" }), TypeError);
  assert.throws(() => environmentBlock({ "A\0": "x" }), TypeError);
  assert.throws(() => environmentBlock({ A: "x\0y" }), TypeError);
  assert.throws(() => environmentBlock({ path: "a", PATH: "b" }), /one name on Windows/);
});

Deno.test("STARTUPINFOEXW and STARTUPINFOW: the runner's fields at their x64 offsets (golden)", () => {
  // deno-fmt-ignore
  const EX = hex(`
    70 00 00 00 00 00 00 00   # cb 112, padding
    00 00 00 00 00 00 00 00   # lpReserved
    88 77 66 55 44 33 22 11   # lpDesktop
    00 00 00 00 00 00 00 00   # lpTitle
    ${"00 ".repeat(28)}       # dwX … dwFillAttribute
    00 01 00 00               # dwFlags STARTF_USESTDHANDLES
    00 00 00 00               # wShowWindow, cbReserved2
    00 00 00 00               # padding
    00 00 00 00 00 00 00 00   # lpReserved2
    04 01 00 00 00 00 00 00   # hStdInput
    0c 01 00 00 00 00 00 00   # hStdOutput
    14 01 00 00 00 00 00 00   # hStdError
    00 dd cc bb aa 00 00 00   # lpAttributeList
  `);
  const fields = { desktop: 0x1122334455667788n, stdin: 0x104n, stdout: 0x10cn, stderr: 0x114n };
  assert.equal(EX.length, STARTUPINFOEXW_SIZE);
  assert.deepEqual(startupInfo({ ...fields, attributeList: 0xaabbccdd00n }), EX);
  const plain = startupInfo(fields);
  assert.equal(plain.length, STARTUPINFOW_SIZE);
  assert.equal(plain[0], STARTUPINFOW_SIZE);
  assert.deepEqual(plain.subarray(1), EX.subarray(1, STARTUPINFOW_SIZE));
});

Deno.test("SECURITY_ATTRIBUTES and PROCESS_INFORMATION (golden)", () => {
  // deno-fmt-ignore
  assert.deepEqual(securityAttributes(true), hex(`
    18 00 00 00 00 00 00 00   # nLength 24, padding
    00 00 00 00 00 00 00 00   # lpSecurityDescriptor NULL
    01 00 00 00 00 00 00 00   # bInheritHandle TRUE, padding
  `));
  assert.equal(securityAttributes(false)[16], 0);
  // deno-fmt-ignore
  const pi = hex(`
    a0 01 00 00 00 00 00 00   # hProcess
    a4 01 00 00 00 00 00 00   # hThread
    d2 04 00 00 2e 16 00 00   # dwProcessId 1234, dwThreadId 5678
  `);
  assert.deepEqual(readProcessInformation(pi), {
    process: 0x1a0n,
    thread: 0x1a4n,
    pid: 1234,
    tid: 5678,
  });
  assert.throws(() => readProcessInformation(new Uint8Array(23)), RangeError);
});

Deno.test("JOBOBJECT_EXTENDED_LIMIT_INFORMATION: LimitFlags at 16 of 144 bytes (golden)", () => {
  // deno-fmt-ignore
  const KILL_ON_CLOSE_AND_DIE = hex(`
    00 00 00 00 00 00 00 00   # PerProcessUserTimeLimit
    00 00 00 00 00 00 00 00   # PerJobUserTimeLimit
    00 24 00 00 00 00 00 00   # LimitFlags 0x2400, padding
    00 00 00 00 00 00 00 00   # MinimumWorkingSetSize
    00 00 00 00 00 00 00 00   # MaximumWorkingSetSize
    00 00 00 00 00 00 00 00   # ActiveProcessLimit, padding
    00 00 00 00 00 00 00 00   # Affinity
    00 00 00 00 00 00 00 00   # PriorityClass, SchedulingClass
    ${"00 ".repeat(48)}       # IoInfo (IO_COUNTERS)
    00 00 00 00 00 00 00 00   # ProcessMemoryLimit
    00 00 00 00 00 00 00 00   # JobMemoryLimit
    00 00 00 00 00 00 00 00   # PeakProcessMemoryUsed
    00 00 00 00 00 00 00 00   # PeakJobMemoryUsed
  `);
  assert.equal(KILL_ON_CLOSE_AND_DIE.length, JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE);
  const flags = sym.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE |
    sym.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  assert.equal(sym.RUN_AS_JOB_LIMITS, flags);
  assert.deepEqual(jobExtendedLimitInformation(flags), KILL_ON_CLOSE_AND_DIE);
  assert.equal(
    sym.RUN_AS_JOB_LIMITS &
      (sym.JOB_OBJECT_LIMIT_BREAKAWAY_OK | sym.JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK),
    0,
    "nothing the child starts may leave the job",
  );
  const all = jobExtendedLimitInformation(0xffffffff);
  assert.deepEqual(all.subarray(16, 20), hex("ff ff ff ff"));
  assert.throws(() => jobExtendedLimitInformation(-1), RangeError);
  assert.throws(() => jobExtendedLimitInformation(2 ** 32), RangeError);
});

/** The C prototypes of the FFI tables, as `processthreadsapi.h` etc. declare them. */
const PROTOTYPES: Record<string, [string, string[]]> = {
  DuplicateTokenEx: ["BOOL", [
    "HANDLE",
    "DWORD",
    "LPSECURITY_ATTRIBUTES",
    "SECURITY_IMPERSONATION_LEVEL",
    "TOKEN_TYPE",
    "PHANDLE",
  ]],
  CreateProcessAsUserW: ["BOOL", [
    "HANDLE",
    "LPCWSTR",
    "LPWSTR",
    "LPSECURITY_ATTRIBUTES",
    "LPSECURITY_ATTRIBUTES",
    "BOOL",
    "DWORD",
    "LPVOID",
    "LPCWSTR",
    "LPSTARTUPINFOW",
    "LPPROCESS_INFORMATION",
  ]],
  CreatePipe: ["BOOL", ["PHANDLE", "PHANDLE", "LPSECURITY_ATTRIBUTES", "DWORD"]],
  SetHandleInformation: ["BOOL", ["HANDLE", "DWORD", "DWORD"]],
  InitializeProcThreadAttributeList: ["BOOL", [
    "LPPROC_THREAD_ATTRIBUTE_LIST",
    "DWORD",
    "DWORD",
    "PSIZE_T",
  ]],
  UpdateProcThreadAttribute: ["BOOL", [
    "LPPROC_THREAD_ATTRIBUTE_LIST",
    "DWORD",
    "DWORD_PTR",
    "PVOID",
    "SIZE_T",
    "PVOID",
    "PSIZE_T",
  ]],
  DeleteProcThreadAttributeList: ["VOID", ["LPPROC_THREAD_ATTRIBUTE_LIST"]],
  CreateJobObjectW: ["HANDLE", ["LPSECURITY_ATTRIBUTES", "LPCWSTR"]],
  SetInformationJobObject: ["BOOL", ["HANDLE", "JOBOBJECTINFOCLASS", "LPVOID", "DWORD"]],
  TerminateJobObject: ["BOOL", ["HANDLE", "UINT"]],
  ReadFile: ["BOOL", ["HANDLE", "LPVOID", "DWORD", "LPDWORD", "LPOVERLAPPED"]],
  WriteFile: ["BOOL", ["HANDLE", "LPCVOID", "DWORD", "LPDWORD", "LPOVERLAPPED"]],
  WaitForSingleObject: ["DWORD", ["HANDLE", "DWORD"]],
  GetExitCodeProcess: ["BOOL", ["HANDLE", "LPDWORD"]],
  TerminateProcess: ["BOOL", ["HANDLE", "UINT"]],
  CloseHandle: ["BOOL", ["HANDLE"]],
  GetLastError: ["DWORD", []],
};

/** The FFI types a C type may be declared as, and the size the C type must have. */
function ffiFor(c: string): [string[], number] {
  if (c === "DWORD" || c === "UINT") return [["u32"], 4];
  if (
    c === "BOOL" || c === "SECURITY_IMPERSONATION_LEVEL" || c === "TOKEN_TYPE" ||
    c === "JOBOBJECTINFOCLASS"
  ) {
    return [["i32"], 4];
  }
  if (c === "DWORD_PTR" || c === "SIZE_T") return [["usize"], 8];
  if (c === "VOID") return [["void"], 0];
  return [["pointer", "buffer"], 8]; // HANDLE and every P…/LP… type
}

Deno.test("the FFI tables have the parameter kinds of the C prototypes", () => {
  const tables = { ...sym.ADVAPI32_RUN_AS_SYMBOLS, ...sym.KERNEL32_RUN_AS_SYMBOLS };
  assert.deepEqual(Object.keys(tables).sort(), Object.keys(PROTOTYPES).sort());
  for (const [name, def] of Object.entries(tables)) {
    const [result, params] = PROTOTYPES[name];
    assert.equal(def.parameters.length, params.length, name);
    params.forEach((c, i) => assert.ok(ffiFor(c)[0].includes(def.parameters[i]), `${name} ${i}`));
    assert.ok(ffiFor(result)[0].includes(def.result), `${name} result`);
  }
});

Deno.test({
  name: "sizes, offsets, constants and prototypes match the Windows headers (mingw-w64)",
  ignore: !hasMingw,
  fn: async () => {
    const checks: string[] = [];
    const field = (type: string, table: Record<string, number>) => {
      for (const [name, offset] of Object.entries(table)) {
        checks.push(`_Static_assert(offsetof(${type}, ${name}) == ${offset}, "${type}.${name}");`);
      }
    };
    const size = (type: string, n: number) =>
      checks.push(`_Static_assert(sizeof(${type}) == ${n}, "sizeof ${type}");`);
    field("STARTUPINFOW", StartupInfo);
    field("PROCESS_INFORMATION", ProcessInformation);
    field("SECURITY_ATTRIBUTES", SecurityAttributes);
    field("JOBOBJECT_BASIC_LIMIT_INFORMATION", JobBasicLimitInformation);
    field("JOBOBJECT_EXTENDED_LIMIT_INFORMATION", JobExtendedLimitInformation);
    checks.push(
      `_Static_assert(offsetof(JOBOBJECT_EXTENDED_LIMIT_INFORMATION, BasicLimitInformation.LimitFlags) == ${
        JobExtendedLimitInformation.BasicLimitInformation + JobBasicLimitInformation.LimitFlags
      }, "LimitFlags");`,
    );
    checks.push(
      `_Static_assert(offsetof(STARTUPINFOEXW, lpAttributeList) == ${STARTUPINFOEX_ATTRIBUTE_LIST}, "ex");`,
    );
    size("STARTUPINFOW", STARTUPINFOW_SIZE);
    size("STARTUPINFOEXW", STARTUPINFOEXW_SIZE);
    size("PROCESS_INFORMATION", PROCESS_INFORMATION_SIZE);
    size("SECURITY_ATTRIBUTES", SECURITY_ATTRIBUTES_SIZE);
    size("JOBOBJECT_BASIC_LIMIT_INFORMATION", JOBOBJECT_BASIC_LIMIT_INFORMATION_SIZE);
    size("JOBOBJECT_EXTENDED_LIMIT_INFORMATION", JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE);
    size(
      "IO_COUNTERS",
      JobExtendedLimitInformation.ProcessMemoryLimit - JobExtendedLimitInformation.IoInfo,
    );
    const constants: Record<string, number> = {
      TOKEN_ASSIGN_PRIMARY: sym.TOKEN_ASSIGN_PRIMARY,
      TOKEN_DUPLICATE: sym.TOKEN_DUPLICATE,
      TOKEN_QUERY: sym.TOKEN_QUERY,
      TOKEN_ADJUST_DEFAULT: sym.TOKEN_ADJUST_DEFAULT,
      TOKEN_ADJUST_SESSIONID: sym.TOKEN_ADJUST_SESSIONID,
      SecurityImpersonation: sym.SECURITY_IMPERSONATION,
      TokenPrimary: sym.TOKEN_PRIMARY,
      TokenImpersonation: sym.TOKEN_IMPERSONATION,
      CREATE_UNICODE_ENVIRONMENT: sym.CREATE_UNICODE_ENVIRONMENT,
      CREATE_NO_WINDOW: sym.CREATE_NO_WINDOW,
      EXTENDED_STARTUPINFO_PRESENT: sym.EXTENDED_STARTUPINFO_PRESENT,
      STARTF_USESTDHANDLES: sym.STARTF_USESTDHANDLES,
      HANDLE_FLAG_INHERIT: sym.HANDLE_FLAG_INHERIT,
      PROC_THREAD_ATTRIBUTE_HANDLE_LIST: sym.PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
      PROC_THREAD_ATTRIBUTE_JOB_LIST: sym.PROC_THREAD_ATTRIBUTE_JOB_LIST,
      JobObjectExtendedLimitInformation: sym.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
      JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: sym.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
      JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION: sym.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
      JOB_OBJECT_LIMIT_BREAKAWAY_OK: sym.JOB_OBJECT_LIMIT_BREAKAWAY_OK,
      JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK: sym.JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK,
      WAIT_OBJECT_0: sym.WAIT_OBJECT_0,
      WAIT_TIMEOUT: sym.WAIT_TIMEOUT,
      WAIT_FAILED: sym.WAIT_FAILED,
      INFINITE: sym.INFINITE,
      STILL_ACTIVE: sym.STILL_ACTIVE,
      ...sym.RunAsError,
    };
    for (const [name, n] of Object.entries(constants)) {
      checks.push(`_Static_assert((DWORD)(${name}) == ${n}u, "${name}");`);
    }
    for (const [name, [result, params]] of Object.entries(PROTOTYPES)) {
      const list = params.length === 0 ? "void" : params.join(", ");
      checks.push(
        `_Static_assert(__builtin_types_compatible_p(__typeof__(&${name}), ${result} (WINAPI *)(${list})), "${name}");`,
      );
      for (const c of [result, ...params]) {
        if (c !== "VOID") size(c, ffiFor(c)[1]);
      }
    }
    await assertWindowsHeaders(["windows.h"], checks, 80);
  },
});
