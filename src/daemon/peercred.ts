/**
 * The daemon's control socket with the peer's credentials from the kernel (`SO_PEERCRED`).
 *
 * Deno's `Deno.listen({ transport: "unix" })` gives no access to an accepted connection's file
 * descriptor, so it cannot ask the kernel who connected. Here the daemon owns the socket itself
 * through `Deno.dlopen` on libc: `socket`/`bind`/`listen`, a blocking `accept4` on a worker
 * thread (`nonblocking: true`), and `getsockopt(SO_PEERCRED)` on each accepted descriptor, which
 * gives the uid, gid and pid the connecting process had when it called `connect()` — set by the
 * kernel, so no client can choose them and no file (hard-linked or not) is involved. The accepted
 * descriptor is then handed to `node:net`'s `Socket({ fd })`, so reading and writing use the
 * runtime's own event loop, and is closed here once that socket is done with it (Deno's socket
 * over a given descriptor leaves it open).
 *
 * Linux only (x86_64 and aarch64: the generic ABI's constants). {@linkcode peerCredSupported}
 * says whether this process can use it; elsewhere the daemon falls back to the uid proof by file
 * (`auth.ts`).
 *
 * @module
 */
import net from "node:net";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const ASYNC_SYMBOLS = {
  /** Blocks on a worker thread until a client connects or the socket is shut down. */
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SHUT_RDWR = 2;
/** `sizeof(struct sockaddr_un)`: a 2-byte family and 108 bytes of path. */
const SOCKADDR_UN_SIZE = 110;
/** `sizeof(struct stat)` on x86_64 and aarch64 (144 and 128: the larger one). */
const STAT_SIZE = 144;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type AsyncLib = Deno.DynamicLibrary<typeof ASYNC_SYMBOLS>["symbols"];

let lib: Lib | undefined;
let asyncLib: AsyncLib | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Kernel peer credentials cannot be had here (another OS, or libc cannot be loaded). */
export class PeerCredUnavailableError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PeerCredUnavailableError";
  }
}

function libc(): { sync: Lib; async: AsyncLib } {
  if (lib === undefined || asyncLib === undefined) {
    if (!peerCredSupported()) {
      throw new PeerCredUnavailableError(
        `SO_PEERCRED: not supported on ${Deno.build.os}/${Deno.build.arch}`,
      );
    }
    try {
      const sync = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
      const at = sync.__errno_location();
      if (at === null) throw new Error("__errno_location() returned NULL");
      asyncLib = Deno.dlopen("libc.so.6", ASYNC_SYMBOLS).symbols;
      errnoView = new Deno.UnsafePointerView(at);
      lib = sync;
    } catch (err) {
      throw new PeerCredUnavailableError(`libc.so.6: ${(err as Error).message}`, { cause: err });
    }
  }
  return { sync: lib, async: asyncLib! };
}

/** Whether this platform has the kernel peer credentials this module reads (Linux). */
export function peerCredSupported(): boolean {
  return Deno.build.os === "linux" &&
    (Deno.build.arch === "x86_64" || Deno.build.arch === "aarch64");
}

/** The failed call's error, with the system's text. */
function sysError(action: string): Error {
  const err = errnoView!.getInt32();
  const text = lib!.strerror(err);
  const why = text === null ? `errno ${err}` : Deno.UnsafePointerView.getCString(text);
  const message = `${action}: ${why}`;
  if (err === 98) return new Deno.errors.AddrInUse(message); // EADDRINUSE
  if (err === 13 || err === 1) return new Deno.errors.PermissionDenied(message);
  if (err === 2) return new Deno.errors.NotFound(message);
  return new Error(message);
}

/** Who is at the other end of a connection, as the kernel recorded it at `connect()`. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * Reads `SO_PEERCRED` of a connected Unix socket.
 *
 * @throws {Error} when the call fails.
 */
export function peerCredOf(fd: number): PeerCred {
  const { sync } = libc();
  const cred = new Uint8Array(12);
  const len = new Uint32Array([cred.length]);
  if (sync.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, new Uint8Array(len.buffer)) !== 0) {
    throw sysError("getsockopt(SO_PEERCRED)");
  }
  if (len[0] !== cred.length) throw new Error(`getsockopt(SO_PEERCRED): ${len[0]} bytes`);
  const v = new DataView(cred.buffer);
  return { pid: v.getInt32(0, true), uid: v.getUint32(4, true), gid: v.getUint32(8, true) };
}

/** The inode of `fd` (to tell later whether the descriptor still names the same socket). */
function inodeOf(fd: number): bigint | null {
  const st = new Uint8Array(STAT_SIZE);
  if (libc().sync.fstat(fd, st) !== 0) return null;
  // st_ino is the second 64-bit field on both x86_64 and aarch64.
  return new DataView(st.buffer).getBigUint64(8, true);
}

/** One accepted connection with its peer's credentials. */
export class PeerConn {
  /** The peer as the kernel saw it at `connect()`. */
  readonly peer: PeerCred;
  /** Bytes from the client. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the client. */
  readonly writable: WritableStream<Uint8Array>;
  readonly #fd: number;
  readonly #ino: bigint | null;
  readonly #socket: net.Socket;
  #closed = false;

  /** Wraps the accepted descriptor `fd` (this object owns it from now on). */
  constructor(fd: number, peer: PeerCred) {
    this.#fd = fd;
    this.#ino = inodeOf(fd);
    this.peer = peer;
    const socket = new net.Socket({ fd, readable: true, writable: true });
    this.#socket = socket;
    socket.on("close", () => this.#release());
    socket.on("error", () => {/* reported through the streams */});
    socket.pause();
    let ended = false;
    this.readable = new ReadableStream<Uint8Array>({
      start(controller) {
        socket.on("data", (chunk: Uint8Array | string) => {
          if (ended) return;
          controller.enqueue(
            typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk),
          );
          if ((controller.desiredSize ?? 0) <= 0) socket.pause();
        });
        const finish = () => {
          if (ended) return;
          ended = true;
          try {
            controller.close();
          } catch { /* cancelled */ }
        };
        socket.on("end", finish);
        socket.on("close", finish);
      },
      pull() {
        socket.resume();
      },
      cancel() {
        ended = true;
        socket.pause();
      },
    }, { highWaterMark: 4 });
    this.writable = new WritableStream<Uint8Array>({
      write(chunk) {
        return new Promise<void>((resolve, reject) => {
          if (socket.destroyed) return reject(new Deno.errors.BrokenPipe("connection closed"));
          socket.write(chunk, (err) => err ? reject(err) : resolve());
        });
      },
      close() {
        return new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.end(() => resolve());
        });
      },
      abort() {
        socket.destroy();
      },
    });
  }

  /** Closes the connection (the descriptor is released once the socket has let go of it). */
  close(): void {
    this.#socket.destroy();
  }

  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Close the descriptor only if it still names our socket: a runtime that closed it already
    // (and let the number be reused) must not have us close someone else's file.
    if (this.#ino !== null && inodeOf(this.#fd) === this.#ino) libc().sync.close(this.#fd);
  }
}

/**
 * A listening Unix socket whose connections carry the peer's kernel credentials.
 *
 * @example
 * ```ts ignore
 * import { PeerCredListener } from "./peercred.ts";
 * const l = PeerCredListener.listen("/run/kconnect/kconnect.sock");
 * const conn = await l.accept();
 * console.log(conn?.peer.uid);
 * l.close();
 * ```
 */
export class PeerCredListener {
  /** The socket's path. */
  readonly path: string;
  readonly #fd: number;
  #closed = false;
  #fdClosed = false;
  #accepting: Promise<number> | null = null;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /**
   * Creates, binds and listens on `path` (which must not exist).
   *
   * @throws {Error} when the path is too long or a call fails (`Deno.errors.AddrInUse` when it
   *   exists).
   */
  static listen(path: string, backlog = 64): PeerCredListener {
    const { sync } = libc();
    const name = new TextEncoder().encode(path);
    if (name.length === 0 || name.length >= SOCKADDR_UN_SIZE - 2 || name.includes(0)) {
      throw new RangeError(
        `Socket path too long for a Unix socket (${name.length} bytes): ${path}`,
      );
    }
    const addr = new Uint8Array(SOCKADDR_UN_SIZE);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    addr.set(name, 2);
    const fd = sync.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw sysError("socket(AF_UNIX)");
    if (sync.bind(fd, addr, 2 + name.length + 1) !== 0) {
      const err = sysError(`bind(${path})`);
      sync.close(fd);
      throw err;
    }
    if (sync.listen(fd, backlog) !== 0) {
      const err = sysError(`listen(${path})`);
      sync.close(fd);
      throw err;
    }
    return new PeerCredListener(path, fd);
  }

  /**
   * Waits for the next connection; null once the listener is closed. Connections whose
   * credentials cannot be read are closed and skipped.
   */
  async accept(): Promise<PeerConn | null> {
    const { sync, async } = libc();
    let failures = 0;
    while (!this.#closed) {
      this.#accepting = async.accept4(this.#fd, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
      const fd = await this.#accepting;
      this.#accepting = null;
      if (this.#closed) {
        if (fd >= 0) sync.close(fd);
        break;
      }
      if (fd < 0) {
        // errno was set on the worker thread and cannot be read here: EINTR, ECONNABORTED,
        // EMFILE… Wait a little (a full fd table would otherwise spin) and try again.
        if (++failures > 1000) throw new Error(`accept(${this.path}) keeps failing`);
        await new Promise((r) => setTimeout(r, Math.min(100, failures * 5)));
        continue;
      }
      failures = 0;
      let peer: PeerCred;
      try {
        peer = peerCredOf(fd);
      } catch {
        sync.close(fd);
        continue;
      }
      return new PeerConn(fd, peer);
    }
    this.#closeFd();
    return null;
  }

  #closeFd(): void {
    if (this.#fdClosed) return;
    this.#fdClosed = true;
    libc().sync.close(this.#fd);
  }

  /** Stops listening (a pending {@linkcode accept} returns null). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { sync } = libc();
    // shutdown() wakes an accept() blocked on the worker thread; the descriptor is closed once it
    // has returned, so its number cannot be reused under the pending call.
    sync.shutdown(this.#fd, SHUT_RDWR);
    if (this.#accepting === null) this.#closeFd();
  }
}
