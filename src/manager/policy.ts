/**
 * Which destinations the traffic manager refuses to dial for a client: its own loopback and
 * link-local addresses (the node's metadata service at 169.254.169.254 above all), the cloud
 * metadata and host services at other addresses (AWS's IMDS over IPv6, Alibaba Cloud's, Azure's
 * WireServer), and addresses no pod could ever want (unspecified, multicast, broadcast).
 *
 * @module
 */
import { Cidr, parseAddress } from "../wire/address.ts";

/** The prefixes denied by default. */
export const DEFAULT_DENIED: readonly string[] = [
  "0.0.0.0/8",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "224.0.0.0/4",
  "255.255.255.255/32",
  // Cloud metadata and host agents outside 169.254.0.0/16: Alibaba Cloud's metadata service,
  // Azure's WireServer (VM agent, extensions, their settings), AWS's IMDS over IPv6 (Nitro).
  "100.100.100.200/32",
  "168.63.129.16/32",
  "fd00:ec2::254/128",
  "::/128",
  "::1/128",
  "fe80::/10",
  "ff00::/8",
  // IPv4 embedded in IPv6 is checked as IPv4 below; NAT64 is refused outright.
  "64:ff9b::/96",
  "64:ff9b:1::/48",
];

const DEFAULT_CIDRS = DEFAULT_DENIED.map((c) => Cidr.parse(c)!);

/**
 * The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`)
 * IPv6 address, which a dual-stack socket would reach; null for any other address.
 */
function embeddedIpv4(a: Uint8Array): Uint8Array | null {
  if (a.length !== 16) return null;
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return null;
  const mapped = a[10] === 0xff && a[11] === 0xff;
  const compatible = a[10] === 0 && a[11] === 0;
  return mapped || compatible ? a.slice(12) : null;
}

/**
 * Why `host` may not be dialled, or null when it may. Hosts must be IP addresses. `denied`
 * defaults to {@linkcode DEFAULT_DENIED}.
 */
export function deniedReason(host: string, denied: readonly Cidr[] = DEFAULT_CIDRS): string | null {
  const parsed = parseAddress(host);
  if (parsed === null) return `"${host}" is not an IP address`;
  const a = embeddedIpv4(parsed) ?? parsed;
  const hit = denied.find((c) => c.contains(a));
  return hit ? `${host} is in ${hit}, which the traffic manager does not dial` : null;
}
