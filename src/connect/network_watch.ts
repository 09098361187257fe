/**
 * Notices what makes the tunnel's transports suspect before any keepalive could: a wake from sleep
 * (the wall clock jumped ahead of the monotonic one, which stops while the machine sleeps), a
 * change of this machine's addresses (a new Wi-Fi, a cable, a VPN), and on Linux a change of its
 * default routes (the way to the API server moved without an address change). Polls once a
 * second; reading the interfaces is one `getifaddrs` call, the routes one read of
 * `/proc/net/route`.
 *
 * @module
 */

/** Options for {@linkcode watchNetwork}. */
export interface NetworkWatchOptions {
  /** Called with what happened (`woke from sleep`, `network changed: …`). */
  onChange: (why: string) => void;
  /** Interfaces whose addresses do not count (kconnect's own TUN). */
  ignore?: string[];
  /** Poll interval, ms. Default 1000. */
  intervalMs?: number;
  /** A wall-clock jump beyond the monotonic clock's of more than this is a wake, ms. Default 3000. */
  jumpMs?: number;
  /** The addresses and default routes now (tests give their own). Default: this machine's. */
  addresses?: () => string[];
  /** The clocks (tests give their own). */
  wall?: () => number;
  monotonic?: () => number;
}

/** The non-loopback addresses of this machine, as `name address` strings, sorted. */
export function hostAddresses(ignore: readonly string[] = []): string[] {
  try {
    return Deno.networkInterfaces()
      .filter((i) => !ignore.includes(i.name) && i.address !== "127.0.0.1" && i.address !== "::1")
      .filter((i) => !i.address.startsWith("fe80:"))
      .map((i) => `${i.name} ${i.address}`)
      .sort();
  } catch {
    return [];
  }
}

/**
 * The IPv4 default routes (Linux, from `/proc/net/route`) as `default via <gateway> dev <iface>`
 * strings; none where that file does not exist.
 *
 * @example
 * ```ts
 * import { defaultRoutes } from "./network_watch.ts";
 * defaultRoutes("Iface\tDestination\tGateway\neth0\t00000000\t010200C0\n");
 * // ["default via 192.0.2.1 dev eth0"]
 * ```
 */
export function defaultRoutes(text?: string): string[] {
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync("/proc/net/route");
    } catch {
      return [];
    }
  }
  const out: string[] = [];
  for (const line of text.split("\n").slice(1)) {
    const [iface, dst, gw] = line.trim().split(/\s+/);
    if (dst !== "00000000" || gw === undefined || !/^[0-9A-F]{8}$/i.test(gw)) continue;
    // Little-endian hex, as the kernel stores it.
    const b = [0, 1, 2, 3].map((i) => parseInt(gw.slice(6 - 2 * i, 8 - 2 * i), 16));
    out.push(`default via ${b.join(".")} dev ${iface}`);
  }
  return out.sort();
}

/**
 * What changed between two address lists, for a log line; null when nothing did.
 *
 * @example
 * ```ts
 * import { describeChange } from "./network_watch.ts";
 * describeChange(["wlan0 10.0.0.5"], ["wlan0 192.168.1.7"]);
 * // "network changed: wlan0 192.168.1.7 added, wlan0 10.0.0.5 gone"
 * ```
 */
export function describeChange(before: string[], after: string[]): string | null {
  const added = after.filter((a) => !before.includes(a));
  const gone = before.filter((a) => !after.includes(a));
  if (added.length === 0 && gone.length === 0) return null;
  return `network changed: ${
    [...added.map((a) => `${a} added`), ...gone.map((a) => `${a} gone`)].join(", ")
  }`;
}

/** Starts watching; `stop()` ends it. */
export function watchNetwork(o: NetworkWatchOptions): { stop(): void; check(): void } {
  const wall = o.wall ?? Date.now;
  const mono = o.monotonic ?? (() => performance.now());
  const addresses = o.addresses ?? (() => [...hostAddresses(o.ignore), ...defaultRoutes()]);
  const jump = o.jumpMs ?? 3000;
  let lastWall = wall();
  let lastMono = mono();
  let known = addresses();
  const check = () => {
    const w = wall();
    const m = mono();
    const slept = (w - lastWall) - (m - lastMono);
    lastWall = w;
    lastMono = m;
    const now = addresses();
    const change = describeChange(known, now);
    known = now;
    if (slept > jump) o.onChange(`woke from sleep (about ${Math.round(slept / 1000)} s)`);
    else if (change !== null) o.onChange(change);
  };
  const timer = setInterval(check, o.intervalMs ?? 1000);
  Deno.unrefTimer(timer);
  return { stop: () => clearInterval(timer), check };
}
