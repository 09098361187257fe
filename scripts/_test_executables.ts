/**
 * Fabricated executable headers for the build tests: just enough of an ELF, Mach-O or PE file for
 * the build script to tell its target (`tests/build_test.ts`, `scripts/denort_test.ts`).
 *
 * @module
 */

/** A 64-bit little-endian ELF header for `machine` (`e_machine`: 0x3e x86-64, 0xb7 AArch64). */
export function elf(machine: number): Uint8Array {
  const b = new Uint8Array(4096);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  new DataView(b.buffer).setUint16(18, machine, true);
  return b;
}

/** A 64-bit Mach-O header for `cpu` (`cputype`: 0x01000007 x86-64, 0x0100000c arm64). */
export function machO(cpu: number): Uint8Array {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(4, cpu, true);
  return b;
}

/** A PE file's MZ stub and COFF header for `machine` (0x8664 x64, 0xaa64 arm64). */
export function pe(machine: number): Uint8Array {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x5a]);
  v.setUint32(0x3c, 0x80, true);
  v.setUint32(0x80, 0x50450000);
  v.setUint16(0x84, machine, true);
  return b;
}
