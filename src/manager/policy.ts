/**
 * Which destinations the traffic manager refuses to dial for a client: its own loopback and
 * link-local addresses (the node's metadata service at 169.254.169.254 above all), and
 * addresses no pod could ever want (unspecified, multicast, broadcast).
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
  "::/128",
  "::1/128",
  "fe80::/10",
  "ff00::/8",
];

const DEFAULT_CIDRS = DEFAULT_DENIED.map((c) => Cidr.parse(c)!);

/**
 * Why `host` may not be dialled, or null when it may. Hosts must be IP addresses. `denied`
 * defaults to {@linkcode DEFAULT_DENIED}.
 */
export function deniedReason(host: string, denied: readonly Cidr[] = DEFAULT_CIDRS): string | null {
  const a = parseAddress(host);
  if (a === null) return `"${host}" is not an IP address`;
  const hit = denied.find((c) => c.contains(a));
  return hit ? `${host} is in ${hit}, which the traffic manager does not dial` : null;
}
