/**
 * An in-memory {@linkcode TunDevice} for tests: no root, no kernel. Packets the test injects are
 * what `read` returns; what the code under test writes is collected. Any `offset` works; the
 * bytes before it are left alone (a test that wants them overwritten, as macOS utun does, wraps
 * the device).
 *
 * @module
 */

import type { TunDevice, TunStats } from "./device.ts";

/** Options for {@linkcode MemoryTun}. */
export interface MemoryTunOptions {
  /** Interface name reported. Default `"mem0"`. */
  name?: string;
  /** MTU reported; longer packets are refused by `inject` and `write`. Default 1500. */
  mtu?: number;
  /** Packets `inject` can queue before it drops, like a full kernel queue. Default 1024. */
  readCapacity?: number;
  /**
   * Packets `written` can hold before `write` refuses more (counted in `stats.writeErrors`);
   * `nextWrite()` and clearing `written` make room. Default unlimited.
   */
  writeCapacity?: number;
}

/**
 * A TUN device in memory.
 *
 * @example
 * ```ts
 * import { MemoryTun } from "./memory.ts";
 * const tun = new MemoryTun();
 * tun.inject(new Uint8Array([0x45, 0, 0, 20]));
 * const bufs = [new Uint8Array(1500)];
 * const sizes = [0];
 * const n = await tun.read(bufs, sizes, 0);
 * tun.write([bufs[0].subarray(0, sizes[0])], 0);
 * const echoed = await tun.nextWrite();
 * if (n !== 1 || echoed.length !== 4) throw new Error("unexpected");
 * await tun.close();
 * ```
 */
export class MemoryTun implements TunDevice {
  /** The interface name. */
  readonly name: string;
  /** The MTU. */
  readonly mtu: number;
  /** Counters; a live object, updated in place. */
  readonly stats: TunStats = {
    readPackets: 0,
    readBytes: 0,
    writtenPackets: 0,
    writtenBytes: 0,
    writeErrors: 0,
  };
  /** Copies of the packets written and not yet taken by `nextWrite()`, oldest first. */
  readonly written: Uint8Array[] = [];
  /** Called with each packet `write` accepts (the same copy that goes to `written`). */
  onWrite?: (packet: Uint8Array) => void;
  /** Packets `inject` dropped because the read queue was full or the device closed. */
  injectDrops = 0;
  #readCapacity: number;
  #writeCapacity: number;
  #queue: Uint8Array[] = [];
  #readers: (() => void)[] = [];
  #writeWaiters: { resolve: (packet: Uint8Array) => void; reject: (error: Error) => void }[] = [];
  #closed = false;

  /** Makes an open device; see {@linkcode MemoryTunOptions} for the defaults. */
  constructor(options: MemoryTunOptions = {}) {
    this.name = options.name ?? "mem0";
    this.mtu = options.mtu ?? 1500;
    this.#readCapacity = options.readCapacity ?? 1024;
    this.#writeCapacity = options.writeCapacity ?? Infinity;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Packets injected and not yet read. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues a copy of `packet` as if the kernel had routed it into the TUN.
   *
   * @returns false when it was dropped: the queue is full or the device is closed.
   * @throws {RangeError} When the packet is longer than the MTU.
   */
  inject(packet: Uint8Array): boolean {
    if (packet.length > this.mtu) {
      throw new RangeError(`MemoryTun.inject: packet of ${packet.length} bytes exceeds MTU`);
    }
    if (this.#closed || this.#queue.length >= this.#readCapacity) {
      this.injectDrops++;
      return false;
    }
    this.#queue.push(packet.slice());
    this.#readers.shift()?.();
    return true;
  }

  /** {@inheritDoc TunDevice.read} */
  async read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number> {
    while (this.#queue.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => this.#readers.push(resolve));
    }
    if (this.#closed) return 0;
    let n = 0;
    while (n < bufs.length && this.#queue.length > 0) {
      const packet = this.#queue[0];
      if (bufs[n].length < offset + packet.length) {
        if (n > 0) break;
        throw new RangeError(
          `MemoryTun.read: buffer of ${bufs[n].length} bytes cannot hold offset ${offset} + ` +
            `packet of ${packet.length}`,
        );
      }
      this.#queue.shift();
      bufs[n].set(packet, offset);
      sizes[n] = packet.length;
      this.stats.readPackets++;
      this.stats.readBytes += packet.length;
      n++;
    }
    // Another reader may be waiting for what is left.
    if (this.#queue.length > 0) this.#readers.shift()?.();
    return n;
  }

  /** {@inheritDoc TunDevice.write} */
  write(bufs: Uint8Array[], offset: number): number {
    let accepted = 0;
    for (const buf of bufs) {
      const packet = buf.slice(offset);
      if (this.#closed || packet.length > this.mtu || this.written.length >= this.#writeCapacity) {
        this.stats.writeErrors++;
        continue;
      }
      accepted++;
      this.stats.writtenPackets++;
      this.stats.writtenBytes += packet.length;
      this.onWrite?.(packet);
      const waiter = this.#writeWaiters.shift();
      if (waiter) waiter.resolve(packet);
      else this.written.push(packet);
    }
    return accepted;
  }

  /**
   * Takes the oldest packet from `written`, or waits for the next `write`.
   *
   * @throws {Error} When the device is closed while waiting, or was closed with nothing left.
   */
  nextWrite(): Promise<Uint8Array> {
    const packet = this.written.shift();
    if (packet) return Promise.resolve(packet);
    if (this.#closed) return Promise.reject(new Error(`MemoryTun ${this.name} is closed`));
    return new Promise((resolve, reject) => this.#writeWaiters.push({ resolve, reject }));
  }

  /** {@inheritDoc TunDevice.close} */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const wake of this.#readers.splice(0)) wake();
      const error = new Error(`MemoryTun ${this.name} closed while waiting for a write`);
      for (const waiter of this.#writeWaiters.splice(0)) waiter.reject(error);
    }
    return Promise.resolve();
  }

  /** Same as {@linkcode MemoryTun.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
