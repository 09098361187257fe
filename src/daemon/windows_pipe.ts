/**
 * The daemon's control channel on Windows: a local named pipe (`\\.\pipe\kconnect`) with the
 * same guarantees the Unix socket gives on Linux.
 *
 * - **Who may connect** is decided by the kernel: the pipe's DACL (`pipeSddl`) lets SYSTEM,
 *   Administrators and the allowed groups open it, nobody else (`ERROR_ACCESS_DENIED`), like
 *   the socket's `0660 root:<group>`. Members get read/write of the byte stream only, never
 *   `FILE_CREATE_PIPE_INSTANCE`, so they cannot add an instance of their own to the daemon's
 *   pipe and answer other users. Remote clients are rejected (`PIPE_REJECT_REMOTE_CLIENTS`).
 * - **Nobody can take the name first**: the daemon creates its first instance with
 *   `FILE_FLAG_FIRST_PIPE_INSTANCE` and refuses to start if the name exists; a client checks
 *   that the pipe's owner is SYSTEM or Administrators before it sends anything (an ordinary user
 *   who created the name before the daemon started owns it, and is refused).
 * - **Who is asking** comes from the kernel, as `SO_PEERCRED` does on Linux: once the request
 *   was read, the daemon impersonates the client for three calls (`ImpersonateNamedPipeClient`,
 *   `OpenThreadToken`, `RevertToSelf`) and reads the token's user and enabled groups. If
 *   reverting ever fails the process stops rather than go on as the client. The token is kept
 *   (for running `kconnect credentials` as that user) and closed with the connection unless the
 *   caller takes it.
 *
 * I/O is overlapped: each operation is started on the JavaScript thread, then its event is
 * waited for on a worker thread (`WaitForSingleObject`, `nonblocking`), so neither the event
 * loop nor a thread is held by an idle client; `CancelIoEx` ends what is pending on close.
 *
 * @module
 */
import {
  CLIENT_ACCESS,
  effectiveGroups,
  FILE_FLAG_FIRST_PIPE_INSTANCE,
  FILE_FLAG_OVERLAPPED,
  INFINITE,
  OPEN_EXISTING,
  overlapped,
  OWNER_SECURITY_INFORMATION,
  PIPE_ACCESS_DUPLEX,
  PIPE_MODE,
  PIPE_UNLIMITED_INSTANCES,
  PipeError,
  pipeErrorName,
  type PipeNative,
  pipeSddl,
  readTokenGroups,
  readTokenUser,
  SE_KERNEL_OBJECT,
  SECURITY_IMPERSONATION,
  SECURITY_SQOS_PRESENT,
  SID_ADMINISTRATORS,
  SID_SYSTEM,
  TOKEN_ACCESS,
  TOKEN_GROUPS_CLASS,
  TOKEN_USER_CLASS,
} from "./windows_pipe_native.ts";
import { securityAttributes } from "../host/windows_run_as_structs.ts";
import { wideString as wide } from "../tun/wintun_symbols.ts";
import { parseSid } from "../host/windows_acl.ts";
import { logger } from "../log.ts";

/** A client of the pipe, as the kernel knows it. */
export interface WindowsPeer {
  /** The token's user SID. */
  sid: string;
  /** The token's enabled, not deny-only, group SIDs. */
  groups: string[];
  /** The client's token (impersonation, TOKEN_QUERY | TOKEN_DUPLICATE); see {@linkcode PipeConn.takeToken}. */
  token: Deno.PointerValue;
}

/** A failure of a Win32 call, with its error code. */
export class Win32Error extends Error {
  /** The `GetLastError` (or returned) code. */
  readonly code: number;
  /** Creates the error. */
  constructor(call: string, code: number, context = "") {
    super(`${call} failed: ${pipeErrorName(code)}${context ? ` (${context})` : ""}`);
    this.name = "Win32Error";
    this.code = code;
  }
}

/** No daemon's pipe could be opened: none exists (`absent`), or the DACL refused us (`denied`). */
export class PipeUnavailableError extends Error {
  /** Why. */
  readonly reason: "absent" | "denied";
  /** Creates the error. */
  constructor(reason: "absent" | "denied", message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PipeUnavailableError";
    this.reason = reason;
  }
}

const INVALID_HANDLE = 0xffffffffffffffffn;

function addressOf(p: Deno.PointerValue): bigint {
  return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
}

function invalid(h: Deno.PointerValue): boolean {
  const a = addressOf(h);
  return a === 0n || a === INVALID_HANDLE;
}

/** One overlapped slot: its OVERLAPPED and event; one operation at a time. */
interface Slot {
  ov: Uint8Array;
  event: Deno.PointerValue;
}

/** A pipe handle with a read slot and a write slot (both may be pending at once). */
class PipeHandle {
  readonly #n: PipeNative;
  readonly handle: Deno.PointerValue;
  readonly #read: Slot;
  readonly #write: Slot;
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(native: PipeNative, handle: Deno.PointerValue) {
    this.#n = native;
    this.handle = handle;
    this.#read = this.#slot();
    this.#write = this.#slot();
  }

  #slot(): Slot {
    const event = this.#n.sym.CreateEventW(null, 1, 0, null);
    if (invalid(event)) throw new Win32Error("CreateEventW", this.#n.sym.GetLastError());
    const ov = overlapped(addressOf(event));
    return { ov, event };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one overlapped operation: `start` issues it (returns the BOOL); the result is the byte
   * count. `immediate` lists error codes that mean "done at once, with 0 bytes".
   */
  async #io(
    slot: Slot,
    call: string,
    start: (ov: Uint8Array) => number,
    immediate: readonly number[] = [],
  ): Promise<number> {
    if (this.#closed) throw new Win32Error(call, PipeError.ERROR_INVALID_HANDLE, "closed");
    const { sym, wait } = this.#n;
    const op = (async () => {
      if (start(slot.ov) === 0) {
        const e = sym.GetLastError();
        if (immediate.includes(e)) return 0;
        if (e !== PipeError.ERROR_IO_PENDING) throw new Win32Error(call, e);
      }
      await wait.WaitForSingleObject(slot.event, INFINITE);
      const count = new Uint32Array(1);
      if (sym.GetOverlappedResult(this.handle, slot.ov, count, 0) === 0) {
        throw new Win32Error(call, sym.GetLastError());
      }
      return count[0];
    })();
    this.#pending.add(op);
    try {
      return await op;
    } finally {
      this.#pending.delete(op);
    }
  }

  /** Waits for a client (server instances). */
  async connect(): Promise<void> {
    await this.#io(
      this.#read,
      "ConnectNamedPipe",
      (ov) => this.#n.sym.ConnectNamedPipe(this.handle, ov),
      [PipeError.ERROR_PIPE_CONNECTED],
    );
  }

  /** Reads into `buf`; 0 when the other end is gone. */
  async read(buf: Uint8Array): Promise<number> {
    try {
      return await this.#io(
        this.#read,
        "ReadFile",
        (ov) => this.#n.sym.ReadFile(this.handle, buf, buf.length, null, ov),
      );
    } catch (err) {
      if (
        err instanceof Win32Error &&
        (err.code === PipeError.ERROR_BROKEN_PIPE ||
          err.code === PipeError.ERROR_PIPE_NOT_CONNECTED)
      ) return 0;
      throw err;
    }
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const chunk = bytes.subarray(at);
      const n = await this.#io(
        this.#write,
        "WriteFile",
        (ov) => this.#n.sym.WriteFile(this.handle, chunk, chunk.length, null, ov),
      );
      if (n === 0) throw new Win32Error("WriteFile", PipeError.ERROR_NO_DATA, "nothing written");
      at += n;
    }
  }

  /** Ends pending operations, then closes the handle and the events. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const { sym } = this.#n;
    if (this.#pending.size > 0) {
      sym.CancelIoEx(this.handle, null);
      await Promise.allSettled([...this.#pending]);
    }
    sym.CloseHandle(this.handle);
    sym.CloseHandle(this.#read.event);
    sym.CloseHandle(this.#write.event);
  }
}

/** A connection over the pipe (either end). */
export class PipeConn {
  readonly #h: PipeHandle;
  readonly #n: PipeNative;
  readonly #fatal: (message: string) => never;
  #token: Deno.PointerValue = null;
  #readAnything = false;
  /** Bytes from the other end; ends when it closes. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the other end. */
  readonly writable: WritableStream<Uint8Array>;

  /** @internal */
  constructor(native: PipeNative, h: PipeHandle, fatal: (message: string) => never) {
    this.#n = native;
    this.#h = h;
    this.#fatal = fatal;
    this.readable = new ReadableStream<Uint8Array>({
      pull: async (c) => {
        const buf = new Uint8Array(16 * 1024);
        let n: number;
        try {
          n = await h.read(buf);
        } catch (err) {
          if (h.closed) n = 0;
          else throw err;
        }
        if (n === 0) c.close();
        else {
          this.#readAnything = true;
          c.enqueue(buf.subarray(0, n));
        }
      },
      cancel: () => this.close(),
    });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => h.write(chunk),
      close: () => {},
      abort: () => this.close(),
    });
  }

  /**
   * Who the client is (server end only), from its token. Call it after something was read from
   * the pipe: Windows impersonates the sender of the last message read.
   *
   * @throws {Win32Error} when the token cannot be read; the request must then be refused.
   */
  identify(): WindowsPeer {
    const { sym } = this.#n;
    if (!this.#readAnything) {
      throw new Win32Error(
        "ImpersonateNamedPipeClient",
        PipeError.ERROR_CANNOT_IMPERSONATE,
        "nothing read yet",
      );
    }
    if (this.#token === null) {
      if (sym.ImpersonateNamedPipeClient(this.#h.handle) === 0) {
        throw new Win32Error("ImpersonateNamedPipeClient", sym.GetLastError());
      }
      const out = new BigUint64Array(1);
      let opened: number;
      let error = 0;
      try {
        opened = sym.OpenThreadToken(sym.GetCurrentThread(), TOKEN_ACCESS, 1, out);
        if (opened === 0) error = sym.GetLastError();
        else this.#token = Deno.UnsafePointer.create(out[0]);
      } finally {
        if (sym.RevertToSelf() === 0) {
          this.#fatal(
            `RevertToSelf failed (${
              pipeErrorName(sym.GetLastError())
            }) after impersonating a control client: stopping rather than go on as that user`,
          );
        }
      }
      if (opened === 0) throw new Win32Error("OpenThreadToken", error);
    }
    const user = readTokenUser(...this.#tokenInfo(TOKEN_USER_CLASS));
    const groups = effectiveGroups(readTokenGroups(...this.#tokenInfo(TOKEN_GROUPS_CLASS)));
    return { sid: user.sid, groups, token: this.#token };
  }

  #tokenInfo(kind: number): [Uint8Array, bigint] {
    const { sym } = this.#n;
    const needed = new Uint32Array(1);
    sym.GetTokenInformation(this.#token, kind, null, 0, needed);
    if (needed[0] === 0 || needed[0] > 1 << 20) {
      throw new Win32Error("GetTokenInformation", sym.GetLastError(), `class ${kind}`);
    }
    // 8-byte aligned: the structure holds pointers.
    const buf = new Uint8Array(new BigUint64Array(Math.ceil(needed[0] / 8)).buffer);
    if (sym.GetTokenInformation(this.#token, kind, buf, buf.length, needed) === 0) {
      throw new Win32Error("GetTokenInformation", sym.GetLastError(), `class ${kind}`);
    }
    return [buf, addressOf(Deno.UnsafePointer.of(buf))];
  }

  /** Hands the client's token to the caller, who then closes it (`CloseHandle`). */
  takeToken(): Deno.PointerValue {
    const t = this.#token;
    this.#token = null;
    return t;
  }

  /** The pipe's owner SID (client end: who created the pipe). */
  owner(): string {
    const { sym } = this.#n;
    const owner = new BigUint64Array(1);
    const sd = new BigUint64Array(1);
    const status = sym.GetSecurityInfo(
      this.#h.handle,
      SE_KERNEL_OBJECT,
      OWNER_SECURITY_INFORMATION,
      owner,
      null,
      null,
      null,
      sd,
    );
    if (status !== 0) throw new Win32Error("GetSecurityInfo", status);
    try {
      const p = Deno.UnsafePointer.create(owner[0]);
      if (p === null) throw new Error("the pipe has no owner");
      const head = new Uint8Array(8);
      Deno.UnsafePointerView.copyInto(p, head);
      const bytes = new Uint8Array(8 + 4 * Math.min(head[1], 15));
      Deno.UnsafePointerView.copyInto(p, bytes);
      return parseSid(bytes).sid;
    } finally {
      const p = Deno.UnsafePointer.create(sd[0]);
      if (p !== null) sym.LocalFree(p);
    }
  }

  /** Closes the connection (and the client's token, unless taken). Safe to call twice. */
  close(): Promise<void> {
    if (this.#token !== null) {
      this.#n.sym.CloseHandle(this.#token);
      this.#token = null;
    }
    return this.#h.close();
  }
}

/** Options of {@linkcode PipeListener.listen}. */
export interface PipeListenOptions {
  /** SIDs (besides SYSTEM and Administrators) that may open the pipe. */
  allowed: readonly string[];
  /** Called when the process must stop at once (RevertToSelf failed). Default: exit 70. */
  fatal?: (message: string) => never;
}

function exitNow(message: string): never {
  logger("daemon").error(message);
  Deno.exit(70);
}

/** The server end: one instance waiting for a client at any time, a new one per connection. */
export class PipeListener {
  readonly #n: PipeNative;
  readonly #name: string;
  readonly #sa: Uint8Array;
  readonly #descriptor: Deno.PointerValue;
  readonly #fatal: (message: string) => never;
  #next: PipeHandle | null;
  #closed = false;

  private constructor(
    native: PipeNative,
    name: string,
    sa: Uint8Array,
    descriptor: Deno.PointerValue,
    fatal: (message: string) => never,
  ) {
    this.#n = native;
    this.#name = name;
    this.#sa = sa;
    this.#descriptor = descriptor;
    this.#fatal = fatal;
    this.#next = null;
  }

  /**
   * Creates the pipe's first instance.
   *
   * @throws {Error} when the name exists already (another daemon, or someone holding the name).
   */
  static listen(native: PipeNative, name: string, o: PipeListenOptions): PipeListener {
    const { sym } = native;
    const out = new BigUint64Array(1);
    const sddl = pipeSddl(o.allowed);
    if (sym.ConvertStringSecurityDescriptorToSecurityDescriptorW(wide(sddl), 1, out, null) === 0) {
      throw new Win32Error(
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        sym.GetLastError(),
        sddl,
      );
    }
    const descriptor = Deno.UnsafePointer.create(out[0]);
    const l = new PipeListener(
      native,
      name,
      securityAttributes(false, out[0]),
      descriptor,
      o.fatal ?? exitNow,
    );
    try {
      l.#next = l.#instance(true);
    } catch (err) {
      if (descriptor !== null) sym.LocalFree(descriptor);
      if (err instanceof Win32Error && err.code === PipeError.ERROR_ACCESS_DENIED) {
        throw new Error(
          `The pipe ${name} exists already: another kconnect daemon runs, or another program holds the name (a daemon never shares it)`,
          { cause: err },
        );
      }
      throw err;
    }
    return l;
  }

  #instance(first: boolean): PipeHandle {
    const { sym } = this.#n;
    const h = sym.CreateNamedPipeW(
      wide(this.#name),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_MODE,
      PIPE_UNLIMITED_INSTANCES,
      64 * 1024,
      64 * 1024,
      0,
      this.#sa,
    );
    if (invalid(h)) throw new Win32Error("CreateNamedPipeW", sym.GetLastError(), this.#name);
    try {
      return new PipeHandle(this.#n, h);
    } catch (err) {
      sym.CloseHandle(h);
      throw err;
    }
  }

  /** The next client, or null once closed. */
  async accept(): Promise<PipeConn | null> {
    while (!this.#closed) {
      const inst = this.#next!;
      try {
        await inst.connect();
      } catch (err) {
        if (this.#closed) return null;
        // A client that came and went before the connect completed: use a fresh instance.
        if (err instanceof Win32Error && err.code === PipeError.ERROR_NO_DATA) {
          await inst.close();
          this.#next = this.#instance(false);
          continue;
        }
        throw err;
      }
      if (this.#closed) {
        await inst.close();
        return null;
      }
      // The next instance exists before this one is handed out, so a client never finds none.
      this.#next = this.#instance(false);
      return new PipeConn(this.#n, inst, this.#fatal);
    }
    return null;
  }

  /** Stops accepting; connections already handed out stay open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#next?.close();
    if (this.#descriptor !== null) this.#n.sym.LocalFree(this.#descriptor);
  }
}

/** The owners a daemon's pipe may have. */
const TRUSTED_OWNERS = new Set([SID_SYSTEM, SID_ADMINISTRATORS]);

/**
 * Opens the daemon's pipe as a client, waits up to `timeoutMs` for a free instance, and checks
 * that SYSTEM or Administrators own it before anything is sent.
 *
 * @throws {PipeUnavailableError} when no pipe exists or the DACL refuses this user.
 * @throws {Error} when the pipe's owner is someone else (a program holding kconnect's name).
 */
export async function connectPipe(
  native: PipeNative,
  name: string,
  timeoutMs = 5000,
): Promise<PipeConn> {
  const { sym, wait } = native;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const h = sym.CreateFileW(
      wide(name),
      CLIENT_ACCESS,
      0,
      null,
      OPEN_EXISTING,
      FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IMPERSONATION,
      null,
    );
    if (invalid(h)) {
      const e = sym.GetLastError();
      if (e === PipeError.ERROR_FILE_NOT_FOUND) {
        throw new PipeUnavailableError("absent", `No kconnect daemon is listening on ${name}`);
      }
      if (e === PipeError.ERROR_ACCESS_DENIED) {
        throw new PipeUnavailableError(
          "denied",
          `Access denied opening kconnect's control pipe ${name}: your user is not allowed to use the kconnect daemon`,
        );
      }
      if (e === PipeError.ERROR_PIPE_BUSY && Date.now() < deadline) {
        await wait.WaitNamedPipeW(wide(name), Math.max(1, deadline - Date.now()));
        continue;
      }
      throw new Win32Error("CreateFileW", e, name);
    }
    let handle: PipeHandle;
    try {
      handle = new PipeHandle(native, h);
    } catch (err) {
      sym.CloseHandle(h);
      throw err;
    }
    const conn = new PipeConn(native, handle, exitNow);
    let owner: string;
    try {
      owner = conn.owner();
    } catch (err) {
      await conn.close();
      throw err;
    }
    if (!TRUSTED_OWNERS.has(owner)) {
      await conn.close();
      throw new Error(
        `The pipe ${name} belongs to ${owner}, not to SYSTEM or Administrators: another program holds kconnect's pipe name. Nothing was sent to it; stop that program and restart the kconnect daemon`,
      );
    }
    return conn;
  }
}

/**
 * The SID of a local account or group (`LookupAccountNameW`), or null when the name maps to
 * none.
 *
 * @throws {Win32Error} for any other failure.
 */
export function accountSid(native: PipeNative, name: string): string | null {
  const { sym } = native;
  const sidSize = new Uint32Array(1);
  const domainSize = new Uint32Array(1);
  const use = new Uint32Array(1);
  const n = wide(name);
  if (sym.LookupAccountNameW(null, n, null, sidSize, null, domainSize, use) === 0) {
    const e = sym.GetLastError();
    if (e === PipeError.ERROR_NONE_MAPPED) return null;
    if (e !== PipeError.ERROR_INSUFFICIENT_BUFFER) {
      throw new Win32Error("LookupAccountNameW", e, name);
    }
  }
  const sid = new Uint8Array(Math.max(8, sidSize[0]));
  const domain = new Uint16Array(Math.max(1, domainSize[0]));
  if (sym.LookupAccountNameW(null, n, sid, sidSize, domain, domainSize, use) === 0) {
    const e = sym.GetLastError();
    if (e === PipeError.ERROR_NONE_MAPPED) return null;
    throw new Win32Error("LookupAccountNameW", e, name);
  }
  return parseSid(sid).sid;
}
