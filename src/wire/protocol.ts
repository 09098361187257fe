/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), as carried in the IPv4
 * Protocol field and the IPv6 Next Header field.
 *
 * @module
 */

/** IPv6 Hop-by-Hop Options extension header (RFC 8200). */
export const IPPROTO_HOPOPTS = 0;
/** Internet Control Message Protocol (RFC 792). */
export const IPPROTO_ICMP = 1;
/** Transmission Control Protocol (RFC 9293). */
export const IPPROTO_TCP = 6;
/** User Datagram Protocol (RFC 768). */
export const IPPROTO_UDP = 17;
/** IPv6 Routing extension header (RFC 8200). */
export const IPPROTO_ROUTING = 43;
/** IPv6 Fragment extension header (RFC 8200). */
export const IPPROTO_FRAGMENT = 44;
/** ICMP for IPv6 (RFC 4443). */
export const IPPROTO_ICMPV6 = 58;
/** IPv6 "No Next Header" (RFC 8200). */
export const IPPROTO_NONE = 59;
/** IPv6 Destination Options extension header (RFC 8200). */
export const IPPROTO_DSTOPTS = 60;
