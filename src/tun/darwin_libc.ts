/**
 * The libSystem calls the macOS utun driver (`darwin.ts`) needs, bound with `Deno.dlopen`, the
 * Darwin constants and errno values, and pure builders for the structs it passes to the kernel
 * (`struct ctl_info`, `struct sockaddr_ctl`, the utun packet header).
 *
 * The library is opened on first use ({@linkcode darwinLibc}), so importing this module needs no
 * `--allow-ffi` and works on every OS; `deno check` covers it on Linux. Layouts and numbers are
 * those of macOS on arm64 and x86_64 (LP64, little-endian, identical on both), from
 * `../shared/platform-notes.md` §B: XNU `sys/kern_control.h`, `sys/sys_domain.h`,
 * `net/if_utun.h`, `sys/errno.h`, checked there against golang/sys `ztypes_darwin_*.go`.
 *
 * **Variadic calls.** `ioctl(int, unsigned long, ...)` and `fcntl(int, int, ...)` are variadic.
 * On Apple arm64 a variadic argument goes on the stack, where a plain 3-parameter FFI call never
 * puts it. Both are therefore declared with 9 fixed parameters and the real argument is passed
 * twice, as the 3rd (register x2 / %rdx: where x86_64 and Linux look) and the 9th (the first
 * stack slot, `[sp]`: where Apple arm64's `va_arg` looks), with 8-byte types only in between, as
 * Go's darwin/arm64 runtime does for every libc `ioctl`/`fcntl` (notes §B, "The variadic
 * problem"). Use {@linkcode ioctlPtr} and {@linkcode fcntlInt}, which fill the placeholders.
 *
 * @module
 */
import { errnoErrorOf } from "./checks.ts";

/** The libSystem symbols; `poll` runs on a worker thread (`nonblocking`), the rest on the caller's. */
export const DARWIN_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** `connect(int, const struct sockaddr *, socklen_t)`. */
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** `getsockopt(int, int level, int name, void *value, socklen_t *len)`. */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /** `recv(int, void *, size_t, int flags)`: the utun read, with `MSG_DONTWAIT`. */
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  /** `send(int, const void *, size_t, int flags)`: the utun write, with `MSG_DONTWAIT`. */
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  /** `write(int, const void *, size_t)`: only for the close wake-up pipe. */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** `pipe(int[2])`: the close wake-up (macOS has no eventfd). */
  pipe: { parameters: ["buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  /** `fcntl(fd, cmd, arg)` in the 9-parameter form: `arg` as the 3rd and the 9th. */
  fcntl: {
    parameters: ["i32", "i32", "u64", "u64", "u64", "u64", "u64", "u64", "u64"],
    result: "i32",
  },
  /** `ioctl(fd, request, ptr)` in the 9-parameter form: `ptr` as the 3rd and the 9th. */
  ioctl: {
    parameters: ["i32", "u64", "buffer", "u64", "u64", "u64", "u64", "u64", "buffer"],
    result: "i32",
  },
  /** The address of the calling thread's errno. */
  __error: { parameters: [], result: "pointer" },
  /** `poll(struct pollfd *, nfds_t (unsigned int on Darwin), int timeout)`. */
  poll: { parameters: ["buffer", "u32", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound symbols: the real ones from libSystem, or a test's fake of the same type. */
export type DarwinLibc = Deno.DynamicLibrary<typeof DARWIN_SYMBOLS>["symbols"];

/** The library that holds every symbol above (libc, libsystem_kernel, …) on macOS. */
export const LIBSYSTEM_PATH = "/usr/lib/libSystem.B.dylib";

let lib: DarwinLibc | undefined;

/**
 * Returns the libSystem binding, opening it on first use.
 *
 * @throws {Error} On any OS but macOS, or an architecture other than arm64 and x86_64.
 *
 * @example
 * ```ts ignore
 * import { darwinLibc } from "./darwin_libc.ts";
 * const c = darwinLibc();
 * ```
 */
export function darwinLibc(): DarwinLibc {
  if (lib === undefined) {
    if (Deno.build.os !== "darwin") {
      throw new Error(`libSystem binding: only macOS is supported, not ${Deno.build.os}`);
    }
    if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
      throw new Error(`libSystem binding: unsupported architecture ${Deno.build.arch}`);
    }
    lib = Deno.dlopen(LIBSYSTEM_PATH, DARWIN_SYMBOLS).symbols;
  }
  return lib;
}

/**
 * `ioctl(fd, request, arg)` through the 9-parameter declaration: `arg` goes as the 3rd and the
 * 9th argument, zeros in between.
 */
export function ioctlPtr(c: DarwinLibc, fd: number, request: number, arg: Uint8Array): number {
  return c.ioctl(fd, BigInt(request), arg, 0n, 0n, 0n, 0n, 0n, arg);
}

/** `fcntl(fd, cmd, value)` through the 9-parameter declaration (see {@linkcode ioctlPtr}). */
export function fcntlInt(c: DarwinLibc, fd: number, cmd: number, value: number): number {
  const v = BigInt(value);
  return c.fcntl(fd, cmd, v, 0n, 0n, 0n, 0n, 0n, v);
}

/**
 * Returns a reader of the calling thread's errno. `__error()` is asked once: errno lives at a
 * fixed address per thread, and every synchronous call runs on this isolate's thread, so reading
 * it after a failed call runs no other native code that could overwrite it.
 */
export function errnoReader(c: DarwinLibc): () => number {
  const location = c.__error();
  if (location === null) throw new Error("libSystem binding: __error() returned NULL");
  const view = new Deno.UnsafePointerView(location);
  return () => view.getInt32();
}

// sys/socket.h, sys/sys_domain.h, sys/kern_control.h, net/if_utun.h
/** `PF_SYSTEM` (= `AF_SYSTEM`). */
export const PF_SYSTEM = 32;
/** `AF_SYSTEM`, the `sc_family` of a `sockaddr_ctl`. */
export const AF_SYSTEM = 32;
/** `AF_SYS_CONTROL`, the `ss_sysaddr` of a `sockaddr_ctl`. */
export const AF_SYS_CONTROL = 2;
/** `SOCK_DGRAM`. */
export const SOCK_DGRAM = 2;
/** `SYSPROTO_CONTROL`: the protocol of the control socket, and the getsockopt level. */
export const SYSPROTO_CONTROL = 2;
/** `UTUN_OPT_IFNAME`: getsockopt name of the interface's name (`utunN`). */
export const UTUN_OPT_IFNAME = 2;
/** The kernel control that makes utun interfaces. */
export const UTUN_CONTROL_NAME = "com.apple.net.utun_control";
/** `MAX_KCTL_NAME`: size of `ctl_info.ctl_name`, NUL included. */
export const MAX_KCTL_NAME = 96;
/** `sizeof(struct ctl_info)`. */
export const CTL_INFO_SIZE = 100;
/** `sizeof(struct sockaddr_ctl)`. */
export const SOCKADDR_CTL_SIZE = 32;
/** `IFNAMSIZ`, NUL included. */
export const IFNAMSIZ = 16;
/** `AF_INET` on Darwin: the utun header of an IPv4 packet. */
export const AF_INET = 2;
/** `AF_INET6` on Darwin (30, not Linux's 10): the utun header of an IPv6 packet. */
export const AF_INET6 = 30;
/** Bytes of address-family header in front of every utun packet. */
export const UTUN_HEADER_SIZE = 4;
/** `MSG_DONTWAIT` on Darwin (0x80; Linux's is 0x40). */
export const MSG_DONTWAIT = 0x80;
/** `POLLIN`. */
export const POLLIN = 0x1;
/** `F_SETFD`. */
export const F_SETFD = 2;
/** `FD_CLOEXEC`. */
export const FD_CLOEXEC = 1;

/** ioctl direction bits of `sys/ioccom.h`. */
export const IOC_VOID = 0x20000000;
/** `IOC_OUT`: the kernel writes the argument. */
export const IOC_OUT = 0x40000000;
/** `IOC_IN`: the kernel reads the argument. */
export const IOC_IN = 0x80000000;
/** `IOC_INOUT`. */
export const IOC_INOUT = IOC_IN | IOC_OUT;
/** `IOCPARM_MASK`: parameter lengths are 13 bits. */
export const IOCPARM_MASK = 0x1fff;

/**
 * `_IOC(inout, group, num, len)` of `sys/ioccom.h`, as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * import { CTL_INFO_SIZE, ioc, IOC_INOUT } from "./darwin_libc.ts";
 * if (ioc(IOC_INOUT, "N", 3, CTL_INFO_SIZE) !== 0xc0644e03) throw new Error();
 * ```
 */
export function ioc(inout: number, group: string, num: number, len: number): number {
  return (inout | ((len & IOCPARM_MASK) << 16) | (group.charCodeAt(0) << 8) | num) >>> 0;
}

/** `CTLIOCGINFO` = `_IOWR('N', 3, struct ctl_info)`. */
export const CTLIOCGINFO = 0xc0644e03;

/** Darwin errno values used here, by name (`sys/errno.h`; several differ from Linux's). */
export const DarwinErrno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
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
  EPIPE: 32,
  EAGAIN: 35,
  EMSGSIZE: 40,
  EPROTONOSUPPORT: 43,
  ENOTSUP: 45,
  EAFNOSUPPORT: 47,
  EADDRINUSE: 48,
  EADDRNOTAVAIL: 49,
  ENETDOWN: 50,
  ENOBUFS: 55,
  ENOTCONN: 57,
  EHOSTUNREACH: 65,
  EOPNOTSUPP: 102,
} as const;

/** The text `strerror` gives for each, so messages need no native call (and tests none). */
const ERRNO_TEXT: Record<number, string> = {
  1: "Operation not permitted",
  2: "No such file or directory",
  4: "Interrupted system call",
  5: "Input/output error",
  6: "Device not configured",
  9: "Bad file descriptor",
  12: "Cannot allocate memory",
  13: "Permission denied",
  14: "Bad address",
  16: "Resource busy",
  17: "File exists",
  19: "Operation not supported by device",
  22: "Invalid argument",
  23: "Too many open files in system",
  24: "Too many open files",
  25: "Inappropriate ioctl for device",
  28: "No space left on device",
  32: "Broken pipe",
  35: "Resource temporarily unavailable",
  40: "Message too long",
  43: "Protocol not supported",
  45: "Operation not supported",
  47: "Address family not supported by protocol family",
  48: "Address already in use",
  49: "Can't assign requested address",
  50: "Network is down",
  55: "No buffer space available",
  57: "Socket is not connected",
  65: "No route to host",
  102: "Operation not supported on socket",
};

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(DarwinErrno).map(([name, value]) => [value, name]),
);

/** An error from a failed call: a `Deno.errors` class by meaning, with the Darwin errno. */
export interface DarwinErrnoError extends Error {
  /** The symbolic errno, e.g. `"EPERM"`, or `"E<number>"` when not known here. */
  code: string;
  /** The numeric (Darwin) errno. */
  errno: number;
}

/**
 * Builds the error for a failed call, e.g. `connect to utun control: Operation not permitted
 * (EPERM) — run as root`.
 *
 * @param action What was being done.
 * @param err The Darwin errno.
 * @param hint What the user can do about it, appended after a dash.
 *
 * @example
 * ```ts
 * import { DarwinErrno, darwinErrnoError } from "./darwin_libc.ts";
 * const e = darwinErrnoError("connect", DarwinErrno.EPERM, "run as root");
 * if (!(e instanceof Deno.errors.PermissionDenied) || e.code !== "EPERM") throw new Error();
 * ```
 */
export function darwinErrnoError(action: string, err: number, hint?: string): DarwinErrnoError {
  const code = ERRNO_NAMES.get(err) ?? `E${err}`;
  const text = ERRNO_TEXT[err] ?? `Unknown error: ${err}`;
  return errnoErrorOf(`${action}: ${text} (${code})${hint ? ` — ${hint}` : ""}`, code, err);
}

/**
 * Builds a `struct ctl_info` for `CTLIOCGINFO`: `ctl_id` (u32, 0: the kernel fills it in) at 0,
 * `ctl_name[96]` at 4, NUL-padded. 100 bytes.
 *
 * @example
 * ```ts
 * import { ctlInfo } from "./darwin_libc.ts";
 * const b = ctlInfo("com.apple.net.utun_control");
 * if (b.length !== 100 || b[4] !== 0x63 || b[30] !== 0) throw new Error();
 * ```
 */
export function ctlInfo(name: string = UTUN_CONTROL_NAME): Uint8Array {
  const encoded = new TextEncoder().encode(name);
  if (encoded.length >= MAX_KCTL_NAME) {
    throw new RangeError(`Control name "${name}" is ${encoded.length} bytes; at most 95 allowed`);
  }
  const bytes = new Uint8Array(CTL_INFO_SIZE);
  bytes.set(encoded, 4);
  return bytes;
}

/** The `ctl_id` the kernel wrote into a `struct ctl_info` (host order, little-endian). */
export function ctlInfoId(info: Uint8Array): number {
  return new DataView(info.buffer, info.byteOffset, info.byteLength).getUint32(0, true);
}

/**
 * Builds a `struct sockaddr_ctl` for `connect`: `sc_len` 32, `sc_family` `AF_SYSTEM`,
 * `ss_sysaddr` `AF_SYS_CONTROL` (u16), `sc_id` (u32), `sc_unit` (u32: N + 1 for `utunN`, 0 for
 * the kernel's choice), five reserved u32. Host order (little-endian). 32 bytes.
 *
 * @example
 * ```ts
 * import { sockaddrCtl } from "./darwin_libc.ts";
 * const b = sockaddrCtl(7, 0);
 * if (b.length !== 32 || b[0] !== 32 || b[1] !== 32 || b[2] !== 2 || b[4] !== 7) throw new Error();
 * ```
 */
export function sockaddrCtl(ctlId: number, unit: number): Uint8Array {
  const bytes = new Uint8Array(SOCKADDR_CTL_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, SOCKADDR_CTL_SIZE);
  view.setUint8(1, AF_SYSTEM);
  view.setUint16(2, AF_SYS_CONTROL, true);
  view.setUint32(4, ctlId, true);
  view.setUint32(8, unit, true);
  return bytes;
}

/**
 * The utun header's address family for an IP packet, from its version nibble: `AF_INET` (2) for
 * IPv4, `AF_INET6` (30) for IPv6, or 0 for anything else (or an empty packet).
 */
export function utunFamily(packet: Uint8Array, at = 0): number {
  if (packet.length <= at) return 0;
  const version = packet[at] >> 4;
  return version === 4 ? AF_INET : version === 6 ? AF_INET6 : 0;
}

/**
 * Writes the 4-byte utun header (the address family, big-endian) at `buf[at, at + 4)`.
 *
 * @example
 * ```ts
 * import { AF_INET6, writeUtunHeader } from "./darwin_libc.ts";
 * const b = new Uint8Array(4).fill(9);
 * writeUtunHeader(b, 0, AF_INET6);
 * if (b.join() !== "0,0,0,30") throw new Error();
 * ```
 */
export function writeUtunHeader(buf: Uint8Array, at: number, family: number): void {
  buf[at] = family >>> 24;
  buf[at + 1] = (family >>> 16) & 0xff;
  buf[at + 2] = (family >>> 8) & 0xff;
  buf[at + 3] = family & 0xff;
}

/** Reads the address family of the utun header at `buf[at, at + 4)`. */
export function readUtunHeader(buf: Uint8Array, at = 0): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/** Decodes a NUL-terminated name of at most `length` bytes. */
export function cName(bytes: Uint8Array, length = bytes.length): string {
  const slice = bytes.subarray(0, Math.min(length, bytes.length));
  const end = slice.indexOf(0);
  return new TextDecoder().decode(end < 0 ? slice : slice.subarray(0, end));
}
