/**
 * The native symbols and constants of running a program as another user on Windows (the
 * counterpart of `setpriv` in `src/k8s/as_user.ts`): `advapi32.dll` turns the impersonation
 * token the daemon holds into a primary token and starts the process with it, `kernel32.dll`
 * gives the pipes, the Job object the child runs in, the waits and the handle bookkeeping.
 *
 * Tables only: nothing is opened when this module loads, so it imports on every OS and
 * `deno check` covers it everywhere. The runner (`windows_run_as.ts`) takes the symbols objects
 * these tables type, so the test fake (`windows_run_as_fake.ts`) stays in step with them.
 *
 * Windows x64 has one calling convention and none of these functions is variadic. Handles are
 * `"pointer"`; out parameters (`PHANDLE`, `LPDWORD`, `PSIZE_T`) and structs are `"buffer"`;
 * `DWORD`/`UINT` are `"u32"`, `BOOL` and the enums (the two token ones, `JOBOBJECTINFOCLASS`)
 * `"i32"`, `DWORD_PTR`/`SIZE_T` `"usize"`.
 * Every value below is checked against the mingw-w64 headers by `windows_run_as_structs_test.ts`.
 *
 * @module
 */
import { WIN32_ERRORS, win32ErrorName } from "./win32_errors.ts";

/** `advapi32.dll`: the token and the process. */
export const ADVAPI32_RUN_AS_SYMBOLS = {
  /**
   * `BOOL DuplicateTokenEx(HANDLE hExistingToken, DWORD dwDesiredAccess,
   * LPSECURITY_ATTRIBUTES lpTokenAttributes, SECURITY_IMPERSONATION_LEVEL ImpersonationLevel,
   * TOKEN_TYPE TokenType, PHANDLE phNewToken)`
   */
  DuplicateTokenEx: {
    parameters: ["pointer", "u32", "pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  /**
   * `BOOL CreateProcessAsUserW(HANDLE hToken, LPCWSTR lpApplicationName, LPWSTR lpCommandLine,
   * LPSECURITY_ATTRIBUTES lpProcessAttributes, LPSECURITY_ATTRIBUTES lpThreadAttributes,
   * BOOL bInheritHandles, DWORD dwCreationFlags, LPVOID lpEnvironment,
   * LPCWSTR lpCurrentDirectory, LPSTARTUPINFOW lpStartupInfo,
   * LPPROCESS_INFORMATION lpProcessInformation)`. `lpCommandLine` must be writable memory.
   */
  CreateProcessAsUserW: {
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "pointer",
      "pointer",
      "i32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** `kernel32.dll`: pipes, the Job object, the attribute list, waits, exit codes, handles. */
export const KERNEL32_RUN_AS_SYMBOLS = {
  /**
   * `HANDLE CreateJobObjectW(LPSECURITY_ATTRIBUTES lpJobAttributes, LPCWSTR lpName)`: both NULL
   * (a handle that is not inheritable, an unnamed job no one else can open); NULL on failure.
   */
  CreateJobObjectW: { parameters: ["pointer", "pointer"], result: "pointer" },
  /**
   * `BOOL SetInformationJobObject(HANDLE hJob, JOBOBJECTINFOCLASS JobObjectInformationClass,
   * LPVOID lpJobObjectInformation, DWORD cbJobObjectInformationLength)`
   */
  SetInformationJobObject: { parameters: ["pointer", "i32", "buffer", "u32"], result: "i32" },
  /** `BOOL TerminateJobObject(HANDLE hJob, UINT uExitCode)`: every process in the job. */
  TerminateJobObject: { parameters: ["pointer", "u32"], result: "i32" },
  /** `BOOL CreatePipe(PHANDLE hReadPipe, PHANDLE hWritePipe, LPSECURITY_ATTRIBUTES, DWORD nSize)` */
  CreatePipe: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  /** `BOOL SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags)` */
  SetHandleInformation: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  /**
   * `BOOL InitializeProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList,
   * DWORD dwAttributeCount, DWORD dwFlags, PSIZE_T lpSize)`: called once with NULL for the size.
   */
  InitializeProcThreadAttributeList: {
    parameters: ["buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  /**
   * `BOOL UpdateProcThreadAttribute(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList, DWORD dwFlags,
   * DWORD_PTR Attribute, PVOID lpValue, SIZE_T cbSize, PVOID lpPreviousValue,
   * PSIZE_T lpReturnSize)`: the list keeps the `lpValue` pointer, not a copy.
   */
  UpdateProcThreadAttribute: {
    parameters: ["buffer", "u32", "usize", "buffer", "usize", "pointer", "pointer"],
    result: "i32",
  },
  /** `void DeleteProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList)` */
  DeleteProcThreadAttributeList: { parameters: ["buffer"], result: "void" },
  /**
   * `BOOL ReadFile(HANDLE, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
   * LPDWORD lpNumberOfBytesRead, LPOVERLAPPED)`, on a worker thread: a pipe read blocks.
   * Its last error is that thread's, so `GetLastError` on the JavaScript thread cannot see it.
   */
  ReadFile: {
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** `BOOL WriteFile(HANDLE, LPCVOID, DWORD, LPDWORD, LPOVERLAPPED)`, on a worker thread. */
  WriteFile: {
    parameters: ["pointer", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** `DWORD WaitForSingleObject(HANDLE, DWORD dwMilliseconds)`, on a worker thread. */
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32", nonblocking: true },
  /** `BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode)` */
  GetExitCodeProcess: { parameters: ["pointer", "buffer"], result: "i32" },
  /** `BOOL TerminateProcess(HANDLE hProcess, UINT uExitCode)` */
  TerminateProcess: { parameters: ["pointer", "u32"], result: "i32" },
  /** `BOOL CloseHandle(HANDLE)` */
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  /** `DWORD GetLastError(void)`: read right after the failing call, nothing in between. */
  GetLastError: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The advapi32 functions, as `Deno.dlopen` returns them (or a fake typed the same). */
export type Advapi32RunAsSymbols = Deno.DynamicLibrary<typeof ADVAPI32_RUN_AS_SYMBOLS>["symbols"];
/** The kernel32 functions, as `Deno.dlopen` returns them (or a fake typed the same). */
export type Kernel32RunAsSymbols = Deno.DynamicLibrary<typeof KERNEL32_RUN_AS_SYMBOLS>["symbols"];

/** Both libraries, what {@linkcode runAsToken} takes. */
export interface WindowsRunAsSymbols {
  advapi32: Advapi32RunAsSymbols;
  kernel32: Kernel32RunAsSymbols;
}

/** `winnt.h` token access rights. */
export const TOKEN_ASSIGN_PRIMARY = 0x0001;
/** Duplicate the token. */
export const TOKEN_DUPLICATE = 0x0002;
/** Query the token. */
export const TOKEN_QUERY = 0x0008;
/** Change the default owner, group and DACL. */
export const TOKEN_ADJUST_DEFAULT = 0x0080;
/** Change the session id (needs SeTcbPrivilege). */
export const TOKEN_ADJUST_SESSIONID = 0x0100;
/** The access the primary token is duplicated with. */
export const PRIMARY_TOKEN_ACCESS = TOKEN_ASSIGN_PRIMARY | TOKEN_DUPLICATE | TOKEN_QUERY |
  TOKEN_ADJUST_DEFAULT | TOKEN_ADJUST_SESSIONID;
/** `SECURITY_IMPERSONATION_LEVEL` `SecurityImpersonation`. */
export const SECURITY_IMPERSONATION = 2;
/** `TOKEN_TYPE` `TokenPrimary`. */
export const TOKEN_PRIMARY = 1;
/** `TOKEN_TYPE` `TokenImpersonation`. */
export const TOKEN_IMPERSONATION = 2;

/** `CreateProcess` flag: the environment block is UTF-16. */
export const CREATE_UNICODE_ENVIRONMENT = 0x00000400;
/** `CreateProcess` flag: a console program gets no console window. */
export const CREATE_NO_WINDOW = 0x08000000;
/** `CreateProcess` flag: `lpStartupInfo` is a `STARTUPINFOEXW`. */
export const EXTENDED_STARTUPINFO_PRESENT = 0x00080000;
/** `STARTUPINFOW.dwFlags`: `hStdInput`, `hStdOutput`, `hStdError` are set. */
export const STARTF_USESTDHANDLES = 0x00000100;
/** `SetHandleInformation` mask and flag: the handle is inherited by children. */
export const HANDLE_FLAG_INHERIT = 0x00000001;
/** `ProcThreadAttributeValue(2, FALSE, TRUE, FALSE)`: the only handles a child inherits. */
export const PROC_THREAD_ATTRIBUTE_HANDLE_LIST = 0x00020002;
/**
 * `ProcThreadAttributeValue(13, FALSE, TRUE, FALSE)`: the jobs the process is put in before its
 * first instruction (Windows 10 and later).
 */
export const PROC_THREAD_ATTRIBUTE_JOB_LIST = 0x0002000d;
/** `JOBOBJECTINFOCLASS` `JobObjectExtendedLimitInformation`. */
export const JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9;
/** Job limit: closing the last handle of the job terminates every process in it. */
export const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000;
/**
 * Job limit: a process with an unhandled exception dies at once (no Windows Error Reporting
 * dialog or dump keeping it, and the pipes it holds, alive).
 */
export const JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x00000400;
/** Job limit: processes may leave the job with `CREATE_BREAKAWAY_FROM_JOB` (never set here). */
export const JOB_OBJECT_LIMIT_BREAKAWAY_OK = 0x00000800;
/** Job limit: every child leaves the job silently (never set here). */
export const JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK = 0x00001000;
/** The limits of the child's job: the whole tree dies with the job, crashes end at once. */
export const RUN_AS_JOB_LIMITS = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE |
  JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
/** `WaitForSingleObject` results and its infinite timeout. */
export const WAIT_OBJECT_0 = 0;
/** The wait timed out. */
export const WAIT_TIMEOUT = 0x102;
/** The wait failed. */
export const WAIT_FAILED = 0xffffffff;
/** No timeout. */
export const INFINITE = 0xffffffff;
/** `GetExitCodeProcess` while the process runs. */
export const STILL_ACTIVE = 259;

/** Win32 error codes this runner (and its fake) meet (`winerror.h`). */
export const RunAsError = WIN32_ERRORS;

/**
 * The symbolic name of a Win32 error code with its number, e.g.
 * `ERROR_PRIVILEGE_NOT_HELD (1314)`; codes this module does not know are named by
 * `win32ErrorName`, or given as `error <n>`.
 *
 * @example
 * ```ts
 * import { runAsErrorName } from "./windows_run_as_symbols.ts";
 * if (runAsErrorName(109) !== "ERROR_BROKEN_PIPE (109)") throw new Error();
 * ```
 */
export function runAsErrorName(code: number): string {
  const name = win32ErrorName(code);
  return name.startsWith("error ") ? name : `${name} (${code})`;
}
