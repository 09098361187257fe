/** The wintun.dll pin: accepted bytes, refused bytes, the location check, and no load on refusal. */
import assert from "node:assert/strict";
import {
  checkWintunBytes,
  defaultWintunPath,
  sha256Hex,
  verifyWintunFile,
  WINTUN_PINS,
  type WintunFileAccess,
  wintunLocationProblem,
  WintunPinError,
} from "./wintun_pin.ts";
import { loadWintunNative } from "./windows.ts";

const DLL = new TextEncoder().encode("MZ\x90\x00 stand-in for wintun.dll");
const PIN = {
  version: "test",
  sha256: "", // set below from the bytes
  provenance: "made up in this test",
};
PIN.sha256 = await sha256Hex(DLL);

const ENV = { ProgramFiles: "C:\\Program Files" };
const PATH = "C:\\Program Files\\kconnect\\wintun.dll";

function files(map: Record<string, { real: string; bytes: Uint8Array }>): WintunFileAccess & {
  reads: string[];
} {
  const reads: string[] = [];
  return {
    reads,
    readFile: (p) => {
      reads.push(p);
      const f = map[p];
      return f ? Promise.resolve(f.bytes) : Promise.reject(new Deno.errors.NotFound(p));
    },
    realPath: (p) => {
      const f = map[p];
      return f ? Promise.resolve(f.real) : Promise.reject(new Deno.errors.NotFound(p));
    },
  };
}

Deno.test("the amd64 pin is Wintun 0.14.1's sha256 from the notes, with its provenance", () => {
  const pin = WINTUN_PINS.x86_64!;
  assert.equal(pin.version, "0.14.1");
  assert.equal(pin.sha256, "e5da8447dc2c320edc0fc52fa01885c103de8c118481f683643cacc3220dafce");
  assert.match(pin.provenance, /WireGuard LLC/);
  assert.equal(WINTUN_PINS.aarch64, undefined, "arm64 is not pinned: refused");
});

Deno.test("sha256Hex() is SHA-256 (FIPS 180-2 'abc')", async () => {
  assert.equal(
    await sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("checkWintunBytes() accepts the pinned bytes and refuses any other, one bit off included", async () => {
  await checkWintunBytes(DLL, PIN);
  const flipped = DLL.slice();
  flipped[flipped.length - 1] ^= 1;
  await assert.rejects(() => checkWintunBytes(flipped, PIN, "x.dll"), (e: Error) => {
    assert.ok(e instanceof WintunPinError);
    assert.match(
      e.message,
      /Refusing to load x\.dll: its sha256 is [0-9a-f]{64}, but kconnect accepts only Wintun test with sha256 /,
    );
    return true;
  });
  // The real pin refuses these made-up bytes too.
  await assert.rejects(() => checkWintunBytes(DLL, WINTUN_PINS.x86_64), WintunPinError);
  await assert.rejects(() => checkWintunBytes(DLL, undefined), /pins wintun\.dll for x86_64 only/);
});

Deno.test("wintunLocationProblem() accepts only %ProgramFiles%\\kconnect\\wintun.dll once links are resolved", () => {
  assert.equal(defaultWintunPath(ENV), PATH);
  assert.equal(defaultWintunPath({}), PATH);
  assert.equal(defaultWintunPath({ ProgramFiles: "relative\\path" }), PATH);
  assert.equal(wintunLocationProblem(PATH, PATH, ENV), null);
  assert.equal(wintunLocationProblem(PATH, `\\\\?\\${PATH.toUpperCase()}`, ENV), null);
  assert.match(
    wintunLocationProblem(PATH, "C:\\Users\\eve\\wintun.dll", ENV)!,
    /resolves to C:\\Users\\eve\\wintun\.dll/,
  );
  assert.notEqual(wintunLocationProblem("C:\\Temp\\wintun.dll", "C:\\Temp\\wintun.dll", ENV), null);
});

Deno.test("verifyWintunFile() checks location and hash before anything is loaded", async () => {
  const good = files({ [PATH]: { real: PATH, bytes: DLL } });
  await verifyWintunFile(PATH, { pin: PIN, files: good, env: ENV });
  assert.deepEqual(good.reads, [PATH]);

  const junction = files({ [PATH]: { real: "C:\\Users\\eve\\wintun.dll", bytes: DLL } });
  await assert.rejects(
    () => verifyWintunFile(PATH, { pin: PIN, files: junction, env: ENV }),
    WintunPinError,
  );
  assert.deepEqual(junction.reads, [], "not even read from a user's folder");

  const swapped = files({ [PATH]: { real: PATH, bytes: new Uint8Array([1, 2, 3]) } });
  await assert.rejects(
    () => verifyWintunFile(PATH, { pin: PIN, files: swapped, env: ENV }),
    /its sha256 is/,
  );
  await assert.rejects(
    () => verifyWintunFile(PATH, { pin: PIN, files: files({}), env: ENV }),
    /kconnect install/,
  );
});

Deno.test("verifyWintunFile() on a real file: a wrong hash is refused, the right one accepted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/wintun.dll`;
    await Deno.writeFile(path, DLL);
    await verifyWintunFile(path, { pin: PIN, checkLocation: false });
    await Deno.writeFile(path, new Uint8Array([0]), { append: true });
    await assert.rejects(
      () => verifyWintunFile(path, { pin: PIN, checkLocation: false }),
      WintunPinError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "loadWintunNative() refuses to run off Windows",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await assert.rejects(() => loadWintunNative(), /Windows only/);
  },
});
