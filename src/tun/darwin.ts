/**
 * The macOS TUN driver: a utun interface, through `Deno.dlopen` on libSystem.
 *
 * Open (notes §B): `socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL)`, close-on-exec with
 * `fcntl(F_SETFD, FD_CLOEXEC)` (macOS has no `SOCK_CLOEXEC`), `ioctl(CTLIOCGINFO)` for the id of
 * `com.apple.net.utun_control`, `connect` with `sc_unit` 0 (the kernel picks the unit; N + 1 when
 * the caller asked for `utunN`), `getsockopt(UTUN_OPT_IFNAME)` for the name it got, a pipe for
 * the close wake-up (close-on-exec too), then addresses, MTU, up and the addresses' prefix routes
 * with ifconfig and route (`darwin_config.ts`). Closing the descriptor deletes the interface with
 * its addresses and routes, so a crash leaves nothing behind.
 *
 * Data path, shaped like the Linux driver's: `read` takes packets with synchronous
 * `recv(MSG_DONTWAIT)` calls until `EAGAIN` (35 on Darwin), and only then waits in one
 * `nonblocking: true` FFI `poll` on the utun and the pipe's read end; `write` is one synchronous
 * `send(MSG_DONTWAIT)` per packet.
 *
 * **The utun header and `offset`.** Every utun packet carries a 4-byte big-endian address family
 * in front (`00 00 00 02` IPv4, `00 00 00 1e` IPv6). When the caller leaves at least 4 bytes of
 * headroom (`offset >= 4`, {@linkcode UTUN_HEADROOM}), the header lives in the 4 bytes before
 * `offset` and no packet is copied: `read` lets the kernel write it at `bufs[i][offset - 4,
 * offset)`, `write` writes it there before sending. Those 4 bytes are the driver's: their old
 * content is overwritten. The flow engine reads and writes at `offset` `TUN_HEADROOM` (4,
 * `device.ts`), and builds the packets it makes up after that much room, so none of its packets
 * is copied here. With `offset < 4` the driver still works, through one copy per packet in a
 * scratch buffer of its own.
 *
 * @module
 */

import type { TunDevice, TunOptions, TunStats } from "./device.ts";
import { configureUtun, parseDarwinConfig, runCommand, utunUnit } from "./darwin_config.ts";
import type { CommandRunner } from "./darwin_config.ts";
import {
  cName,
  ctlInfo,
  ctlInfoId,
  CTLIOCGINFO,
  DarwinErrno,
  darwinErrnoError,
  darwinLibc,
  errnoReader,
  F_SETFD,
  fcntlInt,
  FD_CLOEXEC,
  IFNAMSIZ,
  ioctlPtr,
  MSG_DONTWAIT,
  PF_SYSTEM,
  POLLIN,
  SOCK_DGRAM,
  SOCKADDR_CTL_SIZE,
  sockaddrCtl,
  SYSPROTO_CONTROL,
  UTUN_HEADER_SIZE,
  UTUN_OPT_IFNAME,
  utunFamily,
  writeUtunHeader,
} from "./darwin_libc.ts";
import type { DarwinLibc } from "./darwin_libc.ts";

/**
 * Headroom in front of `offset` that lets the driver skip the copy (the utun header's size); the
 * engine's `TUN_HEADROOM` (`device.ts`) is at least this.
 */
export const UTUN_HEADROOM = UTUN_HEADER_SIZE;

/**
 * How long one `poll` waits before the read loop looks again. Close wakes it at once (its own
 * fd in the poll set), so this is only a backstop; every wake-up costs a thread hop and a turn
 * of the event loop, so a connected, idle laptop should see few (200 ms here cost a third of the
 * client's idle CPU: 0.6 against 0.4 % of a core, `bench/vs_portforward.ts`).
 */
const POLL_TIMEOUT_MS = 5000;

const ROOT_HINT = "run as root (sudo) to create a utun interface";

/** What the driver runs on: the native symbols and the command runner; tests pass fakes. */
export interface DarwinSystem {
  /** The libSystem symbols. Default: {@linkcode darwinLibc}() (macOS only). */
  libc?: DarwinLibc;
  /** Runs ifconfig and route. Default: `Deno.Command`. */
  run?: CommandRunner;
}

/**
 * Makes a failed call once more, so errno is read right after a call with nothing in between
 * (the runtime may run one-time native work on this thread between two FFI calls; seen on
 * Linux, see `again` in `libc.ts`). Only for calls that are harmless to repeat after a failure.
 */
function again(call: () => number): number {
  const first = call();
  return first >= 0 ? first : call();
}

/** A utun device opened by {@linkcode openDarwinTun}. */
export class DarwinTunDevice implements TunDevice {
  /** The interface name the kernel gave the device (`utunN`). */
  readonly name: string;
  /** The MTU the device was configured with. */
  readonly mtu: number;
  /** Counters; a live object, updated in place. */
  readonly stats: TunStats = {
    readPackets: 0,
    readBytes: 0,
    writtenPackets: 0,
    writtenBytes: 0,
    writeErrors: 0,
  };
  /** Packets `read` took from the kernel but dropped: shorter than the header, or too long. */
  readDrops = 0;
  #c: DarwinLibc;
  #errno: () => number;
  #fd: number;
  #wakeRead: number;
  #wakeWrite: number;
  #closing = false;
  #closed: Promise<void> | undefined;
  #polls = new Set<Promise<number>>();
  #pollFds = new Uint8Array(16);
  /** For `offset < 4` only: header + packet, copied. */
  #readScratch: Uint8Array | undefined;
  #writeScratch: Uint8Array | undefined;

  /** Wraps open, configured descriptors; use {@linkcode openDarwinTun} instead. */
  constructor(
    c: DarwinLibc,
    errno: () => number,
    fds: { fd: number; wakeRead: number; wakeWrite: number },
    name: string,
    mtu: number,
  ) {
    this.#c = c;
    this.#errno = errno;
    this.#fd = fds.fd;
    this.#wakeRead = fds.wakeRead;
    this.#wakeWrite = fds.wakeWrite;
    this.name = name;
    this.mtu = mtu;
    const view = new DataView(this.#pollFds.buffer);
    view.setInt32(0, fds.fd, true);
    view.setInt16(4, POLLIN, true);
    view.setInt32(8, fds.wakeRead, true);
    view.setInt16(12, POLLIN, true);
  }

  /** The utun file descriptor, or -1 once closed; for diagnostics (never close it). */
  get fd(): number {
    return this.#fd;
  }

  /**
   * {@inheritDoc TunDevice.read}
   *
   * With `offset >= 4` the kernel writes the utun header into `bufs[i][offset - 4, offset)`.
   */
  async read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number> {
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RangeError(`TUN read: invalid offset ${offset}`);
    }
    for (;;) {
      if (this.#closing) return 0;
      const n = this.#burst(bufs, sizes, offset);
      if (n > 0) return n;
      await this.#waitReadable();
    }
  }

  /** Reads packets with synchronous calls until `EAGAIN` or `bufs` is full. */
  #burst(bufs: Uint8Array[], sizes: number[], offset: number): number {
    const recv = this.#c.recv;
    const fd = this.#fd;
    const stats = this.stats;
    const direct = offset >= UTUN_HEADER_SIZE;
    const scratch = direct
      ? undefined
      : (this.#readScratch ??= new Uint8Array(UTUN_HEADER_SIZE + this.mtu));
    let n = 0;
    while (n < bufs.length) {
      const target = scratch ?? bufs[n].subarray(offset - UTUN_HEADER_SIZE);
      let r = Number(recv(fd, target, BigInt(target.length), MSG_DONTWAIT));
      let e = r < 0 ? this.#errno() : 0;
      if (r < 0 && e !== DarwinErrno.EAGAIN && e !== DarwinErrno.EINTR) {
        // Confirm an unexpected errno with a second call (see `again`).
        r = Number(recv(fd, target, BigInt(target.length), MSG_DONTWAIT));
        e = r < 0 ? this.#errno() : 0;
      }
      if (r < 0) {
        if (e === DarwinErrno.EAGAIN) break;
        if (e === DarwinErrno.EINTR) continue;
        if (n > 0) break; // hand over what we have; the error comes back on the next call
        throw darwinErrnoError(`recv from utun ${this.name}`, e);
      }
      const size = r - UTUN_HEADER_SIZE;
      if (size <= 0) {
        this.readDrops++; // no packet behind the header
        continue;
      }
      if (scratch !== undefined) {
        if (bufs[n].length < offset + size) {
          this.readDrops++;
          continue;
        }
        bufs[n].set(scratch.subarray(UTUN_HEADER_SIZE, r), offset);
      }
      sizes[n] = size;
      stats.readPackets++;
      stats.readBytes += size;
      n++;
    }
    return n;
  }

  /** Waits in `poll` (worker thread) until the utun or the close pipe is readable. */
  async #waitReadable(): Promise<void> {
    const pending = this.#c.poll(this.#pollFds, 2, POLL_TIMEOUT_MS);
    this.#polls.add(pending);
    try {
      // -1 (EINTR and the like; errno is not readable from here) just means: look again.
      await pending;
    } finally {
      this.#polls.delete(pending);
    }
  }

  /**
   * {@inheritDoc TunDevice.write}
   *
   * With `offset >= 4` the utun header is written into `bufs[i][offset - 4, offset)`. A buffer
   * whose packet is not IPv4 or IPv6 (by its version nibble) is dropped and counted.
   */
  write(bufs: Uint8Array[], offset: number): number {
    const stats = this.stats;
    if (this.#closing) {
      stats.writeErrors += bufs.length;
      return 0;
    }
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RangeError(`TUN write: invalid offset ${offset}`);
    }
    const send = this.#c.send;
    const fd = this.#fd;
    const direct = offset >= UTUN_HEADER_SIZE;
    let accepted = 0;
    for (let i = 0; i < bufs.length; i++) {
      const buf = bufs[i];
      const family = utunFamily(buf, offset);
      const length = buf.length - offset;
      if (family === 0 || length > this.mtu) {
        stats.writeErrors++;
        continue;
      }
      let frame: Uint8Array;
      if (direct) {
        frame = buf.subarray(offset - UTUN_HEADER_SIZE);
        writeUtunHeader(frame, 0, family);
      } else {
        const scratch = this.#writeScratch ??= new Uint8Array(UTUN_HEADER_SIZE + this.mtu);
        writeUtunHeader(scratch, 0, family);
        scratch.set(offset === 0 ? buf : buf.subarray(offset), UTUN_HEADER_SIZE);
        frame = scratch.subarray(0, UTUN_HEADER_SIZE + length);
      }
      let r = Number(send(fd, frame, BigInt(frame.length), MSG_DONTWAIT));
      while (r < 0 && this.#errno() === DarwinErrno.EINTR) {
        r = Number(send(fd, frame, BigInt(frame.length), MSG_DONTWAIT));
      }
      if (r < 0) {
        stats.writeErrors++; // EAGAIN, ENOBUFS (queue full), EIO…: dropped like a full NIC queue
        continue;
      }
      accepted++;
      stats.writtenPackets++;
      stats.writtenBytes += r - UTUN_HEADER_SIZE;
    }
    return accepted;
  }

  /** {@inheritDoc TunDevice.close} */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    // Wake every poll at once; the byte stays unread, so a late poll returns at once too.
    this.#c.write(this.#wakeWrite, new Uint8Array([1]), 1n);
    // Close the descriptors only when no poll on a worker thread can still be using them, so
    // the kernel cannot hand their numbers to a new file under a running poll.
    while (this.#polls.size > 0) await Promise.allSettled([...this.#polls]);
    this.#c.close(this.#fd); // the utun interface, its addresses and routes go with it
    this.#c.close(this.#wakeRead);
    this.#c.close(this.#wakeWrite);
    this.#fd = -1;
    this.#wakeRead = -1;
    this.#wakeWrite = -1;
  }

  /** Same as {@linkcode DarwinTunDevice.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a utun device on macOS, configured and up. Needs root and `--allow-ffi --allow-run`.
 *
 * @param options `name`: leave it out (the kernel picks `utunN`) or ask for a `utunN`; MTU
 *   (default 1500); addresses. Read the name the kernel gave from the device's `name`.
 * @param system The symbols and the command runner; the real ones by default.
 * @returns The open device.
 * @throws {TypeError} A name that is not `utunN`, or an invalid address, before anything opens.
 * @throws {RangeError} An MTU or prefix length out of range, before anything opens.
 * @throws {Deno.errors.PermissionDenied} Without root; other `Deno.errors` by errno.
 *
 * @example
 * ```ts ignore
 * import { openDarwinTun } from "./darwin.ts";
 * await using tun = await openDarwinTun({ addresses: [{ address: "198.18.0.1", prefixLength: 29 }] });
 * const bufs = [new Uint8Array(4 + 1500)];
 * const sizes = [0];
 * const n = await tun.read(bufs, sizes, 4); // packet i at bufs[i].subarray(4, 4 + sizes[i])
 * ```
 */
export async function openDarwinTun(
  options: TunOptions = {},
  system: DarwinSystem = {},
): Promise<DarwinTunDevice> {
  const unit = utunUnit(options.name);
  const mtu = options.mtu ?? 1500;
  const addresses = parseDarwinConfig(mtu, options.addresses ?? []);
  const c = system.libc ?? darwinLibc();
  const run = system.run ?? runCommand;
  const errno = errnoReader(c);

  const fd = again(() => c.socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL));
  if (fd < 0) throw darwinErrnoError("socket(PF_SYSTEM, SYSPROTO_CONTROL)", errno());
  const opened = [fd];
  try {
    const cloexec = (f: number, what: string) => {
      if (again(() => fcntlInt(c, f, F_SETFD, FD_CLOEXEC)) < 0) {
        throw darwinErrnoError(`fcntl FD_CLOEXEC on ${what}`, errno());
      }
    };
    cloexec(fd, "the utun control socket");

    const info = ctlInfo();
    if (again(() => ioctlPtr(c, fd, CTLIOCGINFO, info)) < 0) {
      throw darwinErrnoError("ioctl CTLIOCGINFO com.apple.net.utun_control", errno());
    }
    const address = sockaddrCtl(ctlInfoId(info), unit);
    if (again(() => c.connect(fd, address, SOCKADDR_CTL_SIZE)) < 0) {
      const e = errno();
      const hint = e === DarwinErrno.EPERM || e === DarwinErrno.EACCES
        ? ROOT_HINT
        : e === DarwinErrno.EBUSY
        ? `${options.name} is in use; leave the name out to get a free utun`
        : undefined;
      throw darwinErrnoError("connect to the utun control", e, hint);
    }

    const nameBuf = new Uint8Array(IFNAMSIZ);
    const nameLen = new Uint8Array(4);
    new DataView(nameLen.buffer).setUint32(0, IFNAMSIZ, true);
    if (again(() => c.getsockopt(fd, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, nameBuf, nameLen)) < 0) {
      throw darwinErrnoError("getsockopt UTUN_OPT_IFNAME", errno());
    }
    const name = cName(nameBuf, new DataView(nameLen.buffer).getUint32(0, true));
    if (!/^utun[0-9]+$/.test(name)) {
      throw new Error(`getsockopt UTUN_OPT_IFNAME returned an unexpected name "${name}"`);
    }

    const pipeFds = new Uint8Array(8);
    if (again(() => c.pipe(pipeFds)) < 0) throw darwinErrnoError("pipe", errno());
    const pipeView = new DataView(pipeFds.buffer);
    const wakeRead = pipeView.getInt32(0, true);
    const wakeWrite = pipeView.getInt32(4, true);
    opened.push(wakeRead, wakeWrite);
    cloexec(wakeRead, "the wake-up pipe");
    cloexec(wakeWrite, "the wake-up pipe");

    await configureUtun(name, mtu, addresses, run);
    return new DarwinTunDevice(c, errno, { fd, wakeRead, wakeWrite }, name, mtu);
  } catch (error) {
    for (const f of opened) c.close(f); // closing the utun socket deletes the interface
    throw error;
  }
}
