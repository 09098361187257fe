/**
 * A recording fake of the advapi32/kernel32 calls of `windows_run_as.ts`, typed as the real
 * symbol tables are, modelling enough of Windows to drive the real runner on any OS (tests only;
 * needs `--allow-ffi` for the pointers, which are plain numbers or point at memory the caller
 * owns).
 *
 * What it models:
 * - a handle table: tokens, pipe ends, jobs, processes, threads; each handle has its inherit flag
 *   (`CreatePipe`'s `SECURITY_ATTRIBUTES.bInheritHandle`, `SetHandleInformation`);
 *   {@linkcode FakeWindowsRunAs.leaked} lists the handles still open that the runner made;
 * - anonymous pipes with a bounded buffer: a read with nothing buffered waits; when every
 *   writer is closed it fails with `ERROR_BROKEN_PIPE`, a write with no reader with
 *   `ERROR_NO_DATA`; a full buffer makes writes wait;
 * - the thread-local last error: calls made on worker threads (`ReadFile`, `WriteFile`,
 *   `WaitForSingleObject`) never change what `GetLastError` on the JavaScript thread answers;
 * - `DuplicateTokenEx` (records access, level, type) and `CreateProcessAsUserW`, which fails
 *   with `ERROR_PRIVILEGE_NOT_HELD` (1314) when the token was not duplicated as primary, reads
 *   every argument back from the buffers passed (application, command line, the environment
 *   block up to its double NUL, directory, `STARTUPINFOEXW`, the desktop string and the
 *   `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` through the pointers in them), and gives the child
 *   exactly the handles Windows would: those of the handle list (each must be inheritable), or
 *   every inheritable handle without one;
 * - the child, a JavaScript function given its stdin (read to end of file) and the launch,
 *   answering stdout, stderr and an exit code, or `"hang"`; it writes through the pipes (so a
 *   big output waits for the reader) and, when it exits or is terminated, its pipe ends close;
 * - grandchildren: the child's function may `spawn()` processes of its own that hold copies of
 *   its stdin, stdout and stderr ends (as inherited standard handles would be), are in the jobs
 *   the child is in, and run until they `exit()` or are ended; `TerminateProcess` of the child
 *   leaves them (and the pipes they hold) as they are, as Windows does;
 * - Job objects: `CreateJobObjectW`, `SetInformationJobObject` (only
 *   `JobObjectExtendedLimitInformation`, 144 bytes; the `LimitFlags` are kept),
 *   `PROC_THREAD_ATTRIBUTE_JOB_LIST` (the child is in those jobs from its creation),
 *   `TerminateJobObject` (ends every process of the job, closing their pipe ends) and
 *   `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` (closing the job's last handle does the same);
 *   {@linkcode FakeWindowsRunAs.processes} and {@linkcode FakeWindowsRunAs.jobs} show what ran,
 *   in which job, and how it ended;
 * - injected failures: any call by name (or `Name#n`, its n-th call) answers FALSE with a
 *   given last error.
 *
 * Misuse the real system would punish (an unknown or closed handle, a handle closed under a
 * pending read, an attribute list never deleted or given more attributes than it was sized for,
 * a stdio handle the child does not inherit) and what this runner must not do (start the child
 * outside a job, or in one without `KILL_ON_JOB_CLOSE`; let the job handle reach the child; name
 * the job) is recorded in {@linkcode FakeWindowsRunAs.violations}; tests assert it stays empty.
 * A job handle left open shows in {@linkcode FakeWindowsRunAs.leaked} as `job`, as every other
 * handle the runner made.
 *
 * @module
 */
import {
  type Advapi32RunAsSymbols,
  CREATE_UNICODE_ENVIRONMENT,
  EXTENDED_STARTUPINFO_PRESENT,
  HANDLE_FLAG_INHERIT,
  INFINITE,
  JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
  JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
  type Kernel32RunAsSymbols,
  PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
  PROC_THREAD_ATTRIBUTE_JOB_LIST,
  RunAsError,
  STARTF_USESTDHANDLES,
  STILL_ACTIVE,
  TOKEN_PRIMARY,
  WAIT_FAILED,
  WAIT_OBJECT_0,
  WAIT_TIMEOUT,
} from "./windows_run_as_symbols.ts";
import {
  JobBasicLimitInformation,
  JobExtendedLimitInformation,
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE,
  PROCESS_INFORMATION_SIZE,
  SECURITY_ATTRIBUTES_SIZE,
  SecurityAttributes,
  StartupInfo,
  STARTUPINFOEX_ATTRIBUTE_LIST,
  STARTUPINFOEXW_SIZE,
  STARTUPINFOW_SIZE,
} from "./windows_run_as_structs.ts";

/** What the fake child answers: its output and exit code, or `"hang"` until terminated. */
export type FakeOutcome = FakeExit | "hang";

/** A fake child's output and exit code (default none and 0). */
export interface FakeExit {
  stdout?: Uint8Array | string;
  stderr?: Uint8Array | string;
  code?: number;
}

/**
 * The fake child: given its stdin (read to end of file), how it was launched, and a way to
 * start processes of its own.
 */
export type FakeProgram = (
  stdin: Uint8Array,
  launch: FakeLaunch,
  child: FakeChild,
) => FakeOutcome | Promise<FakeOutcome>;

/** What a running fake child can do besides printing and exiting. */
export interface FakeChild {
  /**
   * Starts a grandchild (as an exec plugin would be) holding copies of the child's standard
   * handles named in `holds` (default all three), in the child's jobs; it runs, printing
   * nothing, until it {@linkcode FakeProcess.exit}s or is ended.
   */
  spawn(options?: { holds?: readonly ("stdin" | "stdout" | "stderr")[] }): FakeProcess;
}

/** How a fake process ended. */
export type FakeEnd = "exit" | "TerminateProcess" | "TerminateJobObject" | "job closed";

/** A process of the fake: the child, or one it spawned. */
export interface FakeProcess {
  /** `child 1`, `grandchild 1`, … */
  readonly name: string;
  readonly alive: boolean;
  /** Its exit code once ended (the one given to the call that ended it). */
  readonly exitCode: number | null;
  /** How it ended; null while it runs. */
  readonly endedBy: FakeEnd | null;
  /** Ids of the jobs it is in. */
  readonly jobs: readonly number[];
  /** Ids of the jobs it was in when it began to run. */
  readonly jobsAtStart: readonly number[];
  /** The pipe ends it holds open now, e.g. `pipe2 write`. */
  readonly holds: readonly string[];
  /** Ends it as if it exited by itself (a no-op once it has ended). */
  exit(code?: number): void;
}

/** A Job object of the fake. */
export interface FakeJob {
  /** 1, 2, … in creation order. */
  readonly id: number;
  /** `BasicLimitInformation.LimitFlags` as last set; null before any `SetInformationJobObject`. */
  readonly limitFlags: number | null;
  /** Handles to it still open. */
  readonly openHandles: number;
  /** The processes ever put in it. */
  readonly processes: readonly FakeProcess[];
}

/** A `CreateProcessAsUserW` call that started a child, as Windows read its arguments. */
export interface FakeLaunch {
  /** `lpApplicationName`. */
  application: string;
  /** `lpCommandLine`. */
  commandLine: string;
  /** The environment block's bytes up to and including its final double NUL. */
  environment: Uint8Array;
  /** `lpCurrentDirectory`. */
  cwd: string;
  /** `dwCreationFlags`. */
  flags: number;
  /** `bInheritHandles`. */
  inheritHandles: boolean;
  /** A copy of the `STARTUPINFOW`/`STARTUPINFOEXW` bytes (`cb` of them). */
  startupInfo: Uint8Array;
  /** The `lpDesktop` string, null for NULL. */
  desktop: string | null;
  /** `hStdInput`, `hStdOutput`, `hStdError`. */
  stdio: [bigint, bigint, bigint];
  /** The `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` handles; null without one. */
  handleList: bigint[] | null;
  /** The `PROC_THREAD_ATTRIBUTE_JOB_LIST` handles; null without one. */
  jobList: bigint[] | null;
  /** The process started. */
  process: FakeProcess;
  /** The handles the child inherited. */
  inherited: bigint[];
  /** Every handle of the table that was inheritable at the call. */
  inheritableAtLaunch: bigint[];
  /** Exit code once the child ended; when ended by a call, the code that call gave. */
  exitCode: number | null;
  /** Whether it was ended (`TerminateProcess`, `TerminateJobObject`, its job closed). */
  terminated: boolean;
}

/** Options of the fake. */
export interface FakeWindowsRunAsOptions {
  /** The child. Default: exits 0 printing nothing. */
  program?: FakeProgram;
  /** Whether the child reads its stdin before running; default true. */
  readsStdin?: boolean;
  /** Calls that fail: `{ "CreatePipe#2": 8 }` fails the 2nd CreatePipe with that last error. */
  failures?: Record<string, number>;
  /** Bytes a pipe buffers before writes wait (the `nSize` hint is ignored). Default 4096. */
  pipeCapacity?: number;
}

type Pipe = {
  id: number;
  chunks: Uint8Array[];
  size: number;
  readers: number;
  writers: number;
  waiters: (() => void)[];
};
type Job = {
  id: number;
  limitFlags: number | null;
  openHandles: number;
  processes: Proc[];
};

class Proc implements FakeProcess {
  readonly name: string;
  launch: FakeLaunch | null = null;
  dead = false;
  exitCode: number | null = null;
  endedBy: FakeEnd | null = null;
  readonly waiters: (() => void)[] = [];
  readonly pipes: { pipe: Pipe; end: "read" | "write" }[] = [];
  readonly died: Promise<void>;
  onDeath!: () => void;
  readonly jobSet: Job[];
  readonly jobsAtStart: readonly number[];
  readonly #end: (p: Proc, code: number, by: FakeEnd) => void;
  constructor(name: string, jobs: Job[], end: (p: Proc, code: number, by: FakeEnd) => void) {
    this.name = name;
    this.died = new Promise<void>((resolve) => this.onDeath = resolve);
    this.jobSet = [...jobs];
    this.jobsAtStart = jobs.map((j) => j.id);
    for (const j of jobs) j.processes.push(this);
    this.#end = end;
  }
  get alive(): boolean {
    return !this.dead;
  }
  get jobs(): readonly number[] {
    return this.jobSet.map((j) => j.id);
  }
  get holds(): readonly string[] {
    return this.dead ? [] : this.pipes.map(({ pipe, end }) => `pipe${pipe.id} ${end}`);
  }
  exit(code = 0): void {
    this.#end(this, code, "exit");
  }
}

type Obj =
  | { kind: "token"; primary: boolean }
  | { kind: "pipe"; end: "read" | "write"; pipe: Pipe }
  | { kind: "job"; job: Job }
  | { kind: "process"; proc: Proc }
  | { kind: "thread" }
  | { kind: "other" };
type Entry = { obj: Obj; inherit: boolean; runner: boolean; pending: number; name: string };

/** The size an attribute list of `count` entries needs (what x64 Windows answers). */
function attributeListSize(count: number): number {
  return 24 + 24 * count;
}

type Buf = AllowSharedBufferSource | null;

function bytesOf(b: Buf): Uint8Array {
  if (b === null) throw new TypeError("fake: NULL buffer");
  if (!ArrayBuffer.isView(b)) return new Uint8Array(b);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function wide(b: Buf): string {
  const u = bytesOf(b);
  const view = new DataView(u.buffer, u.byteOffset, u.byteLength);
  let s = "";
  for (let i = 0; i + 1 < u.length; i += 2) {
    const c = view.getUint16(i, true);
    if (c === 0) return s;
    s += String.fromCharCode(c);
  }
  throw new TypeError("fake: wide string without NUL");
}

function wideAt(address: bigint): string {
  const view = new Deno.UnsafePointerView(Deno.UnsafePointer.create(address)!);
  let s = "";
  for (let i = 0;; i += 2) {
    const c = view.getUint16(i);
    if (c === 0) return s;
    s += String.fromCharCode(c);
  }
}

function value(p: Deno.PointerValue): bigint {
  return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
}

function addressOf(b: Buf): bigint {
  return value(Deno.UnsafePointer.of(bytesOf(b) as Uint8Array<ArrayBuffer>));
}

function text(b: Uint8Array | string | undefined): Uint8Array {
  if (b === undefined) return new Uint8Array();
  return typeof b === "string" ? new TextEncoder().encode(b) : b;
}

/** The fake; hand `{ advapi32, kernel32 }` (the object itself fits) to `runAsToken`. */
export class FakeWindowsRunAs {
  /** Every call, in order, with its interesting arguments. */
  readonly calls: string[] = [];
  /** Misuse seen; empty when the runner behaved. */
  readonly violations: string[] = [];
  /** Children started, in order. */
  readonly launches: FakeLaunch[] = [];
  /** `DuplicateTokenEx` calls: access, impersonation level, token type. */
  readonly duplications: { access: number; level: number; type: number }[] = [];
  /** Every process started: the children and what they spawned. */
  readonly processes: FakeProcess[] = [];
  /** Every job created. */
  readonly jobs: FakeJob[] = [];

  readonly #o: FakeWindowsRunAsOptions;
  readonly #handles = new Map<bigint, Entry>();
  readonly #lists = new Map<
    bigint,
    { capacity: number; attributes: Map<number, { address: bigint; size: number }> }
  >();
  readonly #counts = new Map<string, number>();
  #next = 0x100n;
  #pipes = 0;
  #lastError = 0;
  /** The last error of the worker threads: never seen by `GetLastError`. */
  workerLastError = 0;

  constructor(options: FakeWindowsRunAsOptions = {}) {
    this.#o = options;
  }

  /** An impersonation token of the "client", owned by the test (not counted as leaked). */
  userToken(): Deno.PointerObject {
    return this.#add({ kind: "token", primary: false }, false, false, "user token");
  }

  /** An unrelated inheritable handle of the "daemon" that must not reach the child. */
  strayInheritable(): Deno.PointerObject {
    return this.#add({ kind: "other" }, true, false, "stray");
  }

  /** The handles the runner made that are still open, by name. */
  leaked(): string[] {
    return [...this.#handles.entries()].filter(([, e]) => e.runner).map(([h, e]) =>
      `${e.name} 0x${h.toString(16)}`
    );
  }

  /** Attribute lists initialized and never deleted. */
  get openAttributeLists(): number {
    return this.#lists.size;
  }

  /** Whether `handle` is open and inheritable. */
  inheritable(handle: bigint): boolean {
    return this.#handles.get(handle)?.inherit ?? false;
  }

  /** A description of an open handle, e.g. `stdout write`. */
  nameOf(handle: bigint): string | undefined {
    return this.#handles.get(handle)?.name;
  }

  #add(obj: Obj, inherit: boolean, runner: boolean, name: string): Deno.PointerObject {
    const h = this.#next;
    this.#next += 4n;
    this.#handles.set(h, { obj, inherit, runner, pending: 0, name });
    return Deno.UnsafePointer.create(h)!;
  }

  #entry(call: string, h: Deno.PointerValue): Entry | undefined {
    const e = this.#handles.get(value(h));
    if (e === undefined) {
      this.violations.push(`${call} on unknown handle 0x${value(h).toString(16)}`);
    }
    return e;
  }

  /** A configured failure of this call: sets the last error and answers true. */
  #inject(call: string): boolean {
    const n = (this.#counts.get(call) ?? 0) + 1;
    this.#counts.set(call, n);
    const code = this.#o.failures?.[`${call}#${n}`] ?? this.#o.failures?.[call];
    if (code === undefined) return false;
    this.#lastError = code;
    return true;
  }

  #fail(code: number): 0 {
    this.#lastError = code;
    return 0;
  }

  #changed(pipe: Pipe): Promise<void> {
    return new Promise((resolve) => pipe.waiters.push(resolve));
  }

  #notify(pipe: Pipe): void {
    for (const w of pipe.waiters.splice(0)) w();
  }

  #take(pipe: Pipe, max: number): Uint8Array {
    const out: number[] = [];
    while (out.length < max && pipe.chunks.length > 0) {
      const c = pipe.chunks[0];
      const n = Math.min(max - out.length, c.length);
      out.push(...c.subarray(0, n));
      if (n === c.length) pipe.chunks.shift();
      else pipe.chunks[0] = c.subarray(n);
    }
    pipe.size -= out.length;
    this.#notify(pipe);
    return new Uint8Array(out);
  }

  /** Writes all of `data`, waiting for room; false when the readers are gone (or `gone()`). */
  async #put(pipe: Pipe, data: Uint8Array, gone: () => boolean): Promise<boolean> {
    const capacity = this.#o.pipeCapacity ?? 4096;
    let at = 0;
    while (at < data.length) {
      if (pipe.readers === 0 || gone()) return false;
      const room = capacity - pipe.size;
      if (room <= 0) {
        await this.#changed(pipe);
        continue;
      }
      const part = data.slice(at, at + room);
      pipe.chunks.push(part);
      pipe.size += part.length;
      at += part.length;
      this.#notify(pipe);
    }
    return true;
  }

  #exit(proc: Proc, code: number, by: FakeEnd): void {
    if (proc.dead) return;
    proc.dead = true;
    proc.exitCode = code;
    proc.endedBy = by;
    if (proc.launch !== null) {
      proc.launch.exitCode = code;
      proc.launch.terminated = by !== "exit";
    }
    for (const { pipe, end } of proc.pipes) {
      if (end === "read") pipe.readers--;
      else pipe.writers--;
      this.#notify(pipe);
    }
    proc.onDeath();
    for (const w of proc.waiters.splice(0)) w();
  }

  async #run(proc: Proc, stdin: Pipe, stdout: Pipe, stderr: Pipe): Promise<void> {
    const input: Uint8Array[] = [];
    if (this.#o.readsStdin ?? true) {
      for (;;) {
        if (proc.dead) return;
        if (stdin.size > 0) input.push(this.#take(stdin, stdin.size));
        else if (stdin.writers === 0) break;
        else await Promise.race([this.#changed(stdin), proc.died]);
      }
    }
    const all = new Uint8Array(input.reduce((n, c) => n + c.length, 0));
    input.reduce((at, c) => (all.set(c, at), at + c.length), 0);
    const program: FakeProgram = this.#o.program ?? (() => ({}));
    let spawned = 0;
    const child: FakeChild = {
      spawn: (options = {}) => {
        if (proc.dead) throw new Error("fake: a process that has ended cannot spawn");
        const g = new Proc(
          `grandchild ${++spawned}`,
          proc.jobSet,
          (p, code, by) => this.#exit(p, code, by),
        );
        const ends = { stdin, stdout, stderr };
        for (const which of options.holds ?? ["stdin", "stdout", "stderr"] as const) {
          const pipe = ends[which];
          const end = which === "stdin" ? "read" : "write";
          g.pipes.push({ pipe, end });
          if (end === "read") pipe.readers++;
          else pipe.writers++;
        }
        this.processes.push(g);
        return g;
      },
    };
    const outcome = await program(all, proc.launch!, child);
    if (proc.dead) return;
    if (outcome === "hang") return await proc.died;
    const gone = () => proc.dead;
    await Promise.all([
      this.#put(stdout, text(outcome.stdout), gone),
      this.#put(stderr, text(outcome.stderr), gone),
    ]);
    this.#exit(proc, outcome.code ?? 0, "exit");
  }

  /** Ends every live process of `job` (`TerminateJobObject`, or its last handle closed). */
  #endJob(job: Job, code: number, by: FakeEnd): void {
    for (const p of job.processes) this.#exit(p, code, by);
  }

  readonly advapi32: Advapi32RunAsSymbols = {
    DuplicateTokenEx: (token, access, _sa, level, type, out) => {
      this.calls.push("DuplicateTokenEx");
      if (this.#inject("DuplicateTokenEx")) return 0;
      const e = this.#entry("DuplicateTokenEx", token);
      if (e?.obj.kind !== "token") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      this.duplications.push({ access, level, type });
      const h = this.#add(
        { kind: "token", primary: type === TOKEN_PRIMARY },
        false,
        true,
        type === TOKEN_PRIMARY ? "primary token" : "impersonation token",
      );
      new DataView(bytesOf(out).buffer, bytesOf(out).byteOffset).setBigUint64(0, value(h), true);
      return 1;
    },
    CreateProcessAsUserW: (
      token,
      application,
      commandLine,
      _pa,
      _ta,
      inheritHandles,
      flags,
      environment,
      cwd,
      si,
      pi,
    ) => {
      this.calls.push("CreateProcessAsUserW");
      if (this.#inject("CreateProcessAsUserW")) return 0;
      const t = this.#entry("CreateProcessAsUserW", token);
      if (t?.obj.kind !== "token") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      if (!t.obj.primary) return this.#fail(RunAsError.ERROR_PRIVILEGE_NOT_HELD);
      if ((flags & CREATE_UNICODE_ENVIRONMENT) === 0) {
        this.violations.push("a UTF-16 block without CREATE_UNICODE_ENVIRONMENT");
      }
      // The environment block: UTF-16 units up to the first double NUL.
      const envBytes = bytesOf(environment);
      const ev = new DataView(envBytes.buffer, envBytes.byteOffset, envBytes.byteLength);
      let end = -1;
      for (let i = 0; i + 3 < envBytes.length; i += 2) {
        if (ev.getUint16(i, true) === 0 && ev.getUint16(i + 2, true) === 0) {
          end = i + 4;
          break;
        }
      }
      if (end < 0) return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);

      const siBytes = bytesOf(si);
      const sv = new DataView(siBytes.buffer, siBytes.byteOffset, siBytes.byteLength);
      const cb = sv.getUint32(StartupInfo.cb, true);
      const ex = (flags & EXTENDED_STARTUPINFO_PRESENT) !== 0;
      if (cb !== (ex ? STARTUPINFOEXW_SIZE : STARTUPINFOW_SIZE) || siBytes.length < cb) {
        return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      }
      const desktopAt = sv.getBigUint64(StartupInfo.lpDesktop, true);
      const stdio: [bigint, bigint, bigint] = [
        sv.getBigUint64(StartupInfo.hStdInput, true),
        sv.getBigUint64(StartupInfo.hStdOutput, true),
        sv.getBigUint64(StartupInfo.hStdError, true),
      ];
      let handleList: bigint[] | null = null;
      let jobList: bigint[] | null = null;
      if (ex) {
        const listAt = sv.getBigUint64(STARTUPINFOEX_ATTRIBUTE_LIST, true);
        const list = this.#lists.get(listAt);
        if (list === undefined) return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
        // Windows reads the arrays through the pointers the list kept, now.
        const handles = (attribute: number): bigint[] | null => {
          const attr = list.attributes.get(attribute);
          if (attr === undefined) return null;
          const view = new Deno.UnsafePointerView(Deno.UnsafePointer.create(attr.address)!);
          const out: bigint[] = [];
          for (let i = 0; i < attr.size; i += 8) out.push(view.getBigUint64(i));
          return out;
        };
        handleList = handles(PROC_THREAD_ATTRIBUTE_HANDLE_LIST);
        jobList = handles(PROC_THREAD_ATTRIBUTE_JOB_LIST);
      }
      const jobs: Job[] = [];
      for (const h of jobList ?? []) {
        const o = this.#handles.get(h)?.obj;
        if (o?.kind !== "job") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
        jobs.push(o.job);
      }
      const inheritableAtLaunch = [...this.#handles.entries()].filter(([, e]) => e.inherit)
        .map(([h]) => h);
      let inherited: bigint[] = [];
      if (inheritHandles) {
        if (handleList !== null) {
          for (const h of handleList) {
            if (!this.#handles.get(h)?.inherit) {
              return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
            }
          }
          inherited = handleList;
        } else inherited = inheritableAtLaunch;
      }
      if (jobs.length === 0) this.violations.push("the child started outside a job");
      for (const j of jobs) {
        if (((j.limitFlags ?? 0) & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE) === 0) {
          this.violations.push(`the child's job ${j.id} has no KILL_ON_JOB_CLOSE`);
        }
      }
      for (const h of inherited) {
        if (this.#handles.get(h)?.obj.kind === "job") {
          this.violations.push("the job handle reached the child");
        }
      }
      const dwFlags = sv.getUint32(StartupInfo.dwFlags, true);
      if ((dwFlags & STARTF_USESTDHANDLES) === 0) this.violations.push("no STARTF_USESTDHANDLES");
      for (const h of stdio) {
        if (!inherited.includes(h)) {
          this.violations.push(`stdio handle 0x${h.toString(16)} is not inherited`);
        }
      }
      const pipeOf = (h: bigint, end: "read" | "write"): Pipe => {
        const o = this.#handles.get(h)?.obj;
        if (o?.kind !== "pipe" || o.end !== end) throw new Error(`fake: stdio 0x${h}`);
        return o.pipe;
      };

      const proc = new Proc(
        `child ${this.launches.length + 1}`,
        jobs,
        (p, code, by) => this.#exit(p, code, by),
      );
      const launch: FakeLaunch = {
        application: wide(application),
        commandLine: wide(commandLine),
        environment: envBytes.slice(0, end),
        cwd: wide(cwd),
        flags,
        inheritHandles: inheritHandles !== 0,
        startupInfo: siBytes.slice(0, cb),
        desktop: desktopAt === 0n ? null : wideAt(desktopAt),
        stdio,
        handleList,
        jobList,
        process: proc,
        inherited,
        inheritableAtLaunch,
        exitCode: null,
        terminated: false,
      };
      proc.launch = launch;
      this.launches.push(launch);
      this.processes.push(proc);
      // The child's copies of what it inherited.
      for (const h of inherited) {
        const o = this.#handles.get(h)!.obj;
        if (o.kind !== "pipe") continue;
        proc.pipes.push({ pipe: o.pipe, end: o.end });
        if (o.end === "read") o.pipe.readers++;
        else o.pipe.writers++;
      }
      const process = this.#add({ kind: "process", proc }, false, true, "process");
      const thread = this.#add({ kind: "thread" }, false, true, "thread");
      const out = bytesOf(pi);
      if (out.length < PROCESS_INFORMATION_SIZE) throw new Error("fake: short pi");
      const pv = new DataView(out.buffer, out.byteOffset, out.byteLength);
      pv.setBigUint64(0, value(process), true);
      pv.setBigUint64(8, value(thread), true);
      pv.setUint32(16, 4000 + this.launches.length, true);
      pv.setUint32(20, 5000 + this.launches.length, true);
      this.#run(
        proc,
        pipeOf(stdio[0], "read"),
        pipeOf(stdio[1], "write"),
        pipeOf(stdio[2], "write"),
      ).catch((e) => this.violations.push(`fake child failed: ${e}`));
      return 1;
    },
  };

  readonly kernel32: Kernel32RunAsSymbols = {
    CreateJobObjectW: (sa, name) => {
      this.calls.push("CreateJobObjectW");
      if (this.#inject("CreateJobObjectW")) return null;
      if (name !== null) this.violations.push("a named job (others could open it)");
      let inherit = false;
      if (sa !== null) {
        const v = new Deno.UnsafePointerView(sa);
        inherit = v.getInt32(SecurityAttributes.bInheritHandle) !== 0;
      }
      const job: Job = {
        id: this.jobs.length + 1,
        limitFlags: null,
        openHandles: 1,
        processes: [],
      };
      this.jobs.push(job);
      return this.#add({ kind: "job", job }, inherit, true, "job");
    },
    SetInformationJobObject: (h, infoClass, info, length) => {
      this.calls.push(`SetInformationJobObject ${infoClass}`);
      if (this.#inject("SetInformationJobObject")) return 0;
      const e = this.#entry("SetInformationJobObject", h);
      if (e?.obj.kind !== "job") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      if (infoClass !== JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS) {
        this.violations.push(`SetInformationJobObject class ${infoClass} is not modelled`);
        return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      }
      const b = info === null ? new Uint8Array() : bytesOf(info);
      // Windows answers ERROR_BAD_LENGTH (24) for a wrong size.
      if (length !== JOBOBJECT_EXTENDED_LIMIT_INFORMATION_SIZE || b.length < length) {
        return this.#fail(24);
      }
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      e.obj.job.limitFlags = v.getUint32(
        JobExtendedLimitInformation.BasicLimitInformation + JobBasicLimitInformation.LimitFlags,
        true,
      );
      return 1;
    },
    TerminateJobObject: (h, code) => {
      this.calls.push(`TerminateJobObject ${code}`);
      if (this.#inject("TerminateJobObject")) return 0;
      const e = this.#entry("TerminateJobObject", h);
      if (e?.obj.kind !== "job") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      this.#endJob(e.obj.job, code, "TerminateJobObject");
      return 1;
    },
    CreatePipe: (r, w, sa, _size) => {
      this.calls.push("CreatePipe");
      if (this.#inject("CreatePipe")) return 0;
      let inherit = false;
      if (sa !== null) {
        const b = bytesOf(sa);
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (v.getUint32(SecurityAttributes.nLength, true) !== SECURITY_ATTRIBUTES_SIZE) {
          return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
        }
        inherit = v.getInt32(SecurityAttributes.bInheritHandle, true) !== 0;
      }
      const id = ++this.#pipes;
      const pipe: Pipe = { id, chunks: [], size: 0, readers: 1, writers: 1, waiters: [] };
      const hr = this.#add({ kind: "pipe", end: "read", pipe }, inherit, true, `pipe${id} read`);
      const hw = this.#add({ kind: "pipe", end: "write", pipe }, inherit, true, `pipe${id} write`);
      const rb = bytesOf(r);
      const wb = bytesOf(w);
      new DataView(rb.buffer, rb.byteOffset).setBigUint64(0, value(hr), true);
      new DataView(wb.buffer, wb.byteOffset).setBigUint64(0, value(hw), true);
      return 1;
    },
    SetHandleInformation: (h, mask, flags) => {
      this.calls.push("SetHandleInformation");
      if (this.#inject("SetHandleInformation")) return 0;
      const e = this.#entry("SetHandleInformation", h);
      if (e === undefined) return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      if (mask & HANDLE_FLAG_INHERIT) e.inherit = (flags & HANDLE_FLAG_INHERIT) !== 0;
      return 1;
    },
    InitializeProcThreadAttributeList: (list, count, _flags, size) => {
      this.calls.push("InitializeProcThreadAttributeList");
      if (this.#inject("InitializeProcThreadAttributeList")) return 0;
      const sb = bytesOf(size);
      const sv = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
      if (count < 1) return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      const need = attributeListSize(count);
      if (list === null) {
        sv.setBigUint64(0, BigInt(need), true);
        return this.#fail(RunAsError.ERROR_INSUFFICIENT_BUFFER);
      }
      if (bytesOf(list).length < need || sv.getBigUint64(0, true) < BigInt(need)) {
        sv.setBigUint64(0, BigInt(need), true);
        return this.#fail(RunAsError.ERROR_INSUFFICIENT_BUFFER);
      }
      this.#lists.set(addressOf(list), { capacity: count, attributes: new Map() });
      return 1;
    },
    UpdateProcThreadAttribute: (list, _flags, attribute, valuePtr, size, _prev, _ret) => {
      this.calls.push("UpdateProcThreadAttribute");
      if (this.#inject("UpdateProcThreadAttribute")) return 0;
      const l = list === null ? undefined : this.#lists.get(addressOf(list));
      if (l === undefined || valuePtr === null) {
        return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      }
      const n = Number(size);
      const a = Number(attribute);
      const handleArray = a === PROC_THREAD_ATTRIBUTE_HANDLE_LIST ||
        a === PROC_THREAD_ATTRIBUTE_JOB_LIST;
      if (handleArray && (n === 0 || n % 8 !== 0)) {
        return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      }
      if (!l.attributes.has(a) && l.attributes.size >= l.capacity) {
        this.violations.push(`attribute 0x${a.toString(16)} beyond the list's ${l.capacity}`);
        return this.#fail(RunAsError.ERROR_INVALID_PARAMETER);
      }
      // Windows keeps the pointer, not a copy: read through it at CreateProcessAsUserW.
      l.attributes.set(a, { address: addressOf(valuePtr), size: n });
      return 1;
    },
    DeleteProcThreadAttributeList: (list) => {
      this.calls.push("DeleteProcThreadAttributeList");
      if (list === null || !this.#lists.delete(addressOf(list))) {
        this.violations.push("DeleteProcThreadAttributeList of an unknown list");
      }
    },
    ReadFile: async (h, buf, n, got, _ovl) => {
      this.calls.push("ReadFile");
      const e = this.#entry("ReadFile", h);
      const gb = bytesOf(got);
      const gv = new DataView(gb.buffer, gb.byteOffset, gb.byteLength);
      gv.setUint32(0, 0, true);
      if (e?.obj.kind !== "pipe" || e.obj.end !== "read") {
        this.workerLastError = RunAsError.ERROR_INVALID_HANDLE;
        return 0;
      }
      const pipe = e.obj.pipe;
      e.pending++;
      try {
        for (;;) {
          if (pipe.size > 0) {
            const data = this.#take(pipe, n);
            bytesOf(buf).set(data);
            gv.setUint32(0, data.length, true);
            return 1;
          }
          if (pipe.writers === 0) {
            this.workerLastError = RunAsError.ERROR_BROKEN_PIPE;
            return 0;
          }
          await this.#changed(pipe);
        }
      } finally {
        e.pending--;
      }
    },
    WriteFile: async (h, buf, n, done, _ovl) => {
      this.calls.push("WriteFile");
      const e = this.#entry("WriteFile", h);
      const db = bytesOf(done);
      const dv = new DataView(db.buffer, db.byteOffset, db.byteLength);
      dv.setUint32(0, 0, true);
      if (e?.obj.kind !== "pipe" || e.obj.end !== "write") {
        this.workerLastError = RunAsError.ERROR_INVALID_HANDLE;
        return 0;
      }
      e.pending++;
      try {
        const ok = await this.#put(e.obj.pipe, bytesOf(buf).slice(0, n), () => false);
        if (!ok) {
          this.workerLastError = RunAsError.ERROR_NO_DATA;
          return 0;
        }
        dv.setUint32(0, n, true);
        return 1;
      } finally {
        e.pending--;
      }
    },
    WaitForSingleObject: (h, ms) => {
      this.calls.push("WaitForSingleObject");
      const e = this.#entry("WaitForSingleObject", h);
      if (e?.obj.kind !== "process") {
        this.workerLastError = RunAsError.ERROR_INVALID_HANDLE;
        return Promise.resolve(WAIT_FAILED);
      }
      const proc = e.obj.proc;
      if (proc.dead) return Promise.resolve(WAIT_OBJECT_0);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(WAIT_OBJECT_0);
        };
        const timer = ms === INFINITE ? undefined : setTimeout(() => {
          proc.waiters.splice(proc.waiters.indexOf(wake), 1);
          resolve(WAIT_TIMEOUT);
        }, ms);
        proc.waiters.push(wake);
      });
    },
    GetExitCodeProcess: (h, code) => {
      this.calls.push("GetExitCodeProcess");
      const e = this.#entry("GetExitCodeProcess", h);
      if (e?.obj.kind !== "process") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      const cb = bytesOf(code);
      const proc = e.obj.proc;
      new DataView(cb.buffer, cb.byteOffset).setUint32(
        0,
        proc.dead ? proc.exitCode! : STILL_ACTIVE,
        true,
      );
      return 1;
    },
    TerminateProcess: (h, code) => {
      this.calls.push(`TerminateProcess ${code}`);
      const e = this.#entry("TerminateProcess", h);
      if (e?.obj.kind !== "process") return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      if (e.obj.proc.dead) return this.#fail(RunAsError.ERROR_ACCESS_DENIED);
      this.#exit(e.obj.proc, code, "TerminateProcess"); // the child only, not what it started
      return 1;
    },
    CloseHandle: (h) => {
      const key = value(h);
      const e = this.#handles.get(key);
      this.calls.push(`CloseHandle ${e?.name ?? "?"}`);
      if (e === undefined) {
        this.violations.push(`CloseHandle of unknown handle 0x${key.toString(16)}`);
        return this.#fail(RunAsError.ERROR_INVALID_HANDLE);
      }
      if (e.pending > 0) this.violations.push(`CloseHandle of ${e.name} under a pending call`);
      this.#handles.delete(key);
      if (e.obj.kind === "pipe") {
        if (e.obj.end === "read") e.obj.pipe.readers--;
        else e.obj.pipe.writers--;
        this.#notify(e.obj.pipe);
      }
      if (e.obj.kind === "job") {
        const job = e.obj.job;
        // The exit code Windows gives the processes it kills here is not modelled (0).
        if (
          --job.openHandles === 0 && ((job.limitFlags ?? 0) & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)
        ) {
          this.#endJob(job, 0, "job closed");
        }
      }
      return 1;
    },
    GetLastError: () => this.#lastError,
  };
}
