/**
 * Top-level names a cluster must never take over: the public DNS's top-level domains (`dev`,
 * `app`, `shop`, …) and the special-use or commonly private ones (`local` for mDNS, `localhost`,
 * `internal`, `lan`, `home`, `corp`, `test`, …). A namespace that shares a name with one is not
 * made a routing domain, so that part of the machine's names keeps resolving as before.
 *
 * @module
 */
import tlds from "tlds" with { type: "json" };

const TLDS = new Set<string>(tlds);

/**
 * Special-use names (RFC 6761, RFC 6762 `local`, RFC 9476 `alt`, ICANN's `internal`) and the
 * private top-level names that home routers and company networks use (`lan`, `home`, `corp`,
 * …; ICANN's name-collision list). None is in the public root zone, and each is somebody's.
 */
export const LOCAL_USE_TOP_LEVEL: ReadonlySet<string> = new Set([
  "alt",
  "corp",
  "example",
  "home",
  "internal",
  "intranet",
  "invalid",
  "lan",
  "local",
  "localdomain",
  "localhost",
  "onion",
  "private",
  "test",
]);

/** Lower case, without trailing dots: how a label is compared. */
function normal(label: string): string {
  return label.toLowerCase().replace(/\.+$/, "");
}

/** Whether `label` is a top-level domain of the public DNS (`dev`, `app`, `io`, `com.`, …). */
export function isPublicTld(label: string): boolean {
  return TLDS.has(normal(label));
}

/**
 * Whether `label` names a top level the machine may already use: a public TLD or one of
 * {@linkcode LOCAL_USE_TOP_LEVEL}. Such a namespace never becomes a routing domain.
 */
export function sharesTopLevel(label: string): boolean {
  const n = normal(label);
  return TLDS.has(n) || LOCAL_USE_TOP_LEVEL.has(n);
}
