/**
 * Keeps glibc's allocator from handing pages back to the kernel after every bulk send.
 *
 * Each `WebSocket.send` copies its message (a tunnel batch, up to 256 KiB) into a new native
 * buffer and frees it once written. With glibc's default thresholds that buffer is carved from
 * the top of the heap, freed, and the top trimmed back (`brk`) at once, so the next send faults
 * fresh zeroed pages in again: perf put 7–8 % of the laptop process's CPU under one bulk stream
 * in page faults, page clearing and unmapping. Raising the mmap and trim thresholds (and a small
 * top pad) keeps those pages for reuse; memory still returns to the kernel once more than
 * {@linkcode ALLOCATOR_SETTINGS}`.trimThreshold` is free at the top of the heap.
 *
 * glibc only (Linux); elsewhere nothing is done.
 *
 * @module
 */

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_TOP_PAD = -2;
const M_MMAP_THRESHOLD = -3;

/** The thresholds set, bytes. */
export const ALLOCATOR_SETTINGS = {
  /** Allocations at least this large get their own mapping. */
  mmapThreshold: 4 << 20,
  /** Free memory at the top of the heap beyond this goes back to the kernel. */
  trimThreshold: 8 << 20,
  /** Extra the heap grows by when it must grow. */
  topPad: 1 << 20,
} as const;

/** `int mallopt(int param, int value)`: 1 on success. */
export type Mallopt = (param: number, value: number) => number;

function libcMallopt(): Mallopt | null {
  if (Deno.build.os !== "linux") return null;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
    });
    return (param, value) => lib.symbols.mallopt(param, value);
  } catch {
    return null; // not glibc (musl has no such library), or no --allow-ffi
  }
}

/**
 * Sets the thresholds of {@linkcode ALLOCATOR_SETTINGS} through `mallopt` (by default glibc's).
 * Returns whether every setting was taken; false where there is no glibc.
 *
 * @example
 * ```ts
 * import { keepAllocatorPages } from "./allocator.ts";
 * const calls: number[][] = [];
 * keepAllocatorPages((p, v) => (calls.push([p, v]), 1));
 * if (calls.length !== 3) throw new Error("expected three settings");
 * ```
 */
export function keepAllocatorPages(mallopt: Mallopt | null = libcMallopt()): boolean {
  if (mallopt === null) return false;
  const s = ALLOCATOR_SETTINGS;
  return [
    mallopt(M_MMAP_THRESHOLD, s.mmapThreshold),
    mallopt(M_TRIM_THRESHOLD, s.trimThreshold),
    mallopt(M_TOP_PAD, s.topPad),
  ].every((ok) => ok === 1);
}
