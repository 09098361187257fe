/**
 * The native side of the Windows control channel: the kernel32 and advapi32 functions a named
 * pipe server and client need, the constants they take, and the pure pieces around them (the
 * pipe's security descriptor in SDDL, the `OVERLAPPED` and `SECURITY_ATTRIBUTES` layouts, and
 * the readers of `TOKEN_USER` / `TOKEN_GROUPS`). Tables only: nothing is opened when this module
 * loads, so it imports on every OS and `deno check` covers it everywhere. `windows_pipe.ts`
 * takes the symbols objects these tables type, so its test fake stays in step with them.
 *
 * Windows x64 has one calling convention; none of these functions is variadic. Handles are
 * `"pointer"`, strings NUL-terminated UTF-16LE `"buffer"`s, `DWORD` `"u32"`, `BOOL` `"i32"`.
 *
 * @module
 */
import { parseSid } from "../host/windows_acl.ts";
import { WIN32_ERRORS, win32ErrorName } from "../host/win32_errors.ts";

/** kernel32 and advapi32, synchronous calls (on the JavaScript thread). */
export const PIPE_SYMBOLS = {
  /** `HANDLE CreateNamedPipeW(LPCWSTR, DWORD OpenMode, DWORD PipeMode, DWORD MaxInstances, DWORD OutSize, DWORD InSize, DWORD DefaultTimeOut, LPSECURITY_ATTRIBUTES)` */
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "buffer"],
    result: "pointer",
  },
  /** `BOOL ConnectNamedPipe(HANDLE, LPOVERLAPPED)` */
  ConnectNamedPipe: { parameters: ["pointer", "buffer"], result: "i32" },
  /** `HANDLE CreateFileW(LPCWSTR, DWORD Access, DWORD Share, LPSECURITY_ATTRIBUTES, DWORD Disposition, DWORD FlagsAndAttributes, HANDLE Template)` */
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "buffer", "u32", "u32", "pointer"],
    result: "pointer",
  },
  /** `HANDLE CreateEventW(LPSECURITY_ATTRIBUTES, BOOL ManualReset, BOOL InitialState, LPCWSTR Name)` */
  CreateEventW: { parameters: ["buffer", "i32", "i32", "buffer"], result: "pointer" },
  /** `BOOL ReadFile(HANDLE, LPVOID, DWORD, LPDWORD, LPOVERLAPPED)` */
  ReadFile: { parameters: ["pointer", "buffer", "u32", "buffer", "buffer"], result: "i32" },
  /** `BOOL WriteFile(HANDLE, LPCVOID, DWORD, LPDWORD, LPOVERLAPPED)` */
  WriteFile: { parameters: ["pointer", "buffer", "u32", "buffer", "buffer"], result: "i32" },
  /** `BOOL GetOverlappedResult(HANDLE, LPOVERLAPPED, LPDWORD, BOOL Wait)` */
  GetOverlappedResult: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "i32" },
  /** `BOOL CancelIoEx(HANDLE, LPOVERLAPPED)`: NULL cancels every operation on the handle. */
  CancelIoEx: { parameters: ["pointer", "buffer"], result: "i32" },
  /** `BOOL CloseHandle(HANDLE)` */
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  /** `DWORD GetLastError(void)`: read right after the failing call, nothing in between. */
  GetLastError: { parameters: [], result: "u32" },
  /** `HANDLE GetCurrentThread(void)`: a pseudo handle, never closed. */
  GetCurrentThread: { parameters: [], result: "pointer" },
  /** `BOOL ImpersonateNamedPipeClient(HANDLE)`: only after something was read from the pipe. */
  ImpersonateNamedPipeClient: { parameters: ["pointer"], result: "i32" },
  /** `BOOL RevertToSelf(void)` */
  RevertToSelf: { parameters: [], result: "i32" },
  /** `BOOL OpenThreadToken(HANDLE Thread, DWORD Access, BOOL OpenAsSelf, PHANDLE)` */
  OpenThreadToken: { parameters: ["pointer", "u32", "i32", "buffer"], result: "i32" },
  /** `BOOL GetTokenInformation(HANDLE, TOKEN_INFORMATION_CLASS, LPVOID, DWORD, PDWORD)` */
  GetTokenInformation: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  /** `BOOL ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR, DWORD Revision, PSECURITY_DESCRIPTOR*, PULONG)` */
  ConvertStringSecurityDescriptorToSecurityDescriptorW: {
    parameters: ["buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** `DWORD GetSecurityInfo(HANDLE, SE_OBJECT_TYPE, SECURITY_INFORMATION, PSID*, PSID*, PACL*, PACL*, PSECURITY_DESCRIPTOR*)` */
  GetSecurityInfo: {
    parameters: ["pointer", "u32", "u32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "u32",
  },
  /** `BOOL LookupAccountNameW(LPCWSTR System, LPCWSTR Name, PSID, LPDWORD, LPWSTR Domain, LPDWORD, PSID_NAME_USE)` */
  LookupAccountNameW: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** `HLOCAL LocalFree(HLOCAL)` */
  LocalFree: { parameters: ["pointer"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The waits, which run on a worker thread so the event loop stays free. */
export const PIPE_ASYNC_SYMBOLS = {
  /** `DWORD WaitForSingleObject(HANDLE, DWORD Milliseconds)` */
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32", nonblocking: true },
  /** `BOOL WaitNamedPipeW(LPCWSTR, DWORD TimeOut)`: a free instance, when all are busy. */
  WaitNamedPipeW: { parameters: ["buffer", "u32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** Which library each {@linkcode PIPE_SYMBOLS} entry lives in (the rest are kernel32's). */
export const ADVAPI32_NAMES = [
  "ImpersonateNamedPipeClient",
  "RevertToSelf",
  "OpenThreadToken",
  "GetTokenInformation",
  "ConvertStringSecurityDescriptorToSecurityDescriptorW",
  "GetSecurityInfo",
  "LookupAccountNameW",
] as const;

/** The synchronous functions, as `Deno.dlopen` returns them (or a fake typed the same). */
export type PipeSymbols = Deno.DynamicLibrary<typeof PIPE_SYMBOLS>["symbols"];
/** The waits (each returns a promise). */
export type PipeAsyncSymbols = Deno.DynamicLibrary<typeof PIPE_ASYNC_SYMBOLS>["symbols"];
/** Both, as the pipe code takes them. */
export interface PipeNative {
  sym: PipeSymbols;
  wait: PipeAsyncSymbols;
}

/** Win32 error codes the pipe code tells apart (`winerror.h`). */
export const PipeError = WIN32_ERRORS;

/** The symbolic name of a Win32 error code, or `error <n>`. */
export const pipeErrorName: (code: number) => string = win32ErrorName;

/** `CreateNamedPipeW` open mode: both directions. */
export const PIPE_ACCESS_DUPLEX = 0x3;
/** Open mode: fail with `ERROR_ACCESS_DENIED` when the name already exists (squatting). */
export const FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000;
/** Open mode / CreateFileW flag: overlapped I/O. */
export const FILE_FLAG_OVERLAPPED = 0x40000000;
/** Pipe mode: byte stream, blocking semantics for non-overlapped callers, local clients only. */
export const PIPE_MODE = 0x0 /* PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT */ |
  0x8; /* PIPE_REJECT_REMOTE_CLIENTS */
/** `PIPE_UNLIMITED_INSTANCES` */
export const PIPE_UNLIMITED_INSTANCES = 255;
/** `CreateFileW` disposition. */
export const OPEN_EXISTING = 3;
/**
 * `CreateFileW` flags of the client: the server may impersonate it (the daemon needs this to
 * run `kconnect credentials` as the client); a server that is not the daemon could only use
 * that with SeImpersonatePrivilege, which ordinary users do not hold, and the client checks the
 * pipe's owner before it sends anything.
 */
export const SECURITY_SQOS_PRESENT = 0x00100000;
/** `SECURITY_IMPERSONATION` (`SecurityImpersonation << 16`). */
export const SECURITY_IMPERSONATION = 0x00020000;

/** `FILE_READ_DATA` */
export const FILE_READ_DATA = 0x1;
/** `FILE_WRITE_DATA` */
export const FILE_WRITE_DATA = 0x2;
/** `FILE_CREATE_PIPE_INSTANCE` (`FILE_APPEND_DATA`): part of GENERIC_WRITE, never granted. */
export const FILE_CREATE_PIPE_INSTANCE = 0x4;
/** `FILE_READ_ATTRIBUTES` */
export const FILE_READ_ATTRIBUTES = 0x80;
/** `READ_CONTROL`: lets the client read the pipe's owner. */
export const READ_CONTROL = 0x20000;
/** `SYNCHRONIZE` */
export const SYNCHRONIZE = 0x100000;
/**
 * What a client asks for and what the pipe grants the allowed group: read and write the byte
 * stream, read the owner. Not GENERIC_WRITE, which would include FILE_CREATE_PIPE_INSTANCE and
 * let a member create an instance of the daemon's pipe and answer other users' clients.
 */
export const CLIENT_ACCESS = FILE_READ_DATA | FILE_WRITE_DATA | FILE_READ_ATTRIBUTES |
  READ_CONTROL | SYNCHRONIZE;

/** `SE_KERNEL_OBJECT` for `GetSecurityInfo`. */
export const SE_KERNEL_OBJECT = 6;
/** `OWNER_SECURITY_INFORMATION` */
export const OWNER_SECURITY_INFORMATION = 0x1;
/** `TOKEN_QUERY | TOKEN_DUPLICATE | TOKEN_IMPERSONATE`: enough to read and to duplicate. */
export const TOKEN_ACCESS = 0x0008 | 0x0002 | 0x0004;
/** `TokenUser` */
export const TOKEN_USER_CLASS = 1;
/** `TokenGroups` */
export const TOKEN_GROUPS_CLASS = 2;
/** `SE_GROUP_ENABLED` */
export const SE_GROUP_ENABLED = 0x4;
/** `SE_GROUP_USE_FOR_DENY_ONLY`: a UAC-filtered token's Administrators entry. */
export const SE_GROUP_USE_FOR_DENY_ONLY = 0x10;
/** `WaitForSingleObject` without a timeout. */
export const INFINITE = 0xffffffff;
/** `WaitForSingleObject` success. */
export const WAIT_OBJECT_0 = 0;

/** LocalSystem. */
export const SID_SYSTEM = "S-1-5-18";
/** BUILTIN\Administrators. */
export const SID_ADMINISTRATORS = "S-1-5-32-544";

/** Size of `OVERLAPPED` on x64 (`Internal`, `InternalHigh`, `Offset`/`OffsetHigh`, `hEvent`). */
export const OVERLAPPED_SIZE = 32;
/** Offset of `OVERLAPPED.hEvent`. */
export const OVERLAPPED_HEVENT = 24;

/**
 * The pipe's security descriptor in SDDL: a protected DACL that gives SYSTEM and Administrators
 * everything and each allowed SID only {@linkcode CLIENT_ACCESS}. No entry for anyone else, so
 * the kernel refuses their `CreateFileW` (`ERROR_ACCESS_DENIED`), as the socket's `0660
 * root:<group>` does on Linux. The owner is left to the daemon's token (SYSTEM's default owner
 * is Administrators); clients check it.
 *
 * @example
 * ```ts
 * import { pipeSddl } from "./windows_pipe_native.ts";
 * pipeSddl(["S-1-5-21-1-2-3-1001"]); // "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x120083;;;S-1-5-21-1-2-3-1001)"
 * ```
 */
export function pipeSddl(allowed: readonly string[]): string {
  let out = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
  for (const sid of allowed) {
    if (!/^S-1-\d+(-\d+)*$/.test(sid)) throw new TypeError(`Not a SID: ${JSON.stringify(sid)}`);
    out += `(A;;0x${CLIENT_ACCESS.toString(16)};;;${sid})`;
  }
  return out;
}

/**
 * A zeroed `OVERLAPPED` whose `hEvent` is `event`.
 *
 * @example
 * ```ts
 * import { overlapped } from "./windows_pipe_native.ts";
 * const ov = overlapped(0x1234n);
 * if (ov.length !== 32 || new DataView(ov.buffer).getBigUint64(24, true) !== 0x1234n) throw new Error();
 * ```
 */
export function overlapped(event: bigint): Uint8Array {
  const out = new Uint8Array(OVERLAPPED_SIZE);
  new DataView(out.buffer).setBigUint64(OVERLAPPED_HEVENT, event, true);
  return out;
}

/** One `SID_AND_ATTRIBUTES`, read. */
export interface SidAndAttributes {
  sid: string;
  attributes: number;
}

/**
 * Reads the SID a `PSID` at `at` in `buf` points to. The pointer must point inside `buf` (it
 * does for what `GetTokenInformation` writes: the SIDs follow the array); `base` is `buf`'s
 * address.
 */
function sidAt(buf: Uint8Array, base: bigint, at: number): string {
  const ptr = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(at, true);
  const off = ptr - base;
  if (off < 0n || off + 8n > BigInt(buf.length)) {
    throw new RangeError("token information: a SID pointer outside the buffer");
  }
  return parseSid(buf, Number(off)).sid;
}

/**
 * Reads a `TOKEN_USER` (one `SID_AND_ATTRIBUTES`: `PSID` then `DWORD`, 16 bytes on x64) that
 * `GetTokenInformation` wrote into `buf` at address `base`.
 */
export function readTokenUser(buf: Uint8Array, base: bigint): SidAndAttributes {
  if (buf.length < 16) throw new RangeError("TOKEN_USER: truncated");
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { sid: sidAt(buf, base, 0), attributes: v.getUint32(8, true) };
}

/**
 * Reads a `TOKEN_GROUPS` (`DWORD GroupCount`, pad, then `SID_AND_ATTRIBUTES[]` of 16 bytes each
 * on x64) that `GetTokenInformation` wrote into `buf` at address `base`.
 */
export function readTokenGroups(buf: Uint8Array, base: bigint): SidAndAttributes[] {
  if (buf.length < 8) throw new RangeError("TOKEN_GROUPS: truncated");
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = v.getUint32(0, true);
  if (8 + count * 16 > buf.length) throw new RangeError("TOKEN_GROUPS: count beyond the buffer");
  const out: SidAndAttributes[] = [];
  for (let i = 0; i < count; i++) {
    const at = 8 + i * 16;
    out.push({ sid: sidAt(buf, base, at), attributes: v.getUint32(at + 8, true) });
  }
  return out;
}

/** The groups a token can use to get access: enabled and not deny-only. */
export function effectiveGroups(groups: readonly SidAndAttributes[]): string[] {
  return groups.filter((g) =>
    (g.attributes & SE_GROUP_ENABLED) !== 0 && (g.attributes & SE_GROUP_USE_FOR_DENY_ONLY) === 0
  ).map((g) => g.sid);
}

/** Whether `name` is a local named pipe path (`\\.\pipe\…`). */
export function isPipeName(name: string): boolean {
  return /^\\\\\.\\pipe\\[^\\]+$/.test(name);
}

/** Opens the real libraries (Windows only). */
export function openPipeNative(): PipeNative & { close(): void } {
  if (Deno.build.os !== "windows") {
    throw new Error("The named-pipe control channel exists only on Windows");
  }
  const kernelTable: Record<string, Deno.ForeignFunction> = {};
  const advapiTable: Record<string, Deno.ForeignFunction> = {};
  for (const [name, def] of Object.entries(PIPE_SYMBOLS)) {
    ((ADVAPI32_NAMES as readonly string[]).includes(name) ? advapiTable : kernelTable)[name] =
      def as Deno.ForeignFunction;
  }
  const kernel = Deno.dlopen("kernel32.dll", kernelTable);
  const advapi = Deno.dlopen("advapi32.dll", advapiTable);
  const waits = Deno.dlopen("kernel32.dll", PIPE_ASYNC_SYMBOLS);
  const sym = { ...kernel.symbols, ...advapi.symbols } as unknown as PipeSymbols;
  return {
    sym,
    wait: waits.symbols,
    close() {
      kernel.close();
      advapi.close();
      waits.close();
    },
  };
}
