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

/** `int malloc_trim(size_t pad)`: 1 when memory went back to the kernel. */
export type MallocTrim = (pad: bigint) => number;

const GLIBC_SYMBOLS = {
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const;
let glibc: Deno.DynamicLibrary<typeof GLIBC_SYMBOLS>["symbols"] | null | undefined;

/** glibc's allocator functions, opened once; null where there is no glibc or no FFI. */
function glibcSymbols(): Deno.DynamicLibrary<typeof GLIBC_SYMBOLS>["symbols"] | null {
  if (glibc !== undefined) return glibc;
  glibc = null;
  if (Deno.build.os !== "linux") return null;
  try {
    glibc = Deno.dlopen("libc.so.6", GLIBC_SYMBOLS).symbols;
  } catch {
    // not glibc (musl has no such library), or no --allow-ffi
  }
  return glibc;
}

function libcMallopt(): Mallopt | null {
  const g = glibcSymbols();
  return g === null ? null : (param, value) => g.mallopt(param, value);
}

function libcMallocTrim(): MallocTrim | null {
  const g = glibcSymbols();
  return g === null ? null : (pad) => g.malloc_trim(pad);
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

/**
 * Hands the allocator's free pages back to the kernel (glibc's `malloc_trim(0)`: every arena,
 * not only the top of the heap). The thresholds of {@linkcode keepAllocatorPages} keep pages for
 * the next bulk send; once the traffic has stopped they are only resident memory, often tens of
 * MB after a burst. Takes a few milliseconds; meant for when the process has gone idle. Returns
 * whether memory was released; false where there is no glibc.
 *
 * @example
 * ```ts
 * import { releaseAllocatorPages } from "./allocator.ts";
 * const pads: bigint[] = [];
 * releaseAllocatorPages((pad) => (pads.push(pad), 1));
 * if (pads.length !== 1 || pads[0] !== 0n) throw new Error("expected malloc_trim(0)");
 * ```
 */
export function releaseAllocatorPages(trim: MallocTrim | null = libcMallocTrim()): boolean {
  return trim !== null && trim(0n) === 1;
}
