/**
 * The DNS servers this machine uses now: the nameservers of `/etc/resolv.conf` and, behind
 * systemd-resolved's stub, its upstream servers (`/run/systemd/resolve/resolv.conf`). The route
 * plan keeps them out of the tunnel, so a cluster can never take the machine's own DNS traffic.
 *
 * @module
 */
import { parseResolvConf } from "../dns/resolv_conf.ts";
import { parseAddress } from "../wire/address.ts";

/** Files that list the machine's DNS servers. */
export const SYSTEM_RESOLV_FILES = ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];

/** Whether `a` is a loopback address (never routed, so never at risk). */
function loopback(a: Uint8Array): boolean {
  return a.length === 4 ? a[0] === 127 : a.every((b, i) => b === (i === 15 ? 1 : 0));
}

/**
 * The non-loopback nameserver addresses in `files` (missing files are skipped), each once;
 * `except` are left out (kconnect's own server, when its resolv.conf is in place).
 */
export async function systemDnsServers(
  files: readonly string[] = SYSTEM_RESOLV_FILES,
  except: readonly string[] = [],
): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch {
      continue;
    }
    for (const s of parseResolvConf(text).nameservers) {
      const bare = s.replace(/%.*$/, ""); // fe80::1%eth0
      const a = parseAddress(bare);
      if (a === null || loopback(a) || except.includes(bare) || out.includes(bare)) continue;
      out.push(bare);
    }
  }
  return out;
}
