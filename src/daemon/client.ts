/**
 * The client side of the control protocol: what `kconnect up`, `down` and `status` use to talk
 * to the daemon.
 *
 * @module
 */
import { proveIdentity } from "./auth.ts";
import {
  encodeLine,
  type ErrorCode,
  type Hello,
  LineReader,
  type ProgressEvent,
  PROTOCOL_VERSION,
  type Request,
} from "./protocol.ts";
import { runDirOf } from "./paths.ts";
import { isPipeName, openPipeNative, type PipeNative } from "./windows_pipe_native.ts";
import { connectPipe, PipeUnavailableError } from "./windows_pipe.ts";

/**
 * No daemon could be reached: none runs (`absent`), or this user may not use it (`denied`: the
 * socket is not ours to open, or the daemon refused our uid).
 */
export class DaemonUnavailableError extends Error {
  /** Why. */
  readonly reason: "absent" | "denied";
  /** Creates the error. */
  constructor(reason: "absent" | "denied", message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonUnavailableError";
    this.reason = reason;
  }
}

/** The daemon refused or failed a request. */
export class DaemonRequestError extends Error {
  /** The protocol's error code. */
  readonly code: ErrorCode;
  /** Creates the error. */
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "DaemonRequestError";
    this.code = code;
  }
}

/** A request without the fields the client adds itself. */
export type RequestBody = Request extends infer R
  ? R extends Request ? Omit<R, "v" | "auth"> : never
  : never;

/** Options of {@linkcode callDaemon}. */
export interface CallOptions {
  /** Called with each progress event (`up`). */
  onProgress?: (event: ProgressEvent) => void;
  /** Milliseconds to wait for the daemon's `hello`. Default 5 s. */
  helloTimeoutMs?: number;
  /** Windows named pipe: the native functions (tests pass a fake). Default the real ones. */
  pipeNative?: PipeNative;
}

/** A connection to the daemon, over a Unix socket or a Windows named pipe. */
interface DaemonConn {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  close(): void;
}

/**
 * Opens the control channel: a Windows named pipe (whose owner must be SYSTEM or
 * Administrators) or a Unix socket.
 */
async function openControl(socket: string, native?: PipeNative): Promise<DaemonConn> {
  if (isPipeName(socket)) {
    try {
      const c = await connectPipe(native ?? openPipeNative(), socket);
      return { readable: c.readable, writable: c.writable, close: () => void c.close() };
    } catch (err) {
      if (err instanceof PipeUnavailableError) {
        throw new DaemonUnavailableError(
          err.reason,
          err.reason === "denied"
            ? `${err.message}. An administrator can add it: net localgroup kconnect <user> /add (then sign out and in again), or run kconnect from a terminal opened as administrator`
            : err.message,
          { cause: err },
        );
      }
      throw err;
    }
  }
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new DaemonUnavailableError(
        "denied",
        deniedMessage(socket, await groupOf(runDirOf(socket))),
        { cause: err },
      );
    }
    throw new DaemonUnavailableError("absent", `No kconnect daemon is listening on ${socket}`, {
      cause: err,
    });
  }
  return {
    readable: conn.readable,
    writable: conn.writable,
    close: () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}

async function writeAll(conn: DaemonConn, bytes: Uint8Array): Promise<void> {
  const w = conn.writable.getWriter();
  try {
    await w.write(bytes);
  } finally {
    w.releaseLock();
  }
}

function deniedMessage(socket: string, group: string | null): string {
  return `Permission denied opening kconnect's control socket ${socket}: your user is not allowed to use the kconnect daemon. ` +
    `Add it to the group${group ? ` "${group}"` : ""} (sudo usermod -aG ${
      group ?? "kconnect"
    } $USER, then log in again), or use sudo`;
}

async function groupOf(path: string): Promise<string | null> {
  try {
    const gid = (await Deno.stat(path)).gid;
    if (gid === null) return null;
    const out = await new Deno.Command("getent", {
      args: ["group", String(gid)],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).split(":")[0] : String(gid);
  } catch {
    return null;
  }
}

/**
 * Sends one request to the daemon on `socket` and returns its result.
 *
 * @throws {DaemonUnavailableError} when no daemon listens or the socket may not be opened.
 * @throws {DaemonRequestError} when the daemon refused or failed the request.
 */
export async function callDaemon(
  socket: string,
  body: RequestBody,
  options: CallOptions = {},
): Promise<unknown> {
  const conn = await openControl(socket, options.pipeNative);
  let proof: string | null = null;
  try {
    const reader = new LineReader(conn.readable);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      reader.next(),
      new Promise<null>((r) => timer = setTimeout(() => r(null), options.helloTimeoutMs ?? 5000)),
    ]).finally(() => clearTimeout(timer));
    if (first === null) {
      throw new DaemonUnavailableError("absent", `The kconnect daemon on ${socket} did not answer`);
    }
    const hello = JSON.parse(first) as Hello;
    if (hello.type !== "hello" || hello.v !== PROTOCOL_VERSION) {
      throw new Error(
        `The kconnect daemon on ${socket} speaks control protocol ${hello.v} (version ${hello.version}); this kconnect speaks ${PROTOCOL_VERSION}: restart the daemon (sudo systemctl restart kconnect)`,
      );
    }
    try {
      // A daemon that knows who we are from the kernel's pipe token sends no auth directory.
      if (hello.authDir !== "") proof = await proveIdentity(hello.authDir, hello.nonce);
    } catch (err) {
      if (err instanceof Deno.errors.PermissionDenied) {
        throw new DaemonUnavailableError(
          "denied",
          deniedMessage(socket, await groupOf(hello.authDir)),
          { cause: err },
        );
      }
      throw err;
    }
    await writeAll(conn, encodeLine({ ...body, v: PROTOCOL_VERSION, auth: hello.nonce }));
    while (true) {
      const line = await reader.next();
      if (line === null) {
        const where = hello.logFile
          ? `its log, ${hello.logFile}`
          : hello.logFile === null
          ? "its output (it logs to stderr)"
          : "its log";
        throw new Error(
          `The kconnect daemon (pid ${hello.pid}) closed the connection without an answer: see ${where}, or run kconnect gather-logs`,
        );
      }
      const m = JSON.parse(line) as
        | { type: "progress"; event: ProgressEvent }
        | { type: "result"; result: unknown }
        | { type: "error"; code: ErrorCode; message: string };
      if (m.type === "progress") options.onProgress?.(m.event);
      else if (m.type === "result") return m.result;
      else if (m.type === "error") {
        if (m.code === "forbidden") throw new DaemonUnavailableError("denied", m.message);
        throw new DaemonRequestError(m.code, m.message);
      }
    }
  } finally {
    conn.close();
    if (proof !== null) await Deno.remove(proof).catch(() => {});
  }
}

/**
 * Whether something accepts connections on the Unix socket at `path`, or a daemon's Windows
 * pipe of that name exists (a daemon is listening).
 */
export async function socketAnswers(path: string, native?: PipeNative): Promise<boolean> {
  if (isPipeName(path)) {
    try {
      (await openControl(path, native)).close();
      return true;
    } catch (err) {
      return err instanceof DaemonUnavailableError && err.reason === "denied";
    }
  }
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}
