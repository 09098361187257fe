/**
 * The admin-only check of wintun.dll's folder: SIDs and ACLs from golden bytes (the layout of
 * `winnt.h`: SID, ACL header, ACCESS_ALLOWED_ACE), and which DACLs are refused. Reading a real
 * descriptor (`GetNamedSecurityInfoW`) is only checked on Windows.
 */
import assert from "node:assert/strict";
import { type Ace, parseAcl, parseSid, untrustedWriters } from "./windows_acl.ts";
import { sha256Hex, verifyWintunFile, WintunPinError } from "../tun/wintun_pin.ts";

function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return new Uint8Array(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

const ADMINS = "S-1-5-32-544";
const TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

// What a folder made in C:\Program Files inherits (icacls shows the same entries).
// deno-fmt-ignore
const PROGRAM_FILES_DACL = hex(`
  02 00 e4 00 09 00 00 00                      # ACL revision 2, size 228, 9 entries
  00 10 28 00 ff 01 1f 00                      # allowed, inherited, full control:
    01 06 00 00 00 00 00 05 50 00 00 00        #   TrustedInstaller
    b5 89 fb 38 19 84 c2 cb 5c 6c 23 6d 57 00 77 6e c0 02 64 87
  00 1b 14 00 00 00 00 10                      # allowed, inherit-only, GENERIC_ALL:
    01 01 00 00 00 00 00 03 00 00 00 00        #   CREATOR OWNER
  00 10 14 00 ff 01 1f 00                      # allowed, inherited, full control:
    01 01 00 00 00 00 00 05 12 00 00 00        #   SYSTEM
  00 1b 14 00 00 00 00 10                      # inherit-only GENERIC_ALL: SYSTEM
    01 01 00 00 00 00 00 05 12 00 00 00
  00 10 18 00 ff 01 1f 00                      # full control: Administrators
    01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00
  00 1b 18 00 00 00 00 10                      # inherit-only GENERIC_ALL: Administrators
    01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00
  00 10 18 00 a9 00 12 00                      # read and execute: Users
    01 02 00 00 00 00 00 05 20 00 00 00 21 02 00 00
  00 1b 18 00 00 00 00 a0                      # inherit-only GENERIC_READ|EXECUTE: Users
    01 02 00 00 00 00 00 05 20 00 00 00 21 02 00 00
  00 10 18 00 a9 00 12 00                      # read and execute: ALL APPLICATION PACKAGES
    01 02 00 00 00 00 00 0f 02 00 00 00 01 00 00 00
`);

Deno.test("parseSid() reads well-known SIDs from their bytes", () => {
  assert.deepEqual(parseSid(hex("01 01 00 00 00 00 00 05 12 00 00 00")), {
    sid: "S-1-5-18",
    length: 12,
  });
  assert.equal(parseSid(hex("01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00")).sid, ADMINS);
  assert.equal(parseSid(PROGRAM_FILES_DACL, 16).sid, TRUSTED_INSTALLER);
  assert.throws(() => parseSid(hex("01 05 00 00 00 00 00 05 12 00 00 00")), RangeError);
  assert.throws(() => parseSid(hex("02 01 00 00 00 00 00 05 12 00 00 00")), RangeError);
});

Deno.test("parseAcl() reads every entry of a Program Files DACL; untrustedWriters() accepts it", () => {
  assert.equal(PROGRAM_FILES_DACL.length, 228);
  const aces = parseAcl(PROGRAM_FILES_DACL);
  assert.deepEqual(aces.map((a) => [a.flags, a.mask >>> 0, a.sid]), [
    [0x10, 0x1f01ff, TRUSTED_INSTALLER],
    [0x1b, 0x10000000, "S-1-3-0"],
    [0x10, 0x1f01ff, "S-1-5-18"],
    [0x1b, 0x10000000, "S-1-5-18"],
    [0x10, 0x1f01ff, ADMINS],
    [0x1b, 0x10000000, ADMINS],
    [0x10, 0x1200a9, "S-1-5-32-545"],
    [0x1b, 0xa0000000, "S-1-5-32-545"],
    [0x10, 0x1200a9, "S-1-15-2-1"],
  ]);
  assert.equal(untrustedWriters(ADMINS, aces), null);
  assert.equal(untrustedWriters(TRUSTED_INSTALLER, aces), null);
  const truncated = PROGRAM_FILES_DACL.slice(0, 100);
  assert.throws(() => parseAcl(truncated), RangeError);
});

Deno.test("untrustedWriters() refuses a user owner, a NULL DACL, and write rights for anyone else", () => {
  const base = parseAcl(PROGRAM_FILES_DACL);
  const with_ = (a: Ace) => [...base, a];
  assert.match(untrustedWriters("S-1-5-21-1-2-3-1001", base)!, /owner is S-1-5-21-1-2-3-1001/);
  assert.match(untrustedWriters(ADMINS, null)!, /no DACL/);
  // Users with Modify on the folder itself (an installer that loosened it).
  assert.match(
    untrustedWriters(ADMINS, with_({ type: 0, flags: 0x10, mask: 0x1301bf, sid: "S-1-5-32-545" }))!,
    /S-1-5-32-545 \(mask 0x1301bf\)/,
  );
  for (const mask of [0x2, 0x4, 0x40, 0x10000, 0x40000, 0x80000, 0x10000000, 0x40000000]) {
    assert.notEqual(
      untrustedWriters(ADMINS, with_({ type: 0, flags: 0, mask, sid: "S-1-5-11" })),
      null,
      `mask 0x${mask.toString(16)}`,
    );
  }
  // Not refused: an entry only for children, a deny entry, read-only rights.
  assert.equal(
    untrustedWriters(ADMINS, with_({ type: 0, flags: 0x0b, mask: 0x1301bf, sid: "S-1-5-11" })),
    null,
  );
  assert.equal(
    untrustedWriters(ADMINS, with_({ type: 1, flags: 0, mask: 0x1f01ff, sid: "S-1-5-11" })),
    null,
  );
  assert.equal(
    untrustedWriters(ADMINS, with_({ type: 0, flags: 0, mask: 0x1200a9, sid: "S-1-1-0" })),
    null,
  );
});

Deno.test("verifyWintunFile() refuses a folder or file others can change, before reading it", async () => {
  const dll = new TextEncoder().encode("dll");
  const pin = { version: "t", sha256: await sha256Hex(dll), provenance: "test" };
  const path = "C:\\Program Files\\kconnect\\wintun.dll";
  const reads: string[] = [];
  const files = {
    readFile: (p: string) => (reads.push(p), Promise.resolve(dll)),
    realPath: (p: string) => Promise.resolve(p),
  };
  const env = { ProgramFiles: "C:\\Program Files" };
  const asked: string[] = [];
  await verifyWintunFile(path, {
    pin,
    files,
    env,
    adminOnly: (p) => (asked.push(p), null),
  });
  assert.deepEqual(asked, ["C:\\Program Files\\kconnect", path]);
  assert.deepEqual(reads, [path]);
  reads.length = 0;
  await assert.rejects(
    () =>
      verifyWintunFile(path, {
        pin,
        files,
        env,
        adminOnly: (p) => (p.endsWith("kconnect") ? "others may change it: S-1-5-11" : null),
      }),
    (e: Error) =>
      e instanceof WintunPinError &&
      /C:\\Program Files\\kconnect must be changeable by administrators only, but others may change it/
        .test(e.message),
  );
  assert.deepEqual(reads, []);
});
