/**
 * Which packets may ride the tunnel: only those that this machine itself sent (security review
 * M7). A packet that reaches the TUN with a source address this host does not own was forwarded
 * from somewhere else (a LAN host that routes the cluster's prefixes via this machine while
 * `ip_forward` is on, a container or VM behind it) and is dropped, so nobody else rides the
 * session's cluster identity.
 *
 * The set of local addresses comes from `getifaddrs` ({@linkcode Deno.networkInterfaces}, no
 * child process), read at start and again every couple of seconds. The per-packet cost is a Set
 * lookup. A source that is not in the set triggers at most one immediate re-read per
 * `missRefreshMs`, so an address added a moment ago works at once while a flood of forwarded
 * packets costs at most a few re-reads a second.
 *
 * @module
 */
import { formatAddress, parseAddress } from "../wire/address.ts";
import { type Clock, systemClock } from "../io/clock.ts";

/** Decides whether a packet's source address may use the tunnel. */
export interface SourceFilter {
  /** True when `src` (4 or 16 bytes) may use the tunnel. */
  allows(src: Uint8Array): boolean;
  /** Stops any timer the filter runs. */
  close(): void;
}

/** A filter that lets every source through: for tests that feed synthetic packets. */
export const anySource: SourceFilter = { allows: () => true, close: () => {} };

/** Options of {@linkcode LocalAddresses}. */
export interface LocalAddressesOptions {
  /** Lists this host's addresses as text. Default: every address of every interface. */
  list?: () => Iterable<string>;
  /** Re-read the addresses this often, ms; 0 for never (tests). Default 2000. */
  refreshMs?: number;
  /** After an unknown source, re-read at most this often, ms. Default 250. */
  missRefreshMs?: number;
  /** Time source for `missRefreshMs`. Default the monotonic clock. */
  clock?: Clock;
  /** Called when listing the addresses fails (the previous set stays). */
  onError?: (err: unknown) => void;
}

/** Every address on every interface of this network namespace, as text. */
export function systemAddresses(): string[] {
  return Deno.networkInterfaces().map((i) => i.address);
}

function v4Key(a: Uint8Array): number {
  return ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
}

function v6Key(a: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 16; i += 2) s += String.fromCharCode((a[i] << 8) | a[i + 1]);
  return s;
}

const LOOPBACK6 = v6Key(parseAddress("::1")!);

/**
 * This host's own addresses, kept fresh. `127.0.0.0/8` and `::1` always count as local (the
 * kernel owns all of 127/8), and so does every address given to {@linkcode LocalAddresses.pin}
 * (the TUN's own), whatever the last listing said.
 */
export class LocalAddresses implements SourceFilter {
  #v4 = new Set<number>();
  #v6 = new Set<string>([LOOPBACK6]);
  readonly #pinned: Uint8Array[] = [];
  readonly #list: () => Iterable<string>;
  readonly #missRefreshMs: number;
  readonly #clock: Clock;
  readonly #onError: (err: unknown) => void;
  #lastRefresh = -Infinity;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** How many times the list was read. */
  refreshes = 0;

  constructor(options: LocalAddressesOptions = {}) {
    this.#list = options.list ?? systemAddresses;
    this.#missRefreshMs = options.missRefreshMs ?? 250;
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError ?? (() => {});
    this.refresh();
    const every = options.refreshMs ?? 2000;
    if (every > 0) {
      this.#timer = setInterval(() => this.refresh(), every);
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Adds `address` (text or bytes) to the local set for good. */
  pin(address: string | Uint8Array): void {
    const a = typeof address === "string" ? parseAddress(address) : address;
    if (a === null) throw new TypeError(`Cannot pin local address: invalid address ${address}`);
    this.#pinned.push(a.slice());
    this.#add(this.#v4, this.#v6, a);
  }

  /** Reads the addresses again; on failure keeps the previous set. */
  refresh(): void {
    this.#lastRefresh = this.#clock.now();
    this.refreshes++;
    let texts: Iterable<string>;
    try {
      texts = this.#list();
    } catch (err) {
      this.#onError(err);
      return;
    }
    const v4 = new Set<number>();
    const v6 = new Set<string>([LOOPBACK6]);
    for (const t of texts) {
      // getifaddrs may add a zone to link-local addresses ("fe80::1%eth0").
      const a = parseAddress(t.replace(/%.*$/, ""));
      if (a !== null) this.#add(v4, v6, a);
    }
    for (const a of this.#pinned) this.#add(v4, v6, a);
    this.#v4 = v4;
    this.#v6 = v6;
  }

  #add(v4: Set<number>, v6: Set<string>, a: Uint8Array): void {
    if (a.length === 4) v4.add(v4Key(a));
    else v6.add(v6Key(a));
  }

  #has(src: Uint8Array): boolean {
    if (src.length === 4) return src[0] === 127 || this.#v4.has(v4Key(src));
    return src.length === 16 && this.#v6.has(v6Key(src));
  }

  allows(src: Uint8Array): boolean {
    if (this.#has(src)) return true;
    if (this.#clock.now() - this.#lastRefresh < this.#missRefreshMs) return false;
    this.refresh();
    return this.#has(src);
  }

  /** The current set, as text (for logs and tests). */
  addresses(): string[] {
    const out: string[] = [];
    for (const k of this.#v4) {
      out.push(
        formatAddress(new Uint8Array([k >>> 24, (k >>> 16) & 255, (k >>> 8) & 255, k & 255])),
      );
    }
    for (const k of this.#v6) {
      const b = new Uint8Array(16);
      for (let i = 0; i < 8; i++) {
        b[2 * i] = k.charCodeAt(i) >> 8;
        b[2 * i + 1] = k.charCodeAt(i) & 255;
      }
      out.push(formatAddress(b));
    }
    return out;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
