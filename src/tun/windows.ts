/**
 * The Windows TUN driver: a Wintun adapter (`wintun.dll` 0.14.1) through `Deno.dlopen`, its
 * addresses and MTU through iphlpapi.
 *
 * Data path, the same shape as the Linux driver's: `read` takes packets from the session's ring
 * with synchronous `WintunReceivePacket` calls (each copied out and released at once) until
 * `ERROR_NO_MORE_ITEMS`, and only then waits on the ring's read event in one
 * `nonblocking: true` `WaitForSingleObject` on a worker thread; `close` wakes that wait with
 * `SetEvent` (as wireguard-go does). `write` allocates each packet in the send ring, copies it
 * in and sends it; a full ring (`ERROR_BUFFER_OVERFLOW`) drops the packet and counts it.
 * `ERROR_HANDLE_EOF` means the adapter is going away: reads then resolve with 0.
 *
 * The native functions come in through {@linkcode WintunNative}, so tests drive this code with
 * a fake ring (`wintun_fake.ts`); {@linkcode loadWintunNative} opens the real libraries, after
 * checking `wintun.dll` against its pin (`wintun_pin.ts`) on every load.
 *
 * @module
 */
import type { TunDevice, TunOptions, TunStats } from "./device.ts";
import { parseConfig } from "./_linux_config.ts";
import { adapterAlias, configureAdapter, winError } from "./windows_config.ts";
import { defaultWintunPath, verifyWintunFile, type WintunPin } from "./wintun_pin.ts";
import {
  guidBytes,
  IPHLPAPI_INTERFACE_SYMBOLS,
  type IphlpapiInterfaceSymbols,
  KERNEL32_ASYNC_SYMBOLS,
  KERNEL32_SYMBOLS,
  type Kernel32AsyncSymbols,
  type Kernel32Symbols,
  WAIT_FAILED,
  wideString,
  WinError,
  winErrorName,
  WINTUN_SYMBOLS,
  type WintunSymbols,
} from "./wintun_symbols.ts";

/** The session's ring size: 8 MiB, a power of two in Wintun's 128 KiB..64 MiB (wireguard-go's). */
export const WINTUN_RING_CAPACITY = 0x800000;
/** The adapter's name unless `TunOptions.name` says otherwise. */
export const DEFAULT_ADAPTER_NAME = "kconnect";
/** The tunnel type Wintun shows for the adapter. */
export const KCONNECT_TUNNEL_TYPE = "kconnect";
/**
 * kconnect's adapter GUID, the same on every run and machine, so Windows does not make a new
 * network profile ("Network 2", "Network 3", …) each time (wireguard-windows does the same).
 */
export const KCONNECT_ADAPTER_GUID = "f7f0d3eb-89ce-4d12-802a-913e65f0b26e";
/** Largest packet Wintun carries (`WINTUN_MAX_IP_PACKET_SIZE`). */
export const WINTUN_MAX_PACKET = 0xffff;
/** Longest adapter name Wintun takes (`MAX_ADAPTER_NAME` 128, with the NUL). */
export const MAX_ADAPTER_NAME = 127;
/** Windows' smallest IPv4 MTU. */
export const WINDOWS_MIN_MTU = 576;

/** How long one wait on the read event lasts before the loop looks again. */
const WAIT_TIMEOUT_MS = 200;
/** Failed receives with the same unexpected, non-zero last error in a row before a read throws. */
const MAX_UNEXPECTED = 3;

const ADMIN_HINT =
  "run kconnect as administrator (or as the SYSTEM task `kconnect install` sets up)";

/** Everything native the driver calls; the real libraries or a fake typed the same. */
export interface WintunNative {
  wintun: WintunSymbols;
  kernel32: Kernel32Symbols;
  kernel32Async: Kernel32AsyncSymbols;
  iphlpapi: IphlpapiInterfaceSymbols;
  /** Closes the libraries once the device is closed (the real ones; fakes may leave it out). */
  release?: () => void;
}

/** Counters the Windows driver keeps beyond {@linkcode TunStats}. */
export interface WintunStats extends TunStats {
  /** Packets dropped because the send ring was full (`ERROR_BUFFER_OVERFLOW`). */
  sendRingFull: number;
  /** Received packets dropped because they did not fit the caller's buffer. */
  readOversize: number;
}

/** A TUN device opened by {@linkcode openWindowsTun}. */
export class WindowsTunDevice implements TunDevice {
  /** The adapter's interface alias, read back from Windows (routes name it by this). */
  readonly name: string;
  /** The MTU the adapter was configured with. */
  readonly mtu: number;
  /** The adapter's LUID (`NET_LUID`), as iphlpapi names the interface. */
  readonly luid: bigint;
  /** Counters; a live object, updated in place. */
  readonly stats: WintunStats = {
    readPackets: 0,
    readBytes: 0,
    writtenPackets: 0,
    writtenBytes: 0,
    writeErrors: 0,
    sendRingFull: 0,
    readOversize: 0,
  };
  #native: WintunNative;
  #adapter: Deno.PointerObject;
  #session: Deno.PointerObject;
  #readEvent: Deno.PointerObject;
  #size = new Uint32Array(1);
  #closing = false;
  #eof = false;
  #unexpected = 0;
  #lastUnexpected = 0;
  #closed: Promise<void> | undefined;
  #waits = new Set<Promise<number>>();

  /** Wraps an adapter with a started session; use {@linkcode openWindowsTun} instead. */
  constructor(
    native: WintunNative,
    handles: {
      adapter: Deno.PointerObject;
      session: Deno.PointerObject;
      readEvent: Deno.PointerObject;
    },
    name: string,
    mtu: number,
    luid: bigint,
  ) {
    this.#native = native;
    this.#adapter = handles.adapter;
    this.#session = handles.session;
    this.#readEvent = handles.readEvent;
    this.name = name;
    this.mtu = mtu;
    this.luid = luid;
  }

  /** {@inheritDoc TunDevice.read} */
  async read(bufs: Uint8Array[], sizes: number[], offset: number): Promise<number> {
    if (offset < 0) throw new RangeError(`TUN read: negative offset ${offset}`);
    for (;;) {
      if (this.#closing || this.#eof) return 0;
      const n = this.#burst(bufs, sizes, offset);
      if (n > 0) return n;
      if (this.#eof || this.#closing) return 0;
      await this.#waitReadable();
    }
  }

  /** Takes packets from the ring until it is empty or `bufs` is full. */
  #burst(bufs: Uint8Array[], sizes: number[], offset: number): number {
    const { wintun, kernel32 } = this.#native;
    const session = this.#session;
    const stats = this.stats;
    let n = 0;
    while (n < bufs.length) {
      const packet = wintun.WintunReceivePacket(session, this.#size);
      if (packet === null) {
        const e = kernel32.GetLastError(); // nothing native in between (see `again` in libc.ts)
        if (e === WinError.ERROR_NO_MORE_ITEMS) {
          this.#unexpected = 0;
          break;
        }
        if (e === WinError.ERROR_HANDLE_EOF) {
          this.#eof = true;
          break;
        }
        if (n > 0) break; // hand over what we have; the error comes back on the next call
        if (e === WinError.ERROR_INVALID_DATA) {
          throw winError(`WintunReceivePacket on ${this.name}`, e, "the ring is corrupt");
        }
        // Another value may be a last error that something else overwrote (0 above all, which
        // a successful call in between leaves): wait and look again. The same real error
        // three times in a row, though, is the ring's answer.
        if (e === WinError.ERROR_SUCCESS) break;
        this.#unexpected = e === this.#lastUnexpected ? this.#unexpected + 1 : 1;
        this.#lastUnexpected = e;
        if (this.#unexpected >= MAX_UNEXPECTED) {
          throw winError(`WintunReceivePacket on ${this.name}`, e);
        }
        break;
      }
      this.#unexpected = 0;
      const size = this.#size[0];
      const buf = bufs[n];
      if (offset + size > buf.length) {
        wintun.WintunReleaseReceivePacket(session, packet);
        stats.readOversize++;
        continue;
      }
      Deno.UnsafePointerView.copyInto(packet, buf.subarray(offset, offset + size));
      wintun.WintunReleaseReceivePacket(session, packet);
      sizes[n] = size;
      stats.readPackets++;
      stats.readBytes += size;
      n++;
    }
    return n;
  }

  /** Waits (worker thread) until the ring has packets, the device closes, or the timeout. */
  async #waitReadable(): Promise<void> {
    const pending = this.#native.kernel32Async.WaitForSingleObject(
      this.#readEvent,
      WAIT_TIMEOUT_MS,
    );
    this.#waits.add(pending);
    let result: number;
    try {
      result = await pending;
    } finally {
      this.#waits.delete(pending);
    }
    if (result === WAIT_FAILED && !this.#closing) {
      throw new Error(`WaitForSingleObject on the read event of ${this.name} failed`);
    }
  }

  /** {@inheritDoc TunDevice.write} */
  write(bufs: Uint8Array[], offset: number): number {
    const stats = this.stats;
    if (this.#closing || this.#eof) {
      stats.writeErrors += bufs.length;
      return 0;
    }
    const { wintun, kernel32 } = this.#native;
    const session = this.#session;
    let accepted = 0;
    for (let i = 0; i < bufs.length; i++) {
      const packet = bufs[i].subarray(offset);
      const size = packet.length;
      if (size === 0 || size > WINTUN_MAX_PACKET || this.#eof) {
        stats.writeErrors++;
        continue;
      }
      const slot = wintun.WintunAllocateSendPacket(session, size);
      if (slot === null) {
        const e = kernel32.GetLastError();
        if (e === WinError.ERROR_BUFFER_OVERFLOW) stats.sendRingFull++;
        else if (e === WinError.ERROR_HANDLE_EOF) this.#eof = true;
        stats.writeErrors++; // dropped, as a full NIC queue would drop it
        continue;
      }
      new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(slot, size)).set(packet);
      wintun.WintunSendPacket(session, slot);
      accepted++;
      stats.writtenPackets++;
      stats.writtenBytes += size;
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
    const { wintun, kernel32 } = this.#native;
    // Wake a read waiting on the event; the session (and its event) ends only once no wait on
    // a worker thread can still be using the handle.
    kernel32.SetEvent(this.#readEvent);
    while (this.#waits.size > 0) await Promise.allSettled([...this.#waits]);
    wintun.WintunEndSession(this.#session);
    wintun.WintunCloseAdapter(this.#adapter); // removes the adapter WintunCreateAdapter made
    this.#native.release?.();
  }

  /** Same as {@linkcode WindowsTunDevice.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Checks an adapter name before anything is opened; throws TypeError. */
export function validateAdapterName(name: string): void {
  if (name.length === 0 || name.length > MAX_ADAPTER_NAME) {
    throw new TypeError(
      `Invalid adapter name "${name}": must be 1 to ${MAX_ADAPTER_NAME} characters`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\\/:*?"<>|]/.test(name)) {
    throw new TypeError(
      `Invalid adapter name ${JSON.stringify(name)}: no control characters nor \\ / : * ? " < > |`,
    );
  }
}

/** Options of {@linkcode loadWintunNative}. */
export interface LoadWintunOptions {
  /** Where `wintun.dll` is; default `%ProgramFiles%\kconnect\wintun.dll`. */
  path?: string;
  /** The pin to check against; default the one for this architecture. */
  pin?: WintunPin;
}

/**
 * Opens the real libraries: `wintun.dll` by absolute path after checking its location and its
 * sha256 against the pin (on every call: each call loads it anew), `kernel32.dll` and
 * `iphlpapi.dll` from the system directory.
 *
 * @throws {import("./wintun_pin.ts").WintunPinError} When the DLL is not the pinned one or not
 * in the admin-only folder; nothing is loaded then.
 */
export async function loadWintunNative(options: LoadWintunOptions = {}): Promise<WintunNative> {
  if (Deno.build.os !== "windows") {
    throw new Error(`The Wintun driver runs on Windows only, not ${Deno.build.os}`);
  }
  const path = options.path ?? defaultWintunPath();
  await verifyWintunFile(path, "pin" in options ? { pin: options.pin } : {});
  const libs: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
  try {
    const wintun = Deno.dlopen(path, WINTUN_SYMBOLS);
    libs.push(wintun);
    const kernel32 = Deno.dlopen("kernel32.dll", KERNEL32_SYMBOLS);
    libs.push(kernel32);
    const kernel32Async = Deno.dlopen("kernel32.dll", KERNEL32_ASYNC_SYMBOLS);
    libs.push(kernel32Async);
    const iphlpapi = Deno.dlopen("iphlpapi.dll", IPHLPAPI_INTERFACE_SYMBOLS);
    libs.push(iphlpapi);
    return {
      wintun: wintun.symbols,
      kernel32: kernel32.symbols,
      kernel32Async: kernel32Async.symbols,
      iphlpapi: iphlpapi.symbols,
      release: () => libs.forEach((l) => l.close()),
    };
  } catch (error) {
    libs.forEach((l) => l.close());
    throw error;
  }
}

/**
 * Opens a TUN device on Windows: creates kconnect's Wintun adapter (fixed GUID; an adapter of
 * that name that is still there is opened instead), gives it the MTU and addresses through
 * iphlpapi and starts a session with an 8 MiB ring. Closing ends the session and removes the
 * adapter. Needs administrator rights and `--allow-ffi --allow-read --allow-env`.
 *
 * @param options Name (default `kconnect`), MTU (default 1500, at least 576), addresses.
 * @param native The native functions; by default {@linkcode loadWintunNative}'s.
 * @returns The open, configured device.
 * @throws {TypeError} An invalid name or address, before anything is opened.
 * @throws {RangeError} An MTU or prefix length out of range, before anything is opened.
 * @throws {Deno.errors.PermissionDenied} Without administrator rights.
 *
 * @example
 * ```ts ignore
 * import { openWindowsTun } from "./windows.ts";
 * await using tun = await openWindowsTun({
 *   addresses: [{ address: "198.18.0.1", prefixLength: 30 }],
 * });
 * ```
 */
export async function openWindowsTun(
  options: TunOptions = {},
  native?: WintunNative,
): Promise<WindowsTunDevice> {
  const name = options.name ?? DEFAULT_ADAPTER_NAME;
  validateAdapterName(name);
  const mtu = options.mtu ?? 1500;
  const addresses = parseConfig(mtu, options.addresses ?? []);
  if (mtu < WINDOWS_MIN_MTU) {
    throw new RangeError(`Invalid TUN MTU ${mtu}: Windows needs at least ${WINDOWS_MIN_MTU}`);
  }
  const n = native ?? await loadWintunNative();
  const { wintun, kernel32 } = n;
  const wideName = wideString(name);
  let adapter = wintun.WintunCreateAdapter(
    wideName,
    wideString(KCONNECT_TUNNEL_TYPE),
    guidBytes(KCONNECT_ADAPTER_GUID),
  );
  if (adapter === null) {
    const created = kernel32.GetLastError();
    if (created === WinError.ERROR_ACCESS_DENIED) {
      n.release?.();
      throw winError(`WintunCreateAdapter ${name}`, created, ADMIN_HINT);
    }
    adapter = wintun.WintunOpenAdapter(wideName);
    if (adapter === null) {
      const opened = kernel32.GetLastError();
      n.release?.();
      throw winError(
        `WintunCreateAdapter ${name} (${winErrorName(created)}), then WintunOpenAdapter`,
        opened,
        opened === WinError.ERROR_ACCESS_DENIED ? ADMIN_HINT : undefined,
      );
    }
  }
  let session: Deno.PointerValue = null;
  try {
    const luidBytes = new BigUint64Array(1);
    wintun.WintunGetAdapterLUID(adapter, luidBytes);
    const luid = luidBytes[0];
    const alias = adapterAlias(n.iphlpapi, luid) ?? name;
    configureAdapter(n.iphlpapi, luid, mtu, addresses);
    session = wintun.WintunStartSession(adapter, WINTUN_RING_CAPACITY);
    if (session === null) throw winError(`WintunStartSession on ${name}`, kernel32.GetLastError());
    const readEvent = wintun.WintunGetReadWaitEvent(session);
    if (readEvent === null) throw new Error(`WintunGetReadWaitEvent on ${name} returned NULL`);
    return new WindowsTunDevice(n, { adapter, session, readEvent }, alias, mtu, luid);
  } catch (error) {
    if (session !== null) wintun.WintunEndSession(session);
    wintun.WintunCloseAdapter(adapter);
    n.release?.();
    throw error;
  }
}
