/**
 * Running a program as the user whose token the daemon holds, on Windows: the counterpart of
 * `setpriv` in `src/k8s/as_user.ts`.
 *
 * The daemon (SYSTEM) impersonates the named-pipe client, opens the thread token and, after
 * `RevertToSelf`, hands that token to {@linkcode runAsToken}, which:
 * 1. duplicates it into a primary token (`DuplicateTokenEx`, `SecurityImpersonation`,
 *    `TokenPrimary`); an impersonation token cannot start a process;
 * 2. makes a Job object for the child (`CreateJobObjectW(NULL, NULL)`: unnamed, its handle not
 *    inheritable) limited by `SetInformationJobObject` with a
 *    `JOBOBJECT_EXTENDED_LIMIT_INFORMATION` to `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` (closing
 *    the handle ends every process in it) and `JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION` (a
 *    crash ends the process at once instead of Windows Error Reporting keeping it, and its
 *    pipe ends, alive); no breakaway is allowed, so whatever the child starts (an exec
 *    credential plugin such as `aws eks get-token`, and what that starts) is in the same job;
 * 3. makes three anonymous pipes whose child ends are inheritable and whose parent ends are not
 *    (`CreatePipe` with an inheritable `SECURITY_ATTRIBUTES`, then `SetHandleInformation` on the
 *    parent ends);
 * 4. starts the program with `CreateProcessAsUserW`: an absolute program path as
 *    `lpApplicationName` (no search path), the command line quoted for the MSVC runtime, the
 *    environment block the daemon built (`CREATE_UNICODE_ENVIRONMENT`, never the client's own
 *    block), a fixed working directory, `CREATE_NO_WINDOW`, `STARTF_USESTDHANDLES`, and an
 *    attribute list (`EXTENDED_STARTUPINFO_PRESENT`) of two entries:
 *    `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` naming the three child ends, so that no other
 *    inheritable handle of the daemon reaches the child, and `PROC_THREAD_ATTRIBUTE_JOB_LIST`
 *    naming the job, so that the process is in the job before its first instruction;
 * 5. closes the primary token, the thread handle and its own copies of the child ends at once
 *    (so the pipes report end of file when the child, and whatever it started, are done);
 * 6. writes stdin and closes it while reading stdout and stderr, each up to `maxOutput` bytes
 *    (more: the child is terminated and the call fails saying so), and waits for the exit;
 *    after `timeoutMs`, or when `signal` aborts, the child is terminated and the call fails.
 *
 * "Terminated" means the whole job: `TerminateJobObject` ends the child and every process it
 * started, so their copies of the pipe ends close, a blocked stdin write fails and the reads
 * reach end of file at once (with only `TerminateProcess`, a grandchild holding stdout kept the
 * read end open, and a stdin write blocked, until it exited). Should `TerminateJobObject` fail,
 * the child is ended with `TerminateProcess` and the job handle closed, which ends the rest
 * (`KILL_ON_JOB_CLOSE`). When the child exits by itself, the job is ended too, before its
 * output is collected: nothing a credentials command starts may outlive it (an exec plugin left
 * running would keep the output open, and run on as the user with nothing waiting for it); what
 * the child wrote is already in the pipes and is read whole. The job handle is closed on every
 * path, and because of `KILL_ON_JOB_CLOSE` even a daemon that dies mid-call (its handles closed
 * by Windows) takes the tree with it.
 *
 * Why `PROC_THREAD_ATTRIBUTE_JOB_LIST` and not `CREATE_SUSPENDED` + `AssignProcessToJobObject`
 * + `ResumeThread`: the attribute puts the process in the job as it is created, so there is no
 * moment at which it (or, were the resume forgotten on some path, nothing at all) runs outside
 * the job, and no suspended process to clean up when the assignment fails; it needs Windows 10
 * (or Server 2016), which Deno 2 needs anyway. Jobs nest since Windows 8, so this also works
 * when the service itself runs in a job; should Windows refuse the assignment,
 * `CreateProcessAsUserW` fails and the error says so.
 *
 * Every handle it made is closed on every path. One caveat remains: a process that the child
 * gets started outside its own tree (by a service, a COM server, the task scheduler) is not in
 * the job; should it hold the child's stdout or stderr, the call still ends at once, but the
 * pipe read, which runs on a worker thread (`nonblocking` FFI) and cannot be cancelled, keeps
 * its read end open until that process closes it (it is then closed).
 *
 * Because `ReadFile`/`WriteFile`/`WaitForSingleObject` run on worker threads, their last error
 * is that thread's and `GetLastError` on the JavaScript thread cannot read it: a failing pipe
 * read is taken as end of file (for an anonymous pipe, `ERROR_BROKEN_PIPE`: every writer closed
 * it), a failing stdin write as the child having stopped reading (as `as_user.ts` ignores
 * `EPIPE`). The synchronous calls report `GetLastError` in their errors.
 *
 * @module
 */
import {
  ADVAPI32_RUN_AS_SYMBOLS,
  CREATE_NO_WINDOW,
  CREATE_UNICODE_ENVIRONMENT,
  EXTENDED_STARTUPINFO_PRESENT,
  HANDLE_FLAG_INHERIT,
  JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
  KERNEL32_RUN_AS_SYMBOLS,
  type Kernel32RunAsSymbols,
  PRIMARY_TOKEN_ACCESS,
  PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
  PROC_THREAD_ATTRIBUTE_JOB_LIST,
  RUN_AS_JOB_LIMITS,
  RunAsError,
  runAsErrorName,
  SECURITY_IMPERSONATION,
  TOKEN_PRIMARY,
  WAIT_OBJECT_0,
  WAIT_TIMEOUT,
  type WindowsRunAsSymbols,
} from "./windows_run_as_symbols.ts";
import {
  environmentBlock,
  isWindowsAbsolute,
  jobExtendedLimitInformation,
  PROCESS_INFORMATION_SIZE,
  readProcessInformation,
  securityAttributes,
  startupInfo,
  wideBytes,
  windowsCommandLine,
} from "./windows_run_as_structs.ts";

/** What to run, and the limits. */
export interface RunAsTokenOptions {
  /** Absolute path of the program (`lpApplicationName`; no search path is used). */
  program: string;
  /** Its arguments (quoted into the command line after the program). */
  args: readonly string[];
  /** The whole environment of the child (built by the daemon, not sent by a client). */
  env: Readonly<Record<string, string>>;
  /** Absolute working directory of the child. */
  cwd: string;
  /** Bytes written to the child's stdin, which is then closed. */
  stdin: Uint8Array;
  /** Most bytes read from stdout, and from stderr; more terminates the child. */
  maxOutput: number;
  /** Milliseconds from the start until the child is terminated and the call fails. */
  timeoutMs: number;
  /** Aborting terminates the child; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * `STARTUPINFOW.lpDesktop`. Default `""`: Windows connects the child to the window station
   * of the token's logon session (creating it if needed) rather than to the daemon's
   * (`Service-0x0-3e7$`), which the user's token may not open.
   */
  desktop?: string;
}

/** How the child ended and what it printed. */
export interface RunAsTokenResult {
  /** `GetExitCodeProcess`. */
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** A Win32 call failed; `code` is `GetLastError()` (null where it cannot be read). */
export class Win32CallError extends Error {
  /** The function that failed, e.g. `CreateProcessAsUserW`. */
  readonly call: string;
  /** Its Win32 error, or null. */
  readonly code: number | null;
  constructor(call: string, code: number | null, context: string) {
    super(`${context}: ${call} failed${code === null ? "" : `: ${runAsErrorName(code)}`}`);
    this.name = "Win32CallError";
    this.call = call;
    this.code = code;
  }
}

/** Creation flags: UTF-16 environment, no console window, a `STARTUPINFOEXW`. */
export const RUN_AS_CREATION_FLAGS = CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW |
  EXTENDED_STARTUPINFO_PRESENT;
/** `CreatePipe` size hint (bytes) for each pipe. */
export const RUN_AS_PIPE_SIZE = 64 * 1024;
const CHUNK = 64 * 1024;
/** Each wait on the process lasts at most this long, so no worker thread is parked forever. */
const WAIT_SLICE_MS = 1000;
/** After a kill, how long the pipe reads get to end before the call fails without them. */
const KILL_GRACE_MS = 2000;
/** The exit code a terminated child (and each process of its job) gets. */
const KILLED_EXIT_CODE = 1;

function handleValue(h: Deno.PointerValue): bigint {
  return h === null ? 0n : BigInt(Deno.UnsafePointer.value(h));
}

function addressOf(buf: Uint8Array): bigint {
  return handleValue(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>));
}

/** Uses buffers whose addresses native memory holds, so they stay alive until this call. */
function keepAlive(...buffers: Uint8Array[]): void {
  for (const b of buffers) if (b.byteLength < 0) throw new RangeError("impossible");
}

function readHandle(cell: Uint8Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(new DataView(cell.buffer).getBigUint64(0, true));
}

/** The handles this call owns; each closed exactly once. */
class Handles {
  readonly #k: Kernel32RunAsSymbols;
  readonly #open = new Map<bigint, Deno.PointerObject>();
  constructor(k: Kernel32RunAsSymbols) {
    this.#k = k;
  }
  add(h: Deno.PointerValue): Deno.PointerObject {
    if (h === null) throw new TypeError("NULL handle");
    this.#open.set(handleValue(h), h);
    return h;
  }
  close(h: Deno.PointerValue): void {
    const key = handleValue(h);
    const p = this.#open.get(key);
    if (p === undefined) return;
    this.#open.delete(key);
    this.#k.CloseHandle(p);
  }
  closeAll(): void {
    for (const p of [...this.#open.values()]) this.close(p);
  }
}

/**
 * Runs `o.program` as the user of `token` (an impersonation or primary token handle the caller
 * keeps and closes) and returns its exit code, stdout and stderr. The calling thread must not be
 * impersonating (call `RevertToSelf` first): `CreateProcessAsUserW` needs the daemon's own
 * SeAssignPrimaryTokenPrivilege and SeIncreaseQuotaPrivilege.
 *
 * The child runs in a Job object that is ended (every process the child started with it) when
 * the call ends, whichever way.
 *
 * Throws TypeError/RangeError for options Windows could not take (before any handle is made),
 * {@linkcode Win32CallError} naming the failing call and its Win32 error, an Error when the
 * child printed more than `maxOutput` on one stream or outlived `timeoutMs` (its job is
 * terminated), and `signal.reason` when aborted.
 *
 * @example
 * ```ts ignore
 * import { openWindowsRunAs, runAsToken } from "./windows_run_as.ts";
 * using lib = openWindowsRunAs();
 * const r = await runAsToken(lib, clientToken, {
 *   program: "C:\\Program Files\\kconnect\\kconnect.exe",
 *   args: ["credentials", "--json", "--env-stdin"],
 *   env: { SystemRoot: "C:\\Windows" },
 *   cwd: "C:\\Windows\\System32",
 *   stdin: new TextEncoder().encode("{}"),
 *   maxOutput: 1 << 20,
 *   timeoutMs: 60_000,
 * });
 * ```
 */
export async function runAsToken(
  sym: WindowsRunAsSymbols,
  token: Deno.PointerValue,
  o: RunAsTokenOptions,
): Promise<RunAsTokenResult> {
  const { advapi32: a, kernel32: k } = sym;
  // Everything Windows could refuse is checked before the first handle exists.
  const commandLine = wideBytes(windowsCommandLine(o.program, o.args));
  const application = wideBytes(o.program);
  const env = environmentBlock(o.env);
  if (!isWindowsAbsolute(o.cwd)) {
    throw new TypeError(`The working directory must be absolute: ${JSON.stringify(o.cwd)}`);
  }
  const cwd = wideBytes(o.cwd);
  const desktop = wideBytes(o.desktop ?? "");
  if (!Number.isSafeInteger(o.maxOutput) || o.maxOutput < 0) {
    throw new RangeError(`maxOutput must be a byte count, not ${o.maxOutput}`);
  }
  if (!(o.timeoutMs > 0 && o.timeoutMs <= 0x7fffffff)) {
    throw new RangeError(`timeoutMs must be positive, not ${o.timeoutMs}`);
  }
  if (token === null) throw new TypeError("runAsToken needs a token handle");
  o.signal?.throwIfAborted();

  const what = `Cannot run ${o.program} as the client's user`;
  const fail = (call: string, code: number | null): never => {
    throw new Win32CallError(call, code, what);
  };
  const handles = new Handles(k);

  // Setup: on any failure every handle made so far is closed.
  let process!: Deno.PointerObject;
  let job!: Deno.PointerObject;
  let parentIn!: Deno.PointerObject;
  let parentOut!: Deno.PointerObject;
  let parentErr!: Deno.PointerObject;
  {
    let list: Uint8Array | null = null;
    const transient: Deno.PointerValue[] = []; // closed once the child has started, or failed
    try {
      const cell = new Uint8Array(8);
      if (
        !a.DuplicateTokenEx(
          token,
          PRIMARY_TOKEN_ACCESS,
          null,
          SECURITY_IMPERSONATION,
          TOKEN_PRIMARY,
          cell,
        )
      ) fail("DuplicateTokenEx", k.GetLastError());
      const primary = handles.add(readHandle(cell));
      transient.push(primary);

      // The job: the child and all it starts; kept until the call ends.
      const newJob = k.CreateJobObjectW(null, null);
      if (newJob === null) fail("CreateJobObjectW", k.GetLastError());
      job = handles.add(newJob);
      const limits = jobExtendedLimitInformation(RUN_AS_JOB_LIMITS);
      if (
        !k.SetInformationJobObject(
          job,
          JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
          limits,
          limits.length,
        )
      ) fail("SetInformationJobObject", k.GetLastError());

      const sa = securityAttributes(true);
      const pipe = (): [Deno.PointerObject, Deno.PointerObject] => {
        const r = new Uint8Array(8);
        const w = new Uint8Array(8);
        if (!k.CreatePipe(r, w, sa, RUN_AS_PIPE_SIZE)) fail("CreatePipe", k.GetLastError());
        return [handles.add(readHandle(r)), handles.add(readHandle(w))];
      };
      const [childIn, pIn] = pipe();
      transient.push(childIn);
      const [pOut, childOut] = pipe();
      transient.push(childOut);
      const [pErr, childErr] = pipe();
      transient.push(childErr);
      for (const h of [pIn, pOut, pErr]) {
        if (!k.SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0)) {
          fail("SetHandleInformation", k.GetLastError());
        }
      }

      // The handle list (the only handles the child inherits) and the job list.
      const size = new Uint8Array(8);
      if (!k.InitializeProcThreadAttributeList(null, 2, 0, size)) {
        const code = k.GetLastError();
        if (code !== RunAsError.ERROR_INSUFFICIENT_BUFFER) {
          fail("InitializeProcThreadAttributeList", code);
        }
      }
      const listBytes = new Uint8Array(Number(new DataView(size.buffer).getBigUint64(0, true)));
      if (!k.InitializeProcThreadAttributeList(listBytes, 2, 0, size)) {
        fail("InitializeProcThreadAttributeList", k.GetLastError());
      }
      list = listBytes;
      const inherit = new Uint8Array(24);
      const iv = new DataView(inherit.buffer);
      [childIn, childOut, childErr].forEach((h, i) => iv.setBigUint64(i * 8, handleValue(h), true));
      if (
        !k.UpdateProcThreadAttribute(
          list,
          0,
          BigInt(PROC_THREAD_ATTRIBUTE_HANDLE_LIST),
          inherit,
          BigInt(inherit.length),
          null,
          null,
        )
      ) fail("UpdateProcThreadAttribute", k.GetLastError());
      const jobs = new Uint8Array(8);
      new DataView(jobs.buffer).setBigUint64(0, handleValue(job), true);
      if (
        !k.UpdateProcThreadAttribute(
          list,
          0,
          BigInt(PROC_THREAD_ATTRIBUTE_JOB_LIST),
          jobs,
          BigInt(jobs.length),
          null,
          null,
        )
      ) fail("UpdateProcThreadAttribute", k.GetLastError());

      const si = startupInfo({
        desktop: addressOf(desktop),
        stdin: handleValue(childIn),
        stdout: handleValue(childOut),
        stderr: handleValue(childErr),
        attributeList: addressOf(list),
      });
      const pi = new Uint8Array(PROCESS_INFORMATION_SIZE);
      if (
        !a.CreateProcessAsUserW(
          primary,
          application,
          commandLine,
          null,
          null,
          1,
          RUN_AS_CREATION_FLAGS,
          env,
          cwd,
          si,
          pi,
        )
      ) fail("CreateProcessAsUserW", k.GetLastError());
      keepAlive(inherit, jobs, desktop); // the list and si point into them until here
      const info = readProcessInformation(pi);
      process = handles.add(Deno.UnsafePointer.create(info.process));
      transient.push(handles.add(Deno.UnsafePointer.create(info.thread)));
      [parentIn, parentOut, parentErr] = [pIn, pOut, pErr];
    } catch (e) {
      if (list) k.DeleteProcThreadAttributeList(list);
      handles.closeAll();
      throw e;
    }
    k.DeleteProcThreadAttributeList(list);
    for (const h of transient) handles.close(h);
  }

  // The child runs: feed it, drain it, wait for it.
  type Why = { kind: "timeout" } | { kind: "abort" } | { kind: "over"; stream: string } | {
    kind: "wait";
  };
  let why: Why | null = null;
  let onKill!: () => void;
  const killed = new Promise<void>((resolve) => onKill = resolve);
  let treeEnded = false;
  /** Ends the child and all it started, and closes the job handle; once. */
  const endTree = () => {
    if (treeEnded) return;
    treeEnded = true;
    if (!k.TerminateJobObject(job, KILLED_EXIT_CODE)) {
      // Not expected (the handle has every right); the child at least, and the job's
      // KILL_ON_JOB_CLOSE for the rest once the handle is closed below.
      k.TerminateProcess(process, KILLED_EXIT_CODE); // fails only when it has already exited
    }
    handles.close(job);
  };
  const kill = (reason: Why) => {
    if (why !== null) return;
    why = reason;
    endTree();
    onKill();
  };
  const timer = setTimeout(() => kill({ kind: "timeout" }), o.timeoutMs);
  const onAbort = () => kill({ kind: "abort" });
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let grace: ReturnType<typeof setTimeout> | undefined;
  try {
    const writer = feed(k, handles, parentIn, o.stdin);
    const out = drain(
      k,
      handles,
      parentOut,
      o.maxOutput,
      () => kill({ kind: "over", stream: "stdout" }),
    );
    const err = drain(
      k,
      handles,
      parentErr,
      o.maxOutput,
      () => kill({ kind: "over", stream: "stderr" }),
    );
    const streams = Promise.all([out, err, writer]);
    let exited = false;
    let slicesAfterKill = 0;
    while (!exited) {
      const r = await k.WaitForSingleObject(process, WAIT_SLICE_MS);
      if (r === WAIT_OBJECT_0) exited = true;
      else if (r !== WAIT_TIMEOUT) {
        kill({ kind: "wait" });
        break;
      } else if (why !== null && ++slicesAfterKill > 1) break; // the kill did not work
    }
    let code: number | null = null;
    if (exited) {
      const cell = new Uint8Array(4);
      if (!k.GetExitCodeProcess(process, cell)) fail("GetExitCodeProcess", k.GetLastError());
      code = new DataView(cell.buffer).getUint32(0, true);
      // Nothing the child started outlives it; their pipe ends close, so the reads end.
      endTree();
    }
    if (why === null) await Promise.race([streams, killed]);
    if (why !== null) {
      await Promise.race([
        streams,
        new Promise<void>((resolve) => grace = setTimeout(resolve, KILL_GRACE_MS)),
      ]);
      throw failure(o, why);
    }
    const [stdout, stderr] = await streams;
    return { code: code!, stdout: stdout.bytes, stderr: stderr.bytes };
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
    o.signal?.removeEventListener("abort", onAbort);
    handles.close(job); // KILL_ON_JOB_CLOSE: whatever still runs in it ends (if any path missed it)
    handles.close(process);
  }
}

function failure(o: RunAsTokenOptions, why: { kind: string; stream?: string }): unknown {
  switch (why.kind) {
    case "abort":
      return o.signal?.reason ?? new DOMException("aborted", "AbortError");
    case "timeout":
      return new Error(
        `${o.program} did not finish within ${o.timeoutMs} ms and was terminated`,
      );
    case "over":
      return new Error(
        `${o.program} printed more than ${o.maxOutput} bytes on ${why.stream} and was terminated`,
      );
    default:
      return new Win32CallError(
        "WaitForSingleObject",
        null,
        `Cannot wait for ${o.program}; it was terminated`,
      );
  }
}

/** Writes `data` to the child's stdin, then closes it. A failed write: the child stopped reading. */
async function feed(
  k: Kernel32RunAsSymbols,
  handles: Handles,
  h: Deno.PointerObject,
  data: Uint8Array,
): Promise<void> {
  const done = new Uint8Array(4);
  const view = new DataView(done.buffer);
  try {
    for (let at = 0; at < data.length;) {
      const chunk = data.slice(at, at + CHUNK);
      if (!await k.WriteFile(h, chunk, chunk.length, done, null)) return;
      const n = view.getUint32(0, true);
      if (n === 0) return;
      at += n;
    }
  } catch {
    // A rejected FFI call: treat as the child having stopped reading.
  } finally {
    handles.close(h);
  }
}

/** Reads a stream to its end (every writer closed it) or until more than `max` bytes. */
async function drain(
  k: Kernel32RunAsSymbols,
  handles: Handles,
  h: Deno.PointerObject,
  max: number,
  over: () => void,
): Promise<{ bytes: Uint8Array; over: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(CHUNK);
  const got = new Uint8Array(4);
  const view = new DataView(got.buffer);
  try {
    for (;;) {
      if (!await k.ReadFile(h, buf, buf.length, got, null)) break; // end of file
      const n = view.getUint32(0, true);
      total += n;
      if (total > max) {
        over();
        return { bytes: new Uint8Array(), over: true };
      }
      chunks.push(buf.slice(0, n)); // n is 0 after a zero-length write; keep reading
    }
  } catch {
    // A rejected FFI call ends the stream like a broken pipe.
  } finally {
    handles.close(h);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, over: false };
}

/** `advapi32.dll` and `kernel32.dll` opened; `close()` (or `using`) unloads them. */
export interface WindowsRunAsLibrary extends WindowsRunAsSymbols, Disposable {
  close(): void;
}

/**
 * Opens `advapi32.dll` and `kernel32.dll` (both KnownDLLs, so loaded from System32 whatever the
 * search path) with the symbols {@linkcode runAsToken} uses. Windows only: elsewhere it throws.
 * Close it only when no {@linkcode runAsToken} is running (worker-thread calls may be pending).
 *
 * @example
 * ```ts ignore
 * import { openWindowsRunAs } from "./windows_run_as.ts";
 * using lib = openWindowsRunAs();
 * ```
 */
export function openWindowsRunAs(): WindowsRunAsLibrary {
  if (Deno.build.os !== "windows") {
    throw new Error(
      `Running a program with a user's token needs Windows; this is ${Deno.build.os}`,
    );
  }
  const advapi = Deno.dlopen("advapi32.dll", ADVAPI32_RUN_AS_SYMBOLS);
  let kernel: Deno.DynamicLibrary<typeof KERNEL32_RUN_AS_SYMBOLS>;
  try {
    kernel = Deno.dlopen("kernel32.dll", KERNEL32_RUN_AS_SYMBOLS);
  } catch (e) {
    advapi.close();
    throw e;
  }
  const close = () => {
    advapi.close();
    kernel.close();
  };
  return {
    advapi32: advapi.symbols,
    kernel32: kernel.symbols,
    close,
    [Symbol.dispose]: close,
  };
}
