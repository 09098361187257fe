/**
 * The TUN device contract: raw IP packets (no link-layer header, no packet-info prefix) in and
 * out of the kernel. Every platform driver (`linux.ts`, `darwin.ts` for utun and
 * `windows.ts` for wintun) and the in-memory device for tests implement it; nothing above this
 * layer asks which one it has.
 *
 * Buffers carry the packet at an `offset`, so a driver whose kernel wants a header in front of
 * each packet (macOS utun's 4-byte address family) can put it into the bytes before `offset`
 * instead of copying the packet. The flow engine always leaves {@linkcode TUN_HEADROOM} bytes
 * there.
 *
 * @module
 */

/**
 * Bytes every buffer given to a TUN device by the flow engine keeps in front of its packet: it
 * reads at `offset` {@linkcode TUN_HEADROOM} and writes buffers whose packet starts there. A
 * driver may overwrite these bytes (utun puts its 4-byte header there on macOS), so they must
 * belong to nothing else. Drivers work with any offset, but one below this may cost a copy per
 * packet.
 *
 * @example
 * ```ts
 * import { TUN_HEADROOM } from "./device.ts";
 * const mtu = 1500;
 * const buf = new Uint8Array(TUN_HEADROOM + mtu); // read(bufs, sizes, TUN_HEADROOM)
 * const packet = buf.subarray(TUN_HEADROOM); // the packet's bytes, once read
 * if (packet.byteOffset !== 4) throw new Error("unexpected");
 * ```
 */
export const TUN_HEADROOM = 4;

/** A network address with its prefix length, as assigned to an interface. */
export interface InterfaceAddress {
  /** Textual IPv4 or IPv6 address, e.g. `198.18.0.1` or `fd00:6b63::1`. */
  address: string;
  /** Prefix length in bits. */
  prefixLength: number;
}

/** Options for opening a TUN device. */
export interface TunOptions {
  /** Interface name; the kernel picks one (`tun0`, …) when omitted. Linux: at most 15 bytes. */
  name?: string;
  /** MTU to set. Default 1500. */
  mtu?: number;
  /** Addresses to assign before the link is brought up. Default none. */
  addresses?: InterfaceAddress[];
}

/** Counters a device keeps about itself. */
export interface TunStats {
  readPackets: number;
  readBytes: number;
  writtenPackets: number;
  writtenBytes: number;
  /** Writes the kernel refused (queue full, device gone); the packet is dropped. */
  writeErrors: number;
}

/**
 * A TUN device.
 *
 * Reads are batched: one call waits until at least one packet is ready, then takes up to
 * `bufs.length` packets without waiting again. Writes never wait: a packet the kernel will not
 * take is dropped and counted, as a full NIC queue would drop it.
 */
export interface TunDevice extends AsyncDisposable {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  /** The MTU the device was configured with. */
  readonly mtu: number;
  /** Counters; a live object, updated in place. */
  readonly stats: TunStats;
  /**
   * Waits until a packet can be read, then reads up to `bufs.length` packets. Packet `i` is
   * copied into `bufs[i]` starting at `offset`, and its length is stored in `sizes[i]`. Each
   * buffer must have room for `offset + mtu` bytes. The bytes before `offset` may be
   * overwritten (see {@linkcode TUN_HEADROOM}). Returns the number of packets read, or 0 once
   * the device is closed.
   */
  read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number>;
  /**
   * Writes one packet per buffer, `bufs[i].subarray(offset)`. The bytes before `offset` may be
   * overwritten (see {@linkcode TUN_HEADROOM}); the packet itself is not changed. Returns the
   * number of packets the kernel accepted; the rest are dropped and counted in
   * `stats.writeErrors`.
   */
  write(bufs: Uint8Array[], offset: number): number;
  /** Closes the device; a pending `read` resolves with 0. Closing twice is harmless. */
  close(): Promise<void>;
}
