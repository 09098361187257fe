/**
 * Public top-level domains, so a namespace that shares a name with one (`dev`, `app`, `shop`, …)
 * never takes that part of the Internet's names away.
 *
 * @module
 */
import tlds from "tlds" with { type: "json" };

const TLDS = new Set<string>(tlds);

/** Whether `label` is a top-level domain of the public DNS (`dev`, `app`, `io`, …). */
export function isPublicTld(label: string): boolean {
  return TLDS.has(label.toLowerCase());
}
