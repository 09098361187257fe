/**
 * A recording fake of Wintun, kernel32 and the adapter part of iphlpapi, typed as the real
 * symbol tables are, for driving the real Windows driver on any OS (tests only; needs
 * `--allow-ffi` for the pointers, which point at real memory the fake owns).
 *
 * What it models of Wintun 0.14.1:
 * - the receive ring: packets the "kernel" queued ({@linkcode FakeWintun.deliver}) come out of
 *   `WintunReceivePacket` in order, each until `WintunReleaseReceivePacket`; an empty ring
 *   answers NULL with `ERROR_NO_MORE_ITEMS`, a corrupt one `ERROR_INVALID_DATA`;
 * - the read wait event, auto-reset: set when packets arrive or by `SetEvent`, one
 *   `WaitForSingleObject` consumes it; waits never time out unless `timeouts` is on;
 * - the send ring: `WintunAllocateSendPacket` answers NULL with `ERROR_BUFFER_OVERFLOW` once
 *   the bytes allocated and not yet drained ({@linkcode FakeWintun.drain}) would pass
 *   `sendRingBytes`;
 * - the adapter going away ({@linkcode FakeWintun.goAway}) or the session ended: every ring
 *   call answers NULL with `ERROR_HANDLE_EOF`, and a wait on the ended session's event fails;
 * - `GetLastError` answers the last error a fake call set, unless told to answer otherwise.
 *
 * Misuse the real DLL would punish (a call on an ended session, releasing a packet twice or one
 * never received, sending an unallocated slot, a wait left running when the session ends) is
 * recorded in {@linkcode FakeWintun.violations}; tests assert it stays empty.
 *
 * @module
 */
import type { WintunNative } from "./windows.ts";
import {
  type IphlpapiInterfaceSymbols,
  type Kernel32AsyncSymbols,
  type Kernel32Symbols,
  WAIT_FAILED,
  WAIT_OBJECT_0,
  WAIT_TIMEOUT,
  WinError,
  type WintunSymbols,
} from "./wintun_symbols.ts";
import {
  InterfaceRow,
  MIB_IPINTERFACE_ROW_SIZE,
  MIB_UNICASTIPADDRESS_ROW_SIZE,
  UnicastRow,
  WIN_AF_INET,
} from "./windows_rows.ts";

/** Options of the fake. */
export interface FakeWintunOptions {
  /** The LUID `WintunGetAdapterLUID` reports. Default IfType 53 (virtual), index 1. */
  luid?: bigint;
  /** Bytes the send ring holds before `ERROR_BUFFER_OVERFLOW`. Default 64 KiB. */
  sendRingBytes?: number;
  /** Last error of a failing `WintunCreateAdapter`; default it succeeds. */
  createError?: number;
  /** Last error of a failing `WintunOpenAdapter`; default it succeeds. */
  openError?: number;
  /** Whether waits end after their timeout (real timers); default they wait for the event. */
  timeouts?: boolean;
  /** Unicast address rows already in the system (for the flush), `MIB_UNICASTIPADDRESS_ROW`s. */
  addressTable?: Uint8Array[];
  /** Status `SetIpInterfaceEntry` answers; default 0. */
  setInterfaceStatus?: number;
  /** The interface alias Windows reports; default the name the adapter was created with. */
  alias?: string;
}

function bytesOf(b: AllowSharedBufferSource | null): Uint8Array {
  if (b === null) throw new TypeError("fake: NULL buffer");
  if (!ArrayBuffer.isView(b)) return new Uint8Array(b);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function wide(b: AllowSharedBufferSource | null): string {
  const u = bytesOf(b);
  const units = new Uint16Array(u.buffer, u.byteOffset, u.byteLength / 2);
  const end = units.indexOf(0);
  return String.fromCharCode(...units.subarray(0, end < 0 ? units.length : end));
}

/** The fake; hand {@linkcode FakeWintun.native} to `openWindowsTun`. */
export class FakeWintun {
  /** Every call, in order, with its interesting arguments (`WintunReceivePacket`, …). */
  readonly calls: string[] = [];
  /** Misuse seen; empty when the driver behaved. */
  readonly violations: string[] = [];
  /** Packets the driver sent, in order. */
  readonly sent: Uint8Array[] = [];
  /** `CreateUnicastIpAddressEntry` rows, copied. */
  readonly createdAddresses: Uint8Array[] = [];
  /** `DeleteUnicastIpAddressEntry` rows, copied. */
  readonly deletedAddresses: Uint8Array[] = [];
  /** `SetIpInterfaceEntry` rows, copied. */
  readonly setInterfaces: Uint8Array[] = [];
  /** Capacity passed to `WintunStartSession`. */
  capacity = 0;
  /** Name, tunnel type and GUID bytes `WintunCreateAdapter` got. */
  created: { name: string; tunnelType: string; guid: Uint8Array } | null = null;
  /** Waits running now. */
  waiting = 0;
  /** Whether the adapter was closed, the session ended. */
  adapterClosed = false;
  sessionEnded = false;
  /** Answers the next `GetLastError` calls give instead of the real one (something overwrote it). */
  clobberLastError: number[] = [];
  /** Set to make the ring answer `ERROR_INVALID_DATA`. */
  corrupt = false;

  readonly #o: FakeWintunOptions;
  readonly luid: bigint;
  #lastError = 0;
  #inbound: Uint8Array[] = [];
  #outstanding = new Map<bigint, Uint8Array>(); // received, not yet released
  #allocated = new Map<bigint, Uint8Array>(); // send slots, not yet sent
  #sendUsed = 0;
  #gone = false;
  #signaled = false;
  #waiters: ((r: number) => void)[] = [];
  #keep: Uint8Array[] = []; // memory behind handles and tables, kept alive
  readonly #adapter: Deno.PointerObject;
  readonly #session: Deno.PointerObject;
  readonly #event: Deno.PointerObject;

  constructor(options: FakeWintunOptions = {}) {
    this.#o = options;
    this.luid = options.luid ?? 0x0035000001000000n;
    this.#adapter = this.#handle();
    this.#session = this.#handle();
    this.#event = this.#handle();
  }

  #handle(): Deno.PointerObject {
    const cell = new Uint8Array(8);
    this.#keep.push(cell);
    return Deno.UnsafePointer.of(cell)!;
  }

  #same(a: Deno.PointerValue, b: Deno.PointerObject): boolean {
    return a !== null && Deno.UnsafePointer.equals(a, b);
  }

  #fail(error: number): null {
    this.#lastError = error;
    return null;
  }

  /** The ring is unusable: adapter gone or session ended (also records misuse). */
  #eof(call: string, session: Deno.PointerValue): boolean {
    if (!this.#same(session, this.#session)) this.violations.push(`${call} on a foreign session`);
    if (this.sessionEnded) this.violations.push(`${call} after WintunEndSession`);
    return this.#gone || this.sessionEnded;
  }

  /** The "kernel" queues packets for the driver to read; sets the read event. */
  deliver(...packets: Uint8Array[]): void {
    this.#inbound.push(...packets.map((p) => p.slice()));
    this.#signal();
  }

  /** Packets queued and not yet received. */
  get queued(): number {
    return this.#inbound.length;
  }

  /** Packets received and not yet released. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** The "kernel" takes what was sent out of the send ring, freeing its room. */
  drain(): void {
    this.#sendUsed = 0;
  }

  /** The adapter goes away (driver removed, device unplugged): `ERROR_HANDLE_EOF` from now on. */
  goAway(): void {
    this.#gone = true;
    this.#signal();
  }

  /** Sets the read event with nothing in the ring (a spurious wake-up). */
  wake(): void {
    this.#signal();
  }

  #signal(): void {
    const w = this.#waiters.shift();
    if (w) w(WAIT_OBJECT_0);
    else this.#signaled = true;
  }

  readonly wintun: WintunSymbols = {
    WintunCreateAdapter: (name, tunnelType, guid) => {
      this.calls.push(`WintunCreateAdapter ${wide(name)}`);
      this.created = {
        name: wide(name),
        tunnelType: wide(tunnelType),
        guid: bytesOf(guid).slice(),
      };
      if (this.#o.createError !== undefined) return this.#fail(this.#o.createError);
      return this.#adapter;
    },
    WintunOpenAdapter: (name) => {
      this.calls.push(`WintunOpenAdapter ${wide(name)}`);
      if (this.#o.openError !== undefined) return this.#fail(this.#o.openError);
      return this.#adapter;
    },
    WintunCloseAdapter: (adapter) => {
      this.calls.push("WintunCloseAdapter");
      if (!this.#same(adapter, this.#adapter)) this.violations.push("close of a foreign adapter");
      if (this.adapterClosed) this.violations.push("WintunCloseAdapter twice");
      if (!this.sessionEnded && this.capacity > 0) {
        this.violations.push("WintunCloseAdapter before WintunEndSession");
      }
      this.adapterClosed = true;
    },
    WintunGetAdapterLUID: (_adapter, out) => {
      this.calls.push("WintunGetAdapterLUID");
      const b = bytesOf(out);
      new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(0, this.luid, true);
    },
    WintunGetRunningDriverVersion: () => 0x0e,
    WintunStartSession: (adapter, capacity) => {
      this.calls.push(`WintunStartSession ${capacity}`);
      if (!this.#same(adapter, this.#adapter)) this.violations.push("session on a foreign adapter");
      this.capacity = capacity;
      if (capacity < 0x20000 || capacity > 0x4000000 || (capacity & (capacity - 1)) !== 0) {
        return this.#fail(WinError.ERROR_INVALID_PARAMETER);
      }
      return this.#session;
    },
    WintunEndSession: (session) => {
      this.calls.push("WintunEndSession");
      if (!this.#same(session, this.#session)) this.violations.push("end of a foreign session");
      if (this.waiting > 0) this.violations.push("WintunEndSession while a wait uses its event");
      if (this.#outstanding.size > 0) this.violations.push("WintunEndSession with packets held");
      this.sessionEnded = true;
    },
    WintunGetReadWaitEvent: () => this.#event,
    WintunReceivePacket: (session, sizeOut) => {
      this.calls.push("WintunReceivePacket");
      if (this.#eof("WintunReceivePacket", session)) return this.#fail(WinError.ERROR_HANDLE_EOF);
      if (this.corrupt) return this.#fail(WinError.ERROR_INVALID_DATA);
      const packet = this.#inbound.shift();
      if (packet === undefined) return this.#fail(WinError.ERROR_NO_MORE_ITEMS);
      const s = bytesOf(sizeOut);
      new DataView(s.buffer, s.byteOffset, s.byteLength).setUint32(0, packet.length, true);
      const p = Deno.UnsafePointer.of(packet)!;
      this.#outstanding.set(Deno.UnsafePointer.value(p) as bigint, packet);
      this.#lastError = 0;
      return p;
    },
    WintunReleaseReceivePacket: (session, packet) => {
      this.calls.push("WintunReleaseReceivePacket");
      this.#eof("WintunReleaseReceivePacket", session);
      const key = Deno.UnsafePointer.value(packet) as bigint;
      if (!this.#outstanding.delete(key)) {
        this.violations.push("release of a packet not held (twice, or never received)");
      }
    },
    WintunAllocateSendPacket: (session, size) => {
      this.calls.push(`WintunAllocateSendPacket ${size}`);
      if (this.#eof("WintunAllocateSendPacket", session)) {
        return this.#fail(WinError.ERROR_HANDLE_EOF);
      }
      if (this.#sendUsed + size > (this.#o.sendRingBytes ?? 0x10000)) {
        return this.#fail(WinError.ERROR_BUFFER_OVERFLOW);
      }
      this.#sendUsed += size;
      const slot = new Uint8Array(size).fill(0xee); // not zeroed, as ring memory is not
      const p = Deno.UnsafePointer.of(slot)!;
      this.#allocated.set(Deno.UnsafePointer.value(p) as bigint, slot);
      this.#lastError = 0;
      return p;
    },
    WintunSendPacket: (session, packet) => {
      this.calls.push("WintunSendPacket");
      this.#eof("WintunSendPacket", session);
      const key = Deno.UnsafePointer.value(packet) as bigint;
      const slot = this.#allocated.get(key);
      if (slot === undefined) {
        this.violations.push("send of a slot not allocated");
        return;
      }
      this.#allocated.delete(key);
      this.sent.push(slot.slice());
    },
  };

  readonly kernel32: Kernel32Symbols = {
    GetLastError: () => {
      return this.clobberLastError.shift() ?? this.#lastError;
    },
    SetEvent: (event) => {
      this.calls.push("SetEvent");
      if (!this.#same(event, this.#event)) this.violations.push("SetEvent on a foreign handle");
      if (this.sessionEnded) this.violations.push("SetEvent after WintunEndSession");
      this.#signal();
      return 1;
    },
  };

  readonly kernel32Async: Kernel32AsyncSymbols = {
    WaitForSingleObject: (event, ms) => {
      this.calls.push(`WaitForSingleObject ${ms}`);
      if (!this.#same(event, this.#event) || this.sessionEnded) {
        return Promise.resolve(WAIT_FAILED);
      }
      if (this.#signaled) {
        this.#signaled = false;
        return Promise.resolve(WAIT_OBJECT_0);
      }
      this.waiting++;
      const wait = new Promise<number>((resolve) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const done = (r: number) => {
          if (timer !== undefined) clearTimeout(timer);
          resolve(r);
        };
        this.#waiters.push(done);
        if (this.#o.timeouts) {
          timer = setTimeout(() => {
            this.#waiters = this.#waiters.filter((w) => w !== done);
            done(WAIT_TIMEOUT);
          }, ms);
        }
      });
      // The worker thread holds the handle until its result reaches JavaScript.
      wait.then(() => this.waiting--);
      return wait;
    },
  };

  readonly iphlpapi: IphlpapiInterfaceSymbols = {
    // The defaults Windows documents for InitializeUnicastIpAddressEntry.
    InitializeUnicastIpAddressEntry: (row) => {
      this.calls.push("InitializeUnicastIpAddressEntry");
      const b = bytesOf(row);
      if (b.length !== MIB_UNICASTIPADDRESS_ROW_SIZE) this.violations.push("unicast row size");
      b.fill(0);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      v.setUint32(UnicastRow.PrefixOrigin, 16, true); // IpPrefixOriginUnchanged
      v.setUint32(UnicastRow.SuffixOrigin, 16, true); // IpSuffixOriginUnchanged
      v.setUint32(UnicastRow.ValidLifetime, 0xffffffff, true);
      v.setUint32(UnicastRow.PreferredLifetime, 0xffffffff, true);
      b[UnicastRow.OnLinkPrefixLength] = 0xff;
    },
    CreateUnicastIpAddressEntry: (row) => {
      this.calls.push("CreateUnicastIpAddressEntry");
      this.createdAddresses.push(bytesOf(row).slice());
      return 0;
    },
    InitializeIpInterfaceEntry: (row) => {
      this.calls.push("InitializeIpInterfaceEntry");
      const b = bytesOf(row);
      if (b.length !== MIB_IPINTERFACE_ROW_SIZE) this.violations.push("interface row size");
      b.fill(0);
    },
    // What Windows answers for a fresh adapter (here: MTU 1500, site prefix 64, metric 5).
    GetIpInterfaceEntry: (row) => {
      const b = bytesOf(row);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const family = v.getUint16(InterfaceRow.Family, true);
      this.calls.push(`GetIpInterfaceEntry ${family}`);
      if (v.getBigUint64(InterfaceRow.InterfaceLuid, true) !== this.luid) {
        return WinError.ERROR_NOT_FOUND;
      }
      v.setUint32(InterfaceRow.InterfaceIndex, 42, true);
      v.setUint32(InterfaceRow.SitePrefixLength, family === WIN_AF_INET ? 64 : 0, true);
      v.setUint32(InterfaceRow.Metric, 5, true);
      v.setUint32(InterfaceRow.NlMtu, 1500, true);
      return 0;
    },
    SetIpInterfaceEntry: (row) => {
      this.calls.push("SetIpInterfaceEntry");
      this.setInterfaces.push(bytesOf(row).slice());
      return this.#o.setInterfaceStatus ?? 0;
    },
    GetUnicastIpAddressTable: (family, out) => {
      this.calls.push(`GetUnicastIpAddressTable ${family}`);
      const rows = (this.#o.addressTable ?? []).filter((r) =>
        new DataView(r.buffer, r.byteOffset).getUint16(0, true) === family
      );
      if (rows.length === 0) return WinError.ERROR_NOT_FOUND;
      const table = new Uint8Array(8 + rows.length * MIB_UNICASTIPADDRESS_ROW_SIZE);
      new DataView(table.buffer).setUint32(0, rows.length, true);
      rows.forEach((r, i) => table.set(r, 8 + i * MIB_UNICASTIPADDRESS_ROW_SIZE));
      this.#keep.push(table);
      const o = bytesOf(out);
      new DataView(o.buffer, o.byteOffset, o.byteLength)
        .setBigUint64(0, Deno.UnsafePointer.value(Deno.UnsafePointer.of(table)) as bigint, true);
      this.#tables++;
      return 0;
    },
    DeleteUnicastIpAddressEntry: (row) => {
      this.calls.push("DeleteUnicastIpAddressEntry");
      this.deletedAddresses.push(bytesOf(row).slice());
      return 0;
    },
    FreeMibTable: () => {
      this.calls.push("FreeMibTable");
      this.#tables--;
    },
    ConvertInterfaceLuidToAlias: (luid, out, length) => {
      this.calls.push("ConvertInterfaceLuidToAlias");
      const l = bytesOf(luid);
      if (new DataView(l.buffer, l.byteOffset, l.byteLength).getBigUint64(0, true) !== this.luid) {
        return WinError.ERROR_FILE_NOT_FOUND;
      }
      const alias = this.#o.alias ?? this.created?.name ?? "";
      const o = bytesOf(out);
      const units = new Uint16Array(o.buffer, o.byteOffset, Number(length));
      if (alias.length + 1 > units.length) return WinError.ERROR_BUFFER_OVERFLOW;
      for (let i = 0; i < alias.length; i++) units[i] = alias.charCodeAt(i);
      units[alias.length] = 0;
      return 0;
    },
  };

  #tables = 0;

  /** MIB tables handed out and not freed. */
  get tablesHeld(): number {
    return this.#tables;
  }

  /** Everything, for `openWindowsTun(options, fake.native)`. */
  get native(): WintunNative {
    return {
      wintun: this.wintun,
      kernel32: this.kernel32,
      kernel32Async: this.kernel32Async,
      iphlpapi: this.iphlpapi,
      release: () => this.calls.push("release"),
    };
  }
}
