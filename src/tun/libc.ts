/**
 * The few libc calls the Linux TUN driver needs, bound with `Deno.dlopen`, plus errno handling
 * and typed builders for `struct ifreq` and `struct in6_ifreq`.
 *
 * The library is opened on first use, so importing this module needs no `--allow-ffi` and works
 * on every OS. Constants are those of Linux on x86_64 and aarch64 (the generic ABI).
 *
 * @module
 */
import { errnoErrorOf } from "./checks.ts";

const SYNC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** `ioctl` whose argument is a plain integer, not a pointer (TUNSETOFFLOAD). */
  ioctlValue: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const ASYNC_SYMBOLS = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The synchronous libc symbols: each call runs on the JavaScript thread. */
export type LibcSync = Deno.DynamicLibrary<typeof SYNC_SYMBOLS>["symbols"];
/** The asynchronous libc symbols: each call runs on a worker thread and returns a promise. */
export type LibcAsync = Deno.DynamicLibrary<typeof ASYNC_SYMBOLS>["symbols"];

let syncLib: LibcSync | undefined;
let asyncLib: LibcAsync | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * Returns the synchronous libc binding, opening `libc.so.6` on first use.
 *
 * @example
 * ```ts ignore
 * import { libc } from "./libc.ts";
 * const fd = libc().eventfd(0, 0);
 * libc().close(fd);
 * ```
 */
export function libc(): LibcSync {
  if (syncLib === undefined) {
    if (Deno.build.os !== "linux") {
      throw new Error(`libc binding: only Linux is supported, not ${Deno.build.os}`);
    }
    if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
      throw new Error(`libc binding: unsupported architecture ${Deno.build.arch}`);
    }
    syncLib = Deno.dlopen("libc.so.6", SYNC_SYMBOLS).symbols;
    // errno lives at a fixed address per thread, and synchronous calls run on this isolate's
    // thread: look it up once, so reading it after a failed call runs no other native code
    // that could overwrite it.
    const location = syncLib.__errno_location();
    if (location === null) throw new Error("libc binding: __errno_location() returned NULL");
    errnoView = new Deno.UnsafePointerView(location);
  }
  return syncLib;
}

/**
 * Returns the asynchronous (`nonblocking: true`) libc binding: only `poll`. Its errno is set on
 * a worker thread and cannot be read back, so callers treat -1 as "try again".
 */
export function libcAsync(): LibcAsync {
  if (asyncLib === undefined) {
    libc(); // same platform checks
    asyncLib = Deno.dlopen("libc.so.6", ASYNC_SYMBOLS).symbols;
  }
  return asyncLib;
}

// open(2) / fcntl(2)
/** `O_RDWR`. */
export const O_RDWR = 0o2;
/** `O_NONBLOCK`. */
export const O_NONBLOCK = 0o4000;
/** `O_CLOEXEC`. */
export const O_CLOEXEC = 0o2000000;
/** `F_GETFL`. */
export const F_GETFL = 3;
/** `F_SETFL`. */
export const F_SETFL = 4;
// socket(2)
/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;
/** `SOCK_DGRAM`. */
export const SOCK_DGRAM = 2;
/** `SOCK_CLOEXEC`. */
export const SOCK_CLOEXEC = 0o2000000;
/** `EFD_CLOEXEC | EFD_NONBLOCK` for eventfd(2). */
export const EFD_CLOEXEC_NONBLOCK = 0o2000000 | 0o4000;
// poll(2)
/** `POLLIN`. */
export const POLLIN = 0x1;

/** errno values used by the driver, by name. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  EBADFD: 77,
  EOPNOTSUPP: 95,
} as const;

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(Errno).map(([name, value]) => [value, name]),
);

/**
 * Returns the calling thread's errno; call it right after the failing synchronous call (the
 * binding must have been loaded, which any such call did).
 */
export function errno(): number {
  return errnoView!.getInt32();
}

/**
 * Makes a call that failed (returned a negative number) once more, so that `errno` is read
 * right after a call with nothing in between: the runtime can run one-time native work on this
 * thread between two FFI calls (seen here: a TSC calibration that fails to open
 * `/sys/devices/system/cpu/cpu0/tsc_freq_khz`, leaving ENOENT), which would make the errno of
 * the first failure wrong. Only for calls that are harmless to repeat after a failure.
 *
 * @param call The call; returns its result (an fd, 0 or -1).
 * @returns The first result when not negative, else the second.
 */
export function again(call: () => number): number {
  const first = call();
  return first >= 0 ? first : call();
}

/** An error from a failed system call: a `Deno.errors` class by meaning, with the errno. */
export interface ErrnoError extends Error {
  /** The symbolic errno, e.g. `"EPERM"`, or `"E<number>"` when not known here. */
  code: string;
  /** The numeric errno. */
  errno: number;
}

/**
 * Builds the error for a failed call: the message names the action, the system's text, the
 * errno name and an optional hint, e.g. `TUNSETIFF on /dev/net/tun: Operation not permitted
 * (EPERM) — run as root or grant CAP_NET_ADMIN`.
 *
 * @param action What was being done, e.g. `"TUNSETIFF on /dev/net/tun"`.
 * @param err The errno; read with {@linkcode errno} by default.
 * @param hint What the user can do about it, appended after a dash.
 */
export function errnoError(action: string, err: number = errno(), hint?: string): ErrnoError {
  const code = ERRNO_NAMES.get(err) ?? `E${err}`;
  const ptr = libc().strerror(err);
  const text = ptr === null ? "Unknown error" : Deno.UnsafePointerView.getCString(ptr);
  return errnoErrorOf(`${action}: ${text} (${code})${hint ? ` — ${hint}` : ""}`, code, err);
}

/** Size of `struct ifreq` on 64-bit Linux: a 16-byte name and a 24-byte union. */
export const IFREQ_SIZE = 40;
/** `IFNAMSIZ`, including the terminating NUL. */
export const IFNAMSIZ = 16;

/**
 * A `struct ifreq` in a byte buffer, with accessors for the union members the driver uses.
 *
 * @example
 * ```ts
 * import { Ifreq } from "./libc.ts";
 * const req = new Ifreq("tun0");
 * req.mtu = 1400;
 * if (req.name !== "tun0" || req.bytes[16] !== 0x78 || req.mtu !== 1400) throw new Error();
 * ```
 */
export class Ifreq {
  /** The 40 bytes passed to `ioctl`. */
  readonly bytes: Uint8Array = new Uint8Array(IFREQ_SIZE);
  #view = new DataView(this.bytes.buffer);

  /** Makes a zeroed request for interface `name` (may be empty: the kernel picks one). */
  constructor(name = "") {
    this.name = name;
  }

  /** `ifr_name`: at most 15 bytes of UTF-8, NUL-terminated. */
  get name(): string {
    const end = this.bytes.indexOf(0);
    return new TextDecoder().decode(this.bytes.subarray(0, end < 0 ? IFNAMSIZ : end));
  }
  set name(value: string) {
    const encoded = new TextEncoder().encode(value);
    if (encoded.length >= IFNAMSIZ) {
      throw new RangeError(
        `Interface name "${value}" is ${encoded.length} bytes; at most ${IFNAMSIZ - 1} allowed`,
      );
    }
    this.bytes.fill(0, 0, IFNAMSIZ);
    this.bytes.set(encoded);
  }

  /** `ifr_flags` (a 16-bit short, also used by `TUNSETIFF`). */
  get flags(): number {
    return this.#view.getUint16(16, true);
  }
  set flags(value: number) {
    this.#view.setUint16(16, value, true);
  }

  /** `ifr_mtu`. */
  get mtu(): number {
    return this.#view.getInt32(16, true);
  }
  set mtu(value: number) {
    this.#view.setInt32(16, value, true);
  }

  /** `ifr_ifindex`. */
  get ifindex(): number {
    return this.#view.getInt32(16, true);
  }

  /** Sets `ifr_addr` to a `struct sockaddr_in` with port 0 (for SIOCSIFADDR / SIOCSIFNETMASK). */
  setInet4(address: Uint8Array): void {
    if (address.length !== 4) throw new RangeError("sockaddr_in needs a 4-byte address");
    this.bytes.fill(0, 16);
    this.#view.setUint16(16, AF_INET, true);
    this.bytes.set(address, 20);
  }
}

/** Size of `struct in6_ifreq`: `in6_addr`, `u32 prefixlen`, `int ifindex`. */
export const IN6_IFREQ_SIZE = 24;

/**
 * Builds a `struct in6_ifreq` for `SIOCSIFADDR` on an `AF_INET6` socket.
 *
 * @example
 * ```ts
 * import { in6Ifreq } from "./libc.ts";
 * const b = in6Ifreq(new Uint8Array(16).fill(1), 64, 7);
 * if (b.length !== 24 || b[16] !== 64 || b[20] !== 7) throw new Error();
 * ```
 */
export function in6Ifreq(address: Uint8Array, prefixLength: number, ifindex: number): Uint8Array {
  if (address.length !== 16) throw new RangeError("in6_ifreq needs a 16-byte address");
  const bytes = new Uint8Array(IN6_IFREQ_SIZE);
  const view = new DataView(bytes.buffer);
  bytes.set(address, 0);
  view.setUint32(16, prefixLength, true);
  view.setInt32(20, ifindex, true);
  return bytes;
}

/** Returns a NUL-terminated C string for a "buffer" parameter. */
export function cString(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}
