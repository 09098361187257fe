/**
 * The offline path of `scripts/build.ts`: checks a directory of Deno runtime zips
 * (`denort-<target>.zip`, named as Deno's download host and its GitHub releases name them)
 * against the pinned manifest `scripts/denort-manifest.json`, and seeds a private `DENO_DIR`
 * with the accepted ones so that `deno compile --target <target>` finds them in its cache and
 * never downloads.
 *
 * Why a manifest: `deno compile` reads `$DENO_DIR/dl/release/v<deno version>/denort-<target>.zip`
 * from its cache as-is, with no checksum (see `../shared/platform-notes.md`, section A), so a zip
 * brought in by hand is trusted only as far as this check goes. A zip is accepted only when
 * all of these hold:
 *
 * - the manifest is for the Deno version that runs the build (the cache path has the version
 *   in it, and a runtime of another version would not match the program's snapshot);
 * - the file is `denort-<target>.zip` for a target the manifest lists, and it is a zip;
 * - it holds `denort` (`denort.exe` for Windows), not `deno`: the Deno CLI's own release zips
 *   (`deno-<target>.zip`) and the npm packages `@deno/*` hold the CLI, which `deno compile`
 *   accepts but whose output ignores the embedded program (it starts the REPL);
 * - that executable's header (ELF, Mach-O or PE) says it is built for that target;
 * - its sha256 equals the one the manifest pins for that target;
 * - then, and only then (it executes the file), for this machine's own target: run with
 *   `--version` it does not answer as the CLI does (`deno 2.9.6 (stable, …)`; a real denort
 *   exits 1, finding no program in itself).
 *
 * The CLI renamed to `denort` inside a zip for another machine's target passes the static
 * checks; the pinned sha256 is what refuses it. That is why a target with no pinned sha256
 * (`"sha256": null`) is refused rather than trusted on structure alone.
 *
 * Pinning (`deno task build --pin --runtime-dir DIR`): writes into the manifest the sha256 of
 * each zip in DIR that passes the checks above (the run only after the next one) and whose
 * `.sha256sum` file (the one
 * the release publishes beside each zip, `denort-<target>.zip.sha256sum`) lies beside it and
 * agrees. Take both from the GitHub release of the pinned Deno version
 * (`https://github.com/denoland/deno/releases/download/v<ver>/`), whose page also shows
 * GitHub's own digest of each asset, not from `dl.deno.land`: for versions promoted to LTS that
 * host serves re-stamped zips whose bytes differ from the release's, and for v2.9.3 its
 * `.sha256sum` files described the old bytes (denoland/deno#36235, fixed for later promotions
 * by #36237). The sidecar catches a damaged download, not a forged one: the trust comes from
 * the manifest change being reviewed against the release page like any other commit. `--pin`
 * never overwrites a different pinned value (a different hash for the same release is exactly
 * what the manifest is there to catch); edit the file by hand if the pin really must change.
 *
 * @module
 */

import { basename, join } from "node:path";
import { detectBinaryTarget, type Target, TARGETS } from "./build.ts";

/** One target's entry in the manifest. */
export interface ManifestEntry {
  /** The zip's file name, `denort-<target>.zip`. */
  file: string;
  /** Its sha256 in lowercase hex, or `null` while none is pinned (the target is refused). */
  sha256: string | null;
  /** Where the value comes from, or why there is none. */
  note?: string;
}

/** The pinned manifest of denort runtimes for one Deno version. */
export interface RuntimeManifest {
  /** The Deno version the runtimes belong to, e.g. `"2.9.6"`. */
  denoVersion: string;
  /** Anything said about the manifest as a whole. */
  note?: string;
  /** One entry per target. */
  targets: Partial<Record<Target, ManifestEntry>>;
}

/**
 * The file name of a target's runtime zip, as Deno's download host names it.
 *
 * @example
 * ```ts
 * import { runtimeZipName } from "./denort.ts";
 * runtimeZipName("aarch64-apple-darwin"); // "denort-aarch64-apple-darwin.zip"
 * ```
 */
export function runtimeZipName(target: Target): string {
  return `denort-${target}.zip`;
}

/** Where `deno compile` looks for a runtime zip in `denoDir` (Deno's `get_base_binary`). */
export function cachedRuntimePath(denoDir: string, denoVersion: string, target: Target): string {
  return join(denoDir, "dl", "release", `v${denoVersion}`, runtimeZipName(target));
}

/**
 * Reads and checks the shape of a manifest file; throws an Error naming the file and the
 * problem.
 *
 * @example
 * ```ts ignore
 * import { readManifest } from "./denort.ts";
 * const manifest = await readManifest("scripts/denort-manifest.json");
 * ```
 */
export async function readManifest(path: string): Promise<RuntimeManifest> {
  let data: unknown;
  try {
    data = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new Error(`cannot read the runtime manifest ${path}: ${(err as Error).message}`);
  }
  const bad = (what: string) => new Error(`the runtime manifest ${path} is malformed: ${what}`);
  if (typeof data !== "object" || data === null) throw bad("not a JSON object");
  const { denoVersion, targets } = data as Record<string, unknown>;
  if (typeof denoVersion !== "string" || !/^\d+\.\d+\.\d+/.test(denoVersion)) {
    throw bad('"denoVersion" must be a version string such as "2.9.6"');
  }
  if (typeof targets !== "object" || targets === null) throw bad('"targets" must be an object');
  for (const [target, entry] of Object.entries(targets)) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      throw bad(`unknown target ${target}`);
    }
    const { file, sha256 } = (entry ?? {}) as Record<string, unknown>;
    if (file !== runtimeZipName(target as Target)) {
      throw bad(`${target}: "file" must be ${runtimeZipName(target as Target)}`);
    }
    if (sha256 !== null && (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256))) {
      throw bad(`${target}: "sha256" must be 64 lowercase hex digits or null`);
    }
  }
  return data as RuntimeManifest;
}

/** One file in a zip's central directory. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated; others are not read. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  localOffset: number;
}

/**
 * Lists the files of a zip from its central directory; throws when `bytes` is not a zip this
 * reader understands (no end-of-central-directory record, or ZIP64).
 *
 * @example
 * ```ts ignore
 * import { listZip } from "./denort.ts";
 * listZip(await Deno.readFile("denort-x86_64-unknown-linux-gnu.zip")).map((e) => e.name);
 * ```
 */
export function listZip(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip file (no end of central directory)");
  const count = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  if (count === 0xffff || at === 0xffffffff) throw new Error("ZIP64 archives are not read");
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== 0x02014b50) {
      throw new Error("not a zip file (broken central directory)");
    }
    const nameLength = view.getUint16(at + 28, true);
    const skip = nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    entries.push({
      name: decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    });
    at += 46 + skip;
  }
  return entries;
}

function entryData(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.localOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== 0x04034b50) {
    throw new Error(`broken local header for ${entry.name}`);
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + entry.compressedSize > bytes.length) throw new Error(`${entry.name} is truncated`);
  return bytes.subarray(start, start + entry.compressedSize);
}

function entryStream(bytes: Uint8Array, entry: ZipEntry): ReadableStream<Uint8Array> {
  const data = entryData(bytes, entry);
  const raw = new Blob([data as Uint8Array<ArrayBuffer>]).stream();
  if (entry.method === 0) return raw;
  if (entry.method === 8) return raw.pipeThrough(new DecompressionStream("deflate-raw"));
  throw new Error(`${entry.name} uses compression method ${entry.method}, not read here`);
}

/**
 * The first `limit` bytes of a zip entry's content (fewer if it is shorter).
 *
 * @example
 * ```ts ignore
 * import { listZip, readZipEntryHead } from "./denort.ts";
 * const zip = await Deno.readFile("denort-x86_64-unknown-linux-gnu.zip");
 * await readZipEntryHead(zip, listZip(zip)[0], 512);
 * ```
 */
export async function readZipEntryHead(
  bytes: Uint8Array,
  entry: ZipEntry,
  limit: number,
): Promise<Uint8Array> {
  const reader = entryStream(bytes, entry).getReader();
  const head = new Uint8Array(limit);
  let filled = 0;
  try {
    while (filled < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, limit - filled);
      head.set(value.subarray(0, take), filled);
      filled += take;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return head.subarray(0, filled);
}

/** Writes a zip entry's content to `path` (created with mode 0755). */
async function extractZipEntry(bytes: Uint8Array, entry: ZipEntry, path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o755 });
  await entryStream(bytes, entry).pipeTo(file.writable);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What the checks found for one target's zip. */
export interface RuntimeCheck {
  target: Target;
  /** The zip's path in the runtime directory. */
  path: string;
  /** Its sha256, when the file could be read. */
  sha256?: string;
  /** Why it is refused; absent when accepted. */
  error?: string;
  /** True when the only problem is that the manifest pins no sha256 for the target. */
  unpinned?: boolean;
}

/** Options of {@linkcode checkRuntimeZip} and {@linkcode checkRuntimeDir}. */
export interface CheckOptions {
  /** The target of this machine; its runtime is run once (`--version`). Default: Deno's. */
  hostTarget?: string;
  /** The Deno version the build runs with. Default: this Deno's. */
  denoVersion?: string;
  /** The manifest's path, for messages. */
  manifestPath?: string;
}

/**
 * The static checks of one zip (nothing is run): it is a zip holding `denort` (`denort.exe` for
 * Windows) whose header says it is built for `target`. Returns the problem, or `undefined`.
 */
export async function checkRuntimeContent(
  bytes: Uint8Array,
  target: Target,
): Promise<string | undefined> {
  let entries: ZipEntry[];
  try {
    entries = listZip(bytes);
  } catch (err) {
    return (err as Error).message;
  }
  const windows = target.includes("windows");
  const wanted = windows ? "denort.exe" : "denort";
  const entry = entries.find((e) => e.name === wanted);
  if (!entry) {
    const cli = entries.find((e) => e.name === (windows ? "deno.exe" : "deno"));
    if (cli) {
      return `it holds ${cli.name}, the Deno CLI (what deno-${target}.zip and the npm ` +
        `packages @deno/* contain), not the runtime ${wanted}; a program compiled onto the CLI ` +
        `ignores itself and starts deno. Bring denort-${target}.zip from the Deno release.`;
    }
    return `it holds no ${wanted} (files: ${entries.map((e) => e.name).join(", ") || "none"})`;
  }
  let head: Uint8Array;
  try {
    head = await readZipEntryHead(bytes, entry, 512);
  } catch (err) {
    return `cannot read ${wanted} in it: ${(err as Error).message}`;
  }
  const built = detectBinaryTarget(head);
  if (built !== target) {
    return `the ${wanted} in it is built for ${
      built ?? "no kconnect target (not an ELF, Mach-O or PE executable of one)"
    }, not ${target}`;
  }
  return undefined;
}

/**
 * For this machine's own target only: runs the zip's `denort` once with `--version` and refuses
 * it if it answers as the Deno CLI does. Call it only on a zip already trusted by its pinned
 * sha256 (or, when pinning, by its `.sha256sum`): it executes the file. Returns the problem, or
 * `undefined` (also for other targets, which cannot run here).
 */
export async function probeRuntime(
  bytes: Uint8Array,
  target: Target,
  hostTarget: string = Deno.build.target,
): Promise<string | undefined> {
  if (target !== hostTarget) return undefined;
  const wanted = target.includes("windows") ? "denort.exe" : "denort";
  const dir = await Deno.makeTempDir({ prefix: "kc-denort-probe-" });
  try {
    const entry = listZip(bytes).find((e) => e.name === wanted);
    if (!entry) return `it holds no ${wanted}`;
    const exe = join(dir, wanted);
    await extractZipEntry(bytes, entry, exe);
    const out = await new Deno.Command(exe, {
      args: ["--version"],
      stdin: "null",
      env: { NO_COLOR: "1" },
      clearEnv: true,
      signal: AbortSignal.timeout(30_000),
    }).output();
    const said = new TextDecoder().decode(out.stdout).trim();
    if (out.success && /^deno \d/.test(said)) {
      return `the ${wanted} in it is the Deno CLI renamed: \`${wanted} --version\` printed ` +
        `"${said.split("\n")[0]}" (a real denort finds no program in itself and exits 1)`;
    }
  } catch (err) {
    return `the ${wanted} in it does not run on this machine: ${(err as Error).message}`;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return undefined;
}

/**
 * Checks `dir/denort-<target>.zip` against `manifest`: present, the static checks of
 * {@linkcode checkRuntimeContent}, the pinned sha256, and only then, for this machine's target,
 * {@linkcode probeRuntime} (which runs it).
 *
 * @example
 * ```ts ignore
 * import { checkRuntimeZip, readManifest } from "./denort.ts";
 * const manifest = await readManifest("scripts/denort-manifest.json");
 * await checkRuntimeZip("runtimes", "x86_64-unknown-linux-gnu", manifest);
 * ```
 */
export async function checkRuntimeZip(
  dir: string,
  target: Target,
  manifest: RuntimeManifest,
  options: CheckOptions = {},
): Promise<RuntimeCheck> {
  const path = join(dir, runtimeZipName(target));
  const manifestPath = options.manifestPath ?? "the manifest";
  const entry = manifest.targets[target];
  if (!entry) {
    return { target, path, error: `${manifestPath} has no entry for ${target}` };
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    let hint = "";
    try {
      await Deno.stat(join(dir, `deno-${target}.zip`));
      hint = ` (deno-${target}.zip is there: that is the Deno CLI, not the runtime)`;
    } catch {
      // nothing to add
    }
    return { target, path, error: `missing: no ${basename(path)} in ${dir}${hint}` };
  }
  const sha256 = await sha256Hex(bytes);
  const problem = await checkRuntimeContent(bytes, target);
  if (problem) return { target, path, sha256, error: `${basename(path)}: ${problem}` };
  if (entry.sha256 === null) {
    return {
      target,
      path,
      sha256,
      unpinned: true,
      error: `${manifestPath} pins no sha256 for ${target}, so ${basename(path)} ` +
        `(sha256 ${sha256}) cannot be trusted. Pin it from the Deno ${manifest.denoVersion} ` +
        `GitHub release: put the release's ${basename(path)} and ${basename(path)}.sha256sum ` +
        `in one directory, run \`deno task build --pin --runtime-dir <that directory> ` +
        `--target ${target}\`, compare the value written with the release page's digest, and ` +
        `commit the manifest.`,
    };
  }
  if (entry.sha256 !== sha256) {
    return {
      target,
      path,
      sha256,
      error: `${basename(path)}: sha256 mismatch: the file has ${sha256}, ${manifestPath} pins ` +
        `${entry.sha256} for Deno ${manifest.denoVersion}`,
    };
  }
  // Only now, with the sha256 the pinned one, is it run (this machine's target only).
  const probed = await probeRuntime(bytes, target, options.hostTarget);
  if (probed) return { target, path, sha256, error: `${basename(path)}: ${probed}` };
  return { target, path, sha256 };
}

/**
 * Refuses a manifest made for another Deno version than the one running the build; returns the
 * problem or `undefined`.
 */
export function checkManifestVersion(
  manifest: RuntimeManifest,
  options: CheckOptions = {},
): string | undefined {
  const running = options.denoVersion ?? Deno.version.deno;
  if (manifest.denoVersion === running) return undefined;
  return `${options.manifestPath ?? "the runtime manifest"} is for Deno ${manifest.denoVersion}, ` +
    `but the build runs with deno ${running}: deno compile would look for the runtime of ` +
    `${running} (dl/release/v${running}/) and a runtime of another version does not fit the ` +
    `program it compiles. Build with deno ${manifest.denoVersion}, or pin the runtimes of ${running}.`;
}

/**
 * Checks every target's zip in `dir` (after the manifest's Deno version).
 *
 * @example
 * ```ts ignore
 * import { checkRuntimeDir, readManifest } from "./denort.ts";
 * const manifest = await readManifest("scripts/denort-manifest.json");
 * const checks = await checkRuntimeDir("runtimes", ["aarch64-apple-darwin"], manifest);
 * checks.every((c) => !c.error);
 * ```
 */
export async function checkRuntimeDir(
  dir: string,
  targets: readonly Target[],
  manifest: RuntimeManifest,
  options: CheckOptions = {},
): Promise<RuntimeCheck[]> {
  const versionProblem = checkManifestVersion(manifest, options);
  if (versionProblem) {
    return targets.map((target) => ({
      target,
      path: join(dir, runtimeZipName(target)),
      error: versionProblem,
    }));
  }
  const checks: RuntimeCheck[] = [];
  for (const target of targets) checks.push(await checkRuntimeZip(dir, target, manifest, options));
  return checks;
}

/**
 * Makes `denoDir` a private Deno cache for an offline build: the accepted zips copied to where
 * `deno compile` reads them (`dl/release/v<ver>/denort-<target>.zip`), and the dependency caches
 * of `sourceDenoDir` (`npm/`, `remote/`) linked in so the program's own imports resolve
 * without a download. Nothing else of `sourceDenoDir` is shared: no runtime in its `dl/` can
 * stand in for a checked one.
 *
 * @example
 * ```ts ignore
 * import { seedDenoDir } from "./denort.ts";
 * await seedDenoDir("/tmp/deno-dir", "2.9.6", [{ target: "x86_64-unknown-linux-gnu", path: "r/denort-x86_64-unknown-linux-gnu.zip" }]);
 * ```
 */
export async function seedDenoDir(
  denoDir: string,
  denoVersion: string,
  accepted: readonly { target: Target; path: string }[],
  sourceDenoDir?: string,
): Promise<void> {
  for (const { target, path } of accepted) {
    const dest = cachedRuntimePath(denoDir, denoVersion, target);
    await Deno.mkdir(join(dest, ".."), { recursive: true });
    await Deno.copyFile(path, dest);
  }
  if (!sourceDenoDir) return;
  for (const name of ["npm", "remote"]) {
    try {
      await Deno.stat(join(sourceDenoDir, name));
    } catch {
      continue; // that cache does not exist: nothing to share
    }
    await Deno.symlink(join(sourceDenoDir, name), join(denoDir, name));
  }
}

/**
 * Pins the sha256 of the zips in `dir` into the manifest at `manifestPath`: each target's zip
 * must pass {@linkcode checkRuntimeContent}, agree with the `.sha256sum` file beside it, then
 * pass {@linkcode probeRuntime}, and
 * a target already pinned to another value is refused. Returns one line per target: what was
 * pinned, or why not.
 */
export async function pinRuntimes(
  dir: string,
  targets: readonly Target[],
  manifestPath: string,
  options: CheckOptions = {},
): Promise<{ pinned: Target[]; errors: string[] }> {
  const manifest = await readManifest(manifestPath);
  const versionProblem = checkManifestVersion(manifest, { ...options, manifestPath });
  if (versionProblem) return { pinned: [], errors: [versionProblem] };
  const pinned: Target[] = [];
  const errors: string[] = [];
  for (const target of targets) {
    const name = runtimeZipName(target);
    const path = join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch {
      errors.push(`${target}: missing: no ${name} in ${dir}`);
      continue;
    }
    const sha256 = await sha256Hex(bytes);
    const problem = await checkRuntimeContent(bytes, target);
    if (problem) {
      errors.push(`${target}: ${name}: ${problem}`);
      continue;
    }
    let sidecar: string;
    try {
      sidecar = await Deno.readTextFile(`${path}.sha256sum`);
    } catch {
      errors.push(
        `${target}: no ${name}.sha256sum beside ${name}: take both from the Deno ` +
          `${manifest.denoVersion} GitHub release`,
      );
      continue;
    }
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)/.exec(sidecar.trim());
    if (!m || m[1].toLowerCase() !== sha256 || basename(m[2]) !== name) {
      errors.push(
        `${target}: ${name}.sha256sum does not agree with ${name} (sha256 ${sha256}): ` +
          `"${sidecar.trim().slice(0, 120)}"`,
      );
      continue;
    }
    // Run (this machine's target only) after the .sha256sum agreed, never before.
    const probed = await probeRuntime(bytes, target, options.hostTarget);
    if (probed) {
      errors.push(`${target}: ${name}: ${probed}`);
      continue;
    }
    const current = manifest.targets[target]?.sha256 ?? null;
    if (current !== null && current !== sha256) {
      errors.push(
        `${target}: ${manifestPath} already pins ${current}, and ${name} has ${sha256}: not ` +
          `overwritten (a different zip for the same release is what the pin is there to catch)`,
      );
      continue;
    }
    manifest.targets[target] = {
      file: name,
      sha256,
      note: `pinned with build.ts --pin on ${
        new Date().toISOString().slice(0, 10)
      } from ${name} and its .sha256sum`,
    };
    pinned.push(target);
  }
  if (pinned.length) {
    await Deno.writeTextFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  }
  return { pinned, errors };
}
