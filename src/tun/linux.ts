/**
 * The Linux TUN driver: `/dev/net/tun` through `Deno.dlopen` on libc.
 *
 * Data path (chosen by measurement, `bench/tun_io.ts`): `read` takes packets with synchronous `read(2)`
 * calls in a burst until `EAGAIN`, and only then waits in one `nonblocking: true` FFI `poll(2)`
 * on a worker thread; `write` is a synchronous `write(2)` per packet. Neither copies a packet
 * at any `offset` (the kernel has no header in front, so the bytes before `offset` are left
 * alone). With an `offset` (the engine passes `TUN_HEADROOM`, `device.ts`), `write` makes one
 * `subarray` view per packet; `read` keeps its views of the caller's buffers while the caller
 * passes the same ones, so a read loop that reuses its buffers allocates nothing per packet.
 *
 * @module
 */

import type { TunDevice, TunOptions, TunStats } from "./device.ts";
import {
  configureInterface,
  IFF_NO_PI,
  IFF_TUN,
  IFF_VNET_HDR,
  parseConfig,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
  validateName,
} from "./_linux_config.ts";
import {
  again,
  cString,
  EFD_CLOEXEC_NONBLOCK,
  Errno,
  errno,
  errnoError,
  F_GETFL,
  F_SETFL,
  Ifreq,
  libc,
  libcAsync,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLIN,
} from "./libc.ts";

/** Size of `struct virtio_net_hdr`, the prefix of every packet in `vnetHdr` mode. */
export const VNET_HDR_SIZE = 10;

/**
 * How long one `poll` waits before the read loop looks again. Close wakes it at once (its own
 * fd in the poll set), so this is only a backstop; every wake-up costs a thread hop and a turn
 * of the event loop, so a connected, idle laptop should see few (200 ms here cost a third of the
 * client's idle CPU: 0.6 against 0.4 % of a core, `bench/vs_portforward.ts`).
 */
const POLL_TIMEOUT_MS = 5000;

const PERMISSION_HINT = "run as root or grant CAP_NET_ADMIN";

/** Options of the Linux driver: the portable ones plus Linux-only modes. */
export interface LinuxTunOptions extends TunOptions {
  /**
   * Benchmarking only: open with `IFF_VNET_HDR` and enable the `TUN_F_CSUM | TUN_F_TSO4 |
   * TUN_F_TSO6` offloads. Default false. In this mode every packet is preceded by a 10-byte
   * `struct virtio_net_hdr` placed at `offset - 10` of its buffer:
   * - `read` needs `offset >= 10`, stores the header at `bufs[i][offset-10, offset)` and the
   *   packet from `offset`; `sizes[i]` counts the packet only. The kernel may hand over TCP
   *   segments of up to 64 KiB (GSO), so buffers need `offset + 65535` bytes of room.
   * - `write` writes `bufs[i].subarray(offset - 10)`: the caller fills the header (ten zero
   *   bytes mean "a plain packet with complete checksums").
   *
   * This breaks the plain {@linkcode TunDevice} contract on purpose; the rest of kconnect does
   * not use it.
   */
  vnetHdr?: boolean;
}

/** A TUN device opened by {@linkcode openLinuxTun}. */
export class LinuxTunDevice implements TunDevice {
  /** The interface name the kernel gave the device. */
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
  /** Bytes of virtio_net_hdr in front of each packet: 0, or 10 in `vnetHdr` mode. */
  readonly headerSize: number;
  #fd: number;
  #wakeFd: number;
  #closing = false;
  #closed: Promise<void> | undefined;
  #polls = new Set<Promise<number>>();
  #pollFds = new Uint8Array(16);
  /** `#readViews[i]` is `#readBufs[i].subarray(#readStart)`, kept for the next burst. */
  #readBufs: Uint8Array[] = [];
  #readViews: Uint8Array[] = [];
  #readStart = 0;

  /** Wraps open, configured descriptors; use {@linkcode openLinuxTun} instead. */
  constructor(fd: number, wakeFd: number, name: string, mtu: number, headerSize: number) {
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.mtu = mtu;
    this.headerSize = headerSize;
    const view = new DataView(this.#pollFds.buffer);
    view.setInt32(0, fd, true);
    view.setInt16(4, POLLIN, true);
    view.setInt32(8, wakeFd, true);
    view.setInt16(12, POLLIN, true);
  }

  /** The TUN file descriptor, or -1 once closed; for diagnostics and benchmarks (never close it). */
  get fd(): number {
    return this.#fd;
  }

  /** {@inheritDoc TunDevice.read} */
  async read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number> {
    const start = offset - this.headerSize;
    if (start < 0) {
      throw new RangeError(`TUN read: offset ${offset} leaves no room for the virtio_net_hdr`);
    }
    for (;;) {
      if (this.#closing) return 0;
      const n = this.#burst(bufs, sizes, start);
      if (n > 0) return n;
      await this.#waitReadable();
    }
  }

  /** Reads packets with synchronous calls until `EAGAIN` or `bufs` is full. */
  #burst(bufs: Uint8Array[], sizes: number[], start: number): number {
    const read = libc().read;
    const fd = this.#fd;
    const header = this.headerSize;
    const stats = this.stats;
    if (start !== this.#readStart) {
      this.#readBufs = [];
      this.#readViews = [];
      this.#readStart = start;
    }
    let n = 0;
    while (n < bufs.length) {
      const buf = start === 0 ? bufs[n] : this.#readView(bufs[n], n, start);
      let r = Number(read(fd, buf, BigInt(buf.length)));
      let e = r < 0 ? errno() : 0;
      if (r < 0 && e !== Errno.EAGAIN && e !== Errno.EINTR) {
        // Confirm an unexpected errno with a second call (see `again` in libc.ts).
        r = Number(read(fd, buf, BigInt(buf.length)));
        e = r < 0 ? errno() : 0;
      }
      if (r < 0) {
        if (e === Errno.EAGAIN) break;
        if (e === Errno.EINTR) continue;
        if (n > 0) break; // hand over what we have; the error comes back on the next call
        throw errnoError(`read from TUN ${this.name}`, e);
      }
      const size = r - header;
      sizes[n] = size;
      stats.readPackets++;
      stats.readBytes += size;
      n++;
    }
    return n;
  }

  /** `b.subarray(start)`, the same view as last time when `b` is the same buffer. */
  #readView(b: Uint8Array, i: number, start: number): Uint8Array {
    if (this.#readBufs[i] === b) return this.#readViews[i];
    const view = b.subarray(start);
    this.#readBufs[i] = b;
    this.#readViews[i] = view;
    return view;
  }

  /** Waits in `poll` (worker thread) until the device or the close signal is readable. */
  async #waitReadable(): Promise<void> {
    const pending = libcAsync().poll(this.#pollFds, 2n, POLL_TIMEOUT_MS);
    this.#polls.add(pending);
    try {
      // -1 (EINTR and the like; errno is not readable from here) just means: look again.
      await pending;
    } finally {
      this.#polls.delete(pending);
    }
  }

  /** {@inheritDoc TunDevice.write} */
  write(bufs: Uint8Array[], offset: number): number {
    const stats = this.stats;
    if (this.#closing) {
      stats.writeErrors += bufs.length;
      return 0;
    }
    const write = libc().write;
    const fd = this.#fd;
    const start = offset - this.headerSize;
    if (start < 0) {
      throw new RangeError(`TUN write: offset ${offset} leaves no room for the virtio_net_hdr`);
    }
    let accepted = 0;
    for (let i = 0; i < bufs.length; i++) {
      const buf = start === 0 ? bufs[i] : bufs[i].subarray(start);
      let r = Number(write(fd, buf, BigInt(buf.length)));
      while (r < 0 && errno() === Errno.EINTR) r = Number(write(fd, buf, BigInt(buf.length)));
      if (r < 0) {
        stats.writeErrors++; // EAGAIN, ENOBUFS, EIO, EINVAL (malformed): dropped like a full queue
        continue;
      }
      accepted++;
      stats.writtenPackets++;
      stats.writtenBytes += r - this.headerSize;
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
    // Wake every poll at once; the eventfd stays readable, so a late poll returns at once too.
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#wakeFd, one, 8n);
    // Close the descriptors only when no poll on a worker thread can still be using them, so
    // the kernel cannot hand their numbers to a new file under a running poll.
    while (this.#polls.size > 0) await Promise.allSettled([...this.#polls]);
    libc().close(this.#fd);
    libc().close(this.#wakeFd);
    this.#fd = -1;
    this.#wakeFd = -1;
  }

  /** Same as {@linkcode LinuxTunDevice.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a TUN device on Linux: `open("/dev/net/tun")`, `TUNSETIFF` with `IFF_TUN | IFF_NO_PI`,
 * `O_NONBLOCK`, then sets the MTU, assigns the addresses and brings the link up, all through
 * ioctls. The device disappears when it is closed or the process exits. Needs root or
 * `CAP_NET_ADMIN`, and `--allow-ffi` (plus `--allow-write` for the IPv6 DAD switch in /proc).
 *
 * @param options Name (kernel-chosen when omitted), MTU (default 1500), addresses.
 * @returns The open device, up and configured.
 * @throws {TypeError} An invalid name or address, before anything is opened.
 * @throws {RangeError} An MTU or prefix length out of range, before anything is opened.
 * @throws {Deno.errors.PermissionDenied} Without CAP_NET_ADMIN; other `Deno.errors` by errno.
 *
 * @example
 * ```ts ignore
 * import { openLinuxTun } from "./linux.ts";
 * await using tun = await openLinuxTun({
 *   name: "kc0",
 *   mtu: 1500,
 *   addresses: [{ address: "198.18.0.1", prefixLength: 30 }],
 * });
 * const bufs = [new Uint8Array(1500)];
 * const sizes = [0];
 * const n = await tun.read(bufs, sizes, 0);
 * ```
 */
export function openLinuxTun(options: LinuxTunOptions = {}): Promise<LinuxTunDevice> {
  try {
    return Promise.resolve(openSync(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Everything `openLinuxTun` does is synchronous system calls. */
function openSync(options: LinuxTunOptions): LinuxTunDevice {
  if (options.name !== undefined) validateName(options.name);
  const mtu = options.mtu ?? 1500;
  const addresses = parseConfig(mtu, options.addresses ?? []);
  const headerSize = options.vnetHdr ? 10 : 0;

  const c = libc();
  const path = cString("/dev/net/tun");
  const fd = again(() => c.open(path, O_RDWR | O_CLOEXEC, 0));
  if (fd < 0) {
    const e = errno();
    const hint = e === Errno.ENOENT ? "load the tun module (modprobe tun)" : PERMISSION_HINT;
    throw errnoError("open /dev/net/tun", e, hint);
  }
  let wakeFd = -1;
  try {
    const req = new Ifreq(options.name ?? "");
    req.flags = IFF_TUN | IFF_NO_PI | (options.vnetHdr ? IFF_VNET_HDR : 0);
    if (again(() => c.ioctl(fd, BigInt(TUNSETIFF), req.bytes)) < 0) {
      const e = errno();
      const hint = e === Errno.EPERM
        ? PERMISSION_HINT
        : e === Errno.EBUSY
        ? `another process holds a TUN named ${options.name}`
        : e === Errno.EINVAL
        ? `is ${options.name} taken by an interface that is not a TUN?`
        : undefined;
      throw errnoError("TUNSETIFF on /dev/net/tun", e, hint);
    }
    const name = req.name;
    if (options.vnetHdr) enableOffloads(fd, name);
    const flags = again(() => c.fcntl(fd, F_GETFL, 0));
    if (flags < 0 || again(() => c.fcntl(fd, F_SETFL, flags | O_NONBLOCK)) < 0) {
      throw errnoError(`fcntl O_NONBLOCK on TUN ${name}`);
    }
    wakeFd = again(() => c.eventfd(0, EFD_CLOEXEC_NONBLOCK));
    if (wakeFd < 0) throw errnoError("eventfd");
    configureInterface(name, mtu, addresses);
    return new LinuxTunDevice(fd, wakeFd, name, mtu, headerSize);
  } catch (error) {
    c.close(fd); // a non-persistent TUN is deleted with its last descriptor
    if (wakeFd >= 0) c.close(wakeFd);
    throw error;
  }
}

function enableOffloads(fd: number, name: string): void {
  const size = new Uint8Array(4);
  new DataView(size.buffer).setInt32(0, VNET_HDR_SIZE, true);
  if (again(() => libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), size)) < 0) {
    throw errnoError(`TUNSETVNETHDRSZ on ${name}`);
  }
  // TUNSETOFFLOAD takes its flags as the argument's value, not through a pointer.
  if (
    again(() =>
      libc().ioctlValue(fd, BigInt(TUNSETOFFLOAD), BigInt(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6))
    ) < 0
  ) {
    throw errnoError(`TUNSETOFFLOAD on ${name}`);
  }
}
