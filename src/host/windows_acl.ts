/**
 * Whether only administrators can change a file or folder on Windows, read from its security
 * descriptor: the owner must be SYSTEM, Administrators or TrustedInstaller, and no access-allowed
 * entry of the DACL that applies to the object itself may give anyone else a right to write,
 * delete, or change its permissions or owner. Used on `wintun.dll` and its folder before every
 * load (`src/tun/wintun_pin.ts`), on what the service's task runs, and on the folders the
 * daemon writes its log and journal to (`safe_path.ts`).
 *
 * The SID and ACL parsers are pure and tested with golden bytes; reading the descriptor
 * (`advapi32 GetNamedSecurityInfoW`, then `LocalFree`) happens only on Windows.
 *
 * @module
 */

/** SIDs that may write where kconnect loads native code from. */
export const TRUSTED_WRITERS: ReadonlyMap<string, string> = new Map([
  ["S-1-5-18", "SYSTEM"],
  ["S-1-5-32-544", "Administrators"],
  ["S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464", "TrustedInstaller"],
]);

/** Access rights that let a holder change the object or what it holds. */
export const WRITE_RIGHTS = 0x2 | // FILE_WRITE_DATA / FILE_ADD_FILE
  0x4 | // FILE_APPEND_DATA / FILE_ADD_SUBDIRECTORY
  0x10 | // FILE_WRITE_EA
  0x40 | // FILE_DELETE_CHILD
  0x100 | // FILE_WRITE_ATTRIBUTES
  0x10000 | // DELETE
  0x40000 | // WRITE_DAC
  0x80000 | // WRITE_OWNER
  0x02000000 | // MAXIMUM_ALLOWED
  0x10000000 | // GENERIC_ALL
  0x40000000; // GENERIC_WRITE

/** `INHERIT_ONLY_ACE`: the entry is only handed to children; it does not apply here. */
const INHERIT_ONLY_ACE = 0x08;
/** Access-allowed entry types whose body is a mask then a SID (plain and callback). */
const ALLOWED_TYPES = new Set([0x0, 0x9]);
/** Access-allowed object entry types (mask, flags, optional GUIDs, SID). */
const ALLOWED_OBJECT_TYPES = new Set([0x5, 0xb]);

/** One access control entry. */
export interface Ace {
  type: number;
  flags: number;
  mask: number;
  sid: string;
}

/**
 * Reads a binary SID at `offset` as text (`S-1-5-32-544`).
 *
 * @example
 * ```ts
 * import { parseSid } from "./windows_acl.ts";
 * const system = new Uint8Array([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
 * if (parseSid(system).sid !== "S-1-5-18") throw new Error();
 * ```
 */
export function parseSid(bytes: Uint8Array, offset = 0): { sid: string; length: number } {
  if (offset + 8 > bytes.length) throw new RangeError("SID: truncated header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const revision = bytes[offset];
  const count = bytes[offset + 1];
  const length = 8 + 4 * count;
  if (revision !== 1 || count > 15 || offset + length > bytes.length) {
    throw new RangeError("SID: malformed");
  }
  let authority = 0;
  for (let i = 0; i < 6; i++) authority = authority * 256 + bytes[offset + 2 + i];
  const parts = [`S-1-${authority}`];
  for (let i = 0; i < count; i++) parts.push(String(view.getUint32(offset + 8 + 4 * i, true)));
  return { sid: parts.join("-"), length };
}

/** Reads a binary ACL (header, then entries). */
export function parseAcl(bytes: Uint8Array): Ace[] {
  if (bytes.length < 8) throw new RangeError("ACL: truncated header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = view.getUint16(2, true);
  const count = view.getUint16(4, true);
  if (size > bytes.length || size < 8) throw new RangeError("ACL: size beyond the bytes");
  const aces: Ace[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 4 > size) throw new RangeError("ACL: entry beyond the ACL");
    const type = bytes[at];
    const flags = bytes[at + 1];
    const aceSize = view.getUint16(at + 2, true);
    if (aceSize < 8 || at + aceSize > size) throw new RangeError("ACL: entry size");
    const mask = view.getUint32(at + 4, true);
    let sidAt = at + 8;
    if (ALLOWED_OBJECT_TYPES.has(type)) {
      const objectFlags = view.getUint32(at + 8, true);
      sidAt = at + 12 + (objectFlags & 1 ? 16 : 0) + (objectFlags & 2 ? 16 : 0);
    }
    const sid = sidAt + 8 <= at + aceSize
      ? parseSid(bytes.subarray(0, at + aceSize), sidAt).sid
      : "";
    aces.push({ type, flags, mask, sid });
    at += aceSize;
  }
  return aces;
}

/**
 * Why the owner and DACL let someone other than SYSTEM, Administrators or TrustedInstaller
 * change the object, or null when they do not. A NULL DACL (`aces` null) grants everyone all.
 */
export function untrustedWriters(owner: string, aces: Ace[] | null): string | null {
  if (!TRUSTED_WRITERS.has(owner)) return `its owner is ${owner}, not an administrator`;
  if (aces === null) return "it has no DACL, so everyone may change it";
  const others: string[] = [];
  for (const a of aces) {
    if (a.flags & INHERIT_ONLY_ACE) continue;
    if (!ALLOWED_TYPES.has(a.type) && !ALLOWED_OBJECT_TYPES.has(a.type)) continue;
    if ((a.mask & WRITE_RIGHTS) === 0) continue;
    if (!TRUSTED_WRITERS.has(a.sid)) {
      others.push(`${a.sid} (mask 0x${(a.mask >>> 0).toString(16)})`);
    }
  }
  return others.length > 0 ? `others may change it: ${others.join(", ")}` : null;
}

const ADVAPI32_SYMBOLS = {
  /** `DWORD GetNamedSecurityInfoW(LPCWSTR, SE_OBJECT_TYPE, SECURITY_INFORMATION, PSID*, PSID*, PACL*, PACL*, PSECURITY_DESCRIPTOR*)` */
  GetNamedSecurityInfoW: {
    parameters: ["buffer", "u32", "u32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "u32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
const LOCALFREE_SYMBOLS = {
  /** `HLOCAL LocalFree(HLOCAL)` */
  LocalFree: { parameters: ["pointer"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const SE_FILE_OBJECT = 1;
const OWNER_SECURITY_INFORMATION = 0x1;
const DACL_SECURITY_INFORMATION = 0x4;

/**
 * Reads the owner and DACL of a file or folder (Windows only) and says why others could change
 * it, or null when only administrators can.
 */
export function adminOnlyProblem(path: string): string | null {
  if (Deno.build.os !== "windows") throw new Error("adminOnlyProblem: Windows only");
  const advapi = Deno.dlopen("advapi32.dll", ADVAPI32_SYMBOLS);
  const kernel = Deno.dlopen("kernel32.dll", LOCALFREE_SYMBOLS);
  try {
    const name = new Uint16Array(path.length + 1);
    for (let i = 0; i < path.length; i++) name[i] = path.charCodeAt(i);
    const owner = new BigUint64Array(1);
    const dacl = new BigUint64Array(1);
    const sd = new BigUint64Array(1);
    const status = advapi.symbols.GetNamedSecurityInfoW(
      name,
      SE_FILE_OBJECT,
      OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
      owner,
      null,
      dacl,
      null,
      sd,
    );
    if (status !== 0) return `its permissions cannot be read (error ${status})`;
    try {
      const ownerPtr = Deno.UnsafePointer.create(owner[0]);
      if (ownerPtr === null) return "it has no owner";
      const head = new Uint8Array(8);
      Deno.UnsafePointerView.copyInto(ownerPtr, head);
      const sidBytes = new Uint8Array(8 + 4 * Math.min(head[1], 15));
      Deno.UnsafePointerView.copyInto(ownerPtr, sidBytes);
      const ownerSid = parseSid(sidBytes).sid;
      const daclPtr = Deno.UnsafePointer.create(dacl[0]);
      let aces: Ace[] | null = null;
      if (daclPtr !== null) {
        Deno.UnsafePointerView.copyInto(daclPtr, head);
        const acl = new Uint8Array(new DataView(head.buffer).getUint16(2, true));
        Deno.UnsafePointerView.copyInto(daclPtr, acl);
        aces = parseAcl(acl);
      }
      return untrustedWriters(ownerSid, aces);
    } finally {
      const p = Deno.UnsafePointer.create(sd[0]);
      if (p !== null) kernel.symbols.LocalFree(p);
    }
  } finally {
    advapi.close();
    kernel.close();
  }
}
