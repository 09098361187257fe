/**
 * Which `wintun.dll` kconnect loads, and the checks made before every load: its sha256 must be
 * the pinned one, and it must lie in a directory only administrators can write.
 *
 * Where the pin comes from: Wintun 0.14.1, amd64, as WireGuard LLC ships it in `wintun-0.14.1.zip`
 * (wintun.net). The bytes were compared here in two independent copies, byte-identical: the one
 * sing-tun embeds (`internal/wintun/amd64/wintun.dll`, "DLL version: 0.14.1") and the one in the
 * npm package `@xiaobaidadada/node-tuntap2-wintun@3.0.2` (`wintun_dll/wintun-amd64.dll`,
 * FileVersion 0.14.1). Its Authenticode signature verifies with a matching digest (`osslsigncode
 * verify`): signer "WireGuard LLC" through DigiCert EV, timestamped 2021-10-17. wintun.net itself
 * could not be reached to compare with its zip (`../shared/platform-notes.md`, §C.3). Its
 * `prebuilt-binaries-license.txt` §3d allows shipping it unmodified beside software that uses
 * only the `wintun.h` API, which is what kconnect does.
 *
 * Where it lives: `kconnect install` copies it to `%ProgramFiles%\kconnect\wintun.dll`. Program
 * Files and the folders created in it inherit an ACL where only SYSTEM, Administrators and
 * TrustedInstaller may write; a user cannot create a folder there, so cannot plant one either.
 * The hash is checked on the bytes read just before `Deno.dlopen` loads the file by its path;
 * the admin-only folder is what keeps anyone from swapping the file in between.
 *
 * @module
 */

import { adminOnlyProblem } from "../host/windows_acl.ts";

/** A pinned `wintun.dll`. */
export interface WintunPin {
  /** Wintun's version, e.g. `0.14.1`. */
  version: string;
  /** Lower-case hex sha256 of the DLL. */
  sha256: string;
  /** Where the bytes come from and how they were checked. */
  provenance: string;
}

/** The pins, by `Deno.build.arch`. Only amd64 is pinned; other architectures are refused. */
export const WINTUN_PINS: Readonly<Partial<Record<typeof Deno.build.arch, WintunPin>>> = {
  x86_64: {
    version: "0.14.1",
    sha256: "e5da8447dc2c320edc0fc52fa01885c103de8c118481f683643cacc3220dafce",
    provenance: "wintun-0.14.1.zip bin/amd64/wintun.dll (WireGuard LLC, Authenticode-signed " +
      "2021-10-17); identical to sing-tun's internal/wintun/amd64/wintun.dll and to " +
      "npm @xiaobaidadada/node-tuntap2-wintun@3.0.2 wintun_dll/wintun-amd64.dll",
  },
};

/** The folder, below `%ProgramFiles%`, where `kconnect install` puts `wintun.dll`. */
export const WINTUN_DIR_NAME = "kconnect";
/** The DLL's file name. */
export const WINTUN_FILE_NAME = "wintun.dll";

/**
 * Where kconnect loads `wintun.dll` from: `%ProgramFiles%\kconnect\wintun.dll` (Program Files
 * is `C:\Program Files` when the variable is unset).
 *
 * @example
 * ```ts
 * import { defaultWintunPath } from "./wintun_pin.ts";
 * const p = defaultWintunPath({ ProgramFiles: "D:\\Program Files" });
 * if (p !== "D:\\Program Files\\kconnect\\wintun.dll") throw new Error(p);
 * ```
 */
export function defaultWintunPath(env: Record<string, string | undefined> = envOf()): string {
  return `${programFiles(env)}\\${WINTUN_DIR_NAME}\\${WINTUN_FILE_NAME}`;
}

function envOf(): Record<string, string | undefined> {
  try {
    return { ProgramFiles: Deno.env.get("ProgramFiles") };
  } catch {
    return {};
  }
}

function programFiles(env: Record<string, string | undefined>): string {
  const p = env.ProgramFiles;
  return p && /^[A-Za-z]:\\/.test(p) ? p.replace(/\\+$/, "") : "C:\\Program Files";
}

/** Lower-case hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Why kconnect refuses to load `wintun.dll` (wrong hash, no pin for the architecture). */
export class WintunPinError extends Error {
  override name = "WintunPinError";
}

/**
 * Checks DLL bytes against the pin; resolves when they match.
 *
 * @param bytes The file's content.
 * @param pin The pin (`WINTUN_PINS[Deno.build.arch]`); undefined when the architecture has none.
 * @param path The file, for the message.
 * @throws {WintunPinError} When the hash differs, or no pin exists for the architecture.
 *
 * @example
 * ```ts
 * import { checkWintunBytes } from "./wintun_pin.ts";
 * const abc = new TextEncoder().encode("abc");
 * const pin = {
 *   version: "test",
 *   sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 *   provenance: "FIPS 180-2 example",
 * };
 * await checkWintunBytes(abc, pin); // resolves
 * ```
 */
export async function checkWintunBytes(
  bytes: Uint8Array,
  pin: WintunPin | undefined,
  path = WINTUN_FILE_NAME,
): Promise<void> {
  if (pin === undefined) {
    throw new WintunPinError(
      `Refusing to load ${path}: kconnect pins wintun.dll for x86_64 only (this is ${Deno.build.arch})`,
    );
  }
  const got = await sha256Hex(bytes);
  if (got !== pin.sha256) {
    throw new WintunPinError(
      `Refusing to load ${path}: its sha256 is ${got}, but kconnect accepts only Wintun ` +
        `${pin.version} with sha256 ${pin.sha256} (${pin.provenance}). ` +
        "Reinstall it with `kconnect install`, or put that exact file there.",
    );
  }
}

/**
 * Why `path` is not a place only administrators can write, or null when it is, judged from its
 * location: its real path (junctions and links resolved) must be the file directly in
 * `%ProgramFiles%\kconnect`, whose inherited ACL lets only SYSTEM, Administrators and
 * TrustedInstaller write. The ACL itself is not read here (a Windows-only check, not yet done).
 *
 * @param path The DLL path as given.
 * @param realPath The same path with links resolved (`Deno.realPath`).
 * @param env Where `ProgramFiles` is read.
 */
export function wintunLocationProblem(
  path: string,
  realPath: string,
  env: Record<string, string | undefined> = envOf(),
): string | null {
  const want = defaultWintunPath(env).toLowerCase();
  // Deno.realPath on Windows may answer with the \\?\ prefix.
  const real = realPath.replace(/^\\\\\?\\/, "").toLowerCase();
  if (real !== want) {
    return `${path} is not ${defaultWintunPath(env)} (resolves to ${realPath}); ` +
      "kconnect loads wintun.dll only from there, a folder only administrators can write";
  }
  return null;
}

/** How {@linkcode verifyWintunFile} reaches the file system (tests pass their own). */
export interface WintunFileAccess {
  readFile(path: string): Promise<Uint8Array>;
  realPath(path: string): Promise<string>;
}

const REAL_FILES: WintunFileAccess = {
  readFile: (path) => Deno.readFile(path),
  realPath: (path) => Deno.realPath(path),
};

/**
 * Checks the file at `path` before it is loaded: its location (admin-only folder, unless
 * `checkLocation` is false), the ACLs of that folder and the file (on Windows), and its sha256
 * against the pin.
 *
 * @throws {WintunPinError} On a wrong location or hash; `Deno.errors.NotFound` when missing.
 */
export async function verifyWintunFile(
  path: string,
  options: {
    pin?: WintunPin;
    checkLocation?: boolean;
    files?: WintunFileAccess;
    env?: Record<string, string | undefined>;
    /**
     * Why others than administrators could change a path, or null; checked on the folder and
     * the file. Default: their ACLs on Windows (`src/host/windows_acl.ts`), nothing elsewhere.
     */
    adminOnly?: (path: string) => string | null;
  } = {},
): Promise<void> {
  const files = options.files ?? REAL_FILES;
  if (options.checkLocation ?? true) {
    let real: string;
    try {
      real = await files.realPath(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          `wintun.dll is not at ${path}: install it with \`kconnect install\` (as administrator)`,
        );
      }
      throw err;
    }
    const problem = wintunLocationProblem(path, real, options.env ?? envOf());
    if (problem !== null) throw new WintunPinError(`Refusing to load ${problem}`);
    const adminOnly = options.adminOnly ??
      (Deno.build.os === "windows" ? adminOnlyProblem : undefined);
    if (adminOnly !== undefined) {
      const folder = real.slice(0, real.lastIndexOf("\\"));
      for (const p of [folder, real]) {
        const why = adminOnly(p);
        if (why !== null) {
          throw new WintunPinError(
            `Refusing to load ${path}: ${p} must be changeable by administrators only, but ${why}`,
          );
        }
      }
    }
  }
  const pin = "pin" in options ? options.pin : WINTUN_PINS[Deno.build.arch];
  await checkWintunBytes(await files.readFile(path), pin, path);
}
