/**
 * Builds the kconnect binaries with `deno compile`:
 *
 * ```sh
 * deno task build                                   # every target
 * deno task build --target x86_64-unknown-linux-gnu # some targets
 * deno task build --dry-run                         # print the deno compile commands only
 * ```
 *
 * Each target becomes `dist/kconnect-<version>-<target>[.exe]`; `dist/SHA256SUMS` lists the
 * sha256 of every binary there, in `sha256sum -c` format.
 *
 * The traffic manager's code: before compiling, `deno bundle` turns `src/manager/main.ts` into
 * one JavaScript file, `dist/.build/manager.js` (the same flags `kconnect install` uses when it
 * runs from source, see `src/install/bundle.ts`), which every binary embeds (`--include`) and
 * `kconnect install` puts in a ConfigMap. The generated entry point tells
 * `src/install/bundle.ts` where the embedded copy is.
 *
 * Version stamping (see `src/version.ts`): the version is deno.json's, embedded as a JSON
 * module. For the commit and date this script writes a small entry point under `dist/.build/`
 * that calls `setBuildInfo()` and then `main()`, compiles that, and deletes it; the source tree
 * is never rewritten.
 *
 * The runtime: `deno compile` copies a prebuilt runtime (`denort`, one per target and Deno
 * version) and appends the program to it. Deno downloads that runtime from its download host
 * and caches it in `DENO_DIR`, or, when the `DENORT_BIN` environment variable is set, reads
 * that file instead for whatever target is asked (Deno does not check that it matches). So this
 * script passes `DENORT_BIN` to `deno compile` only for the target the file is built for (read
 * from its ELF, Mach-O or PE header), takes `DENORT_BIN_<target>` (dashes as underscores, e.g.
 * `DENORT_BIN_aarch64_apple_darwin`) for other targets, and lets Deno download (or take from
 * its cache) the rest. A target whose runtime cannot be had fails with a message saying so;
 * the script never makes a binary any other way, and exits 1 if any target failed.
 *
 * Offline, from a directory of runtime zips (for machines that cannot reach the download host):
 *
 * ```sh
 * deno task build --runtime-dir runtimes/                  # build all five from runtimes/*.zip
 * deno task build --runtime-dir runtimes/ --check-runtimes # check the zips only
 * deno task build --runtime-dir runtimes/ --pin --target aarch64-apple-darwin  # pin one
 * ```
 *
 * `--runtime-dir` takes `denort-<target>.zip` files as Deno's releases name them, and checks
 * each against `scripts/denort-manifest.json` (`--manifest` names another): the Deno version,
 * the zip's content (`denort`, not the Deno CLI; built for that target) and its pinned sha256
 * (`scripts/denort.ts` says what exactly, why a target without a pinned sha256 is refused, and
 * how to pin one). If any requested target is refused, nothing is compiled. The accepted zips
 * are copied into a private `DENO_DIR` (`dl/release/v<ver>/denort-<target>.zip`, where
 * `deno compile` reads its cache; the dependency caches `npm/` and `remote/` are linked from the
 * usual `DENO_DIR`), and every `deno compile` runs with that `DENO_DIR`, without `DENORT_BIN`,
 * and with proxies that refuse connections, so no runtime can be downloaded in their place.
 *
 * @module
 */

import { Command, Option } from "commander";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLE_ENTRY, BUNDLE_FLAGS, runDenoBundle } from "../src/install/bundle.ts";
import { CLIENT_V8_FLAGS, v8FlagsArg } from "../src/v8_flags.ts";
import {
  cachedRuntimePath,
  checkRuntimeDir,
  pinRuntimes,
  readManifest,
  type RuntimeCheck,
  seedDenoDir,
} from "./denort.ts";

/** Every target kconnect is built for. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** One of {@linkcode TARGETS}. */
export type Target = typeof TARGETS[number];

/**
 * Files and folders embedded in every binary (`deno compile --include`), relative to the
 * repository root. Put here what the program reads through `import.meta.dirname` at run time.
 * The traffic-manager bundle is added by the build itself ({@linkcode BUNDLE_FILE}).
 * `--include` on the command line adds more.
 */
export const INCLUDE: readonly string[] = [];

/**
 * Flags every binary is compiled with. kconnect opens TUN devices through FFI, runs `ip`,
 * changes resolver settings and serves DNS over UDP, and it runs as root, so it gets every
 * permission rather than a list that would drift from what the code does. Its V8 flags are
 * {@linkcode CLIENT_V8_FLAGS} (a smaller young generation, see `src/v8_flags.ts`).
 */
export const COMPILE_FLAGS: readonly string[] = [
  "--allow-all",
  "--unstable-net",
  v8FlagsArg(CLIENT_V8_FLAGS),
];

/** The repository root. */
export const ROOT: string = resolve(fileURLToPath(new URL("..", import.meta.url)));

/** The manager bundle of a build, relative to the root, next to the generated entry point. */
export const BUNDLE_FILE = "dist/.build/manager.js";

/**
 * The file name of a target's binary.
 *
 * @example
 * ```ts
 * import { binaryName } from "./build.ts";
 * binaryName("0.1.0", "x86_64-pc-windows-msvc"); // "kconnect-0.1.0-x86_64-pc-windows-msvc.exe"
 * ```
 */
export function binaryName(version: string, target: Target): string {
  return `kconnect-${version}-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * The environment variable naming a runtime for one target.
 *
 * @example
 * ```ts
 * import { denortEnvName } from "./build.ts";
 * denortEnvName("aarch64-apple-darwin"); // "DENORT_BIN_aarch64_apple_darwin"
 * ```
 */
export function denortEnvName(target: Target): string {
  return `DENORT_BIN_${target.replaceAll("-", "_")}`;
}

/**
 * Tells which target an executable is built for from its first bytes (ELF, Mach-O or PE
 * header; 512 bytes are plenty), or `undefined` when the format or machine is not one of
 * {@linkcode TARGETS}.
 *
 * @example
 * ```ts
 * import { detectBinaryTarget } from "./build.ts";
 * using file = await Deno.open(Deno.execPath());
 * const header = new Uint8Array(512);
 * await file.read(header);
 * detectBinaryTarget(header); // e.g. "x86_64-unknown-linux-gnu" on Linux x86-64
 * ```
 */
export function detectBinaryTarget(header: Uint8Array): Target | undefined {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  // ELF: 0x7f 'E' 'L' 'F', class 2 (64-bit), data 1 (little-endian), e_machine at 18.
  if (header.length >= 20 && view.getUint32(0) === 0x7f454c46) {
    if (header[4] !== 2 || header[5] !== 1) return undefined;
    const machine = view.getUint16(18, true);
    if (machine === 0x3e) return "x86_64-unknown-linux-gnu";
    if (machine === 0xb7) return "aarch64-unknown-linux-gnu";
    return undefined;
  }
  // Mach-O 64-bit little-endian: magic 0xfeedfacf, then cputype.
  if (header.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    if (cpu === 0x01000007) return "x86_64-apple-darwin";
    if (cpu === 0x0100000c) return "aarch64-apple-darwin";
    return undefined;
  }
  // PE: 'MZ', e_lfanew at 0x3c, then 'PE\0\0' and the machine.
  if (header.length >= 0x40 && header[0] === 0x4d && header[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true);
    if (pe + 6 > header.length || view.getUint32(pe) !== 0x50450000) return undefined;
    return view.getUint16(pe + 4, true) === 0x8664 ? "x86_64-pc-windows-msvc" : undefined;
  }
  return undefined;
}

/** Where the runtime for one target comes from. */
export type RuntimeSource =
  | { kind: "file"; path: string; variable: string }
  | { kind: "download" };

/**
 * Decides where `deno compile` gets the runtime for `target`, from the environment `env`:
 * `DENORT_BIN_<target>` when set, else `DENORT_BIN` when its header says it is built for
 * `target` (or cannot be read and `target` is this machine's, as Deno would use it), else
 * Deno's cache or download.
 *
 * @example
 * ```ts
 * import { runtimeSource } from "./build.ts";
 * const env = { DENORT_BIN_aarch64_apple_darwin: "/opt/denort-mac" };
 * runtimeSource("aarch64-apple-darwin", env, Deno.build.target); // { kind: "file", ... }
 * ```
 */
export function runtimeSource(
  target: Target,
  env: Record<string, string | undefined>,
  hostTarget: string,
): RuntimeSource {
  const own = env[denortEnvName(target)];
  if (own) return { kind: "file", path: own, variable: denortEnvName(target) };
  const shared = env.DENORT_BIN;
  if (shared) {
    let header: Uint8Array | undefined;
    try {
      using file = Deno.openSync(shared);
      header = new Uint8Array(512);
      header = header.subarray(0, file.readSync(header) ?? 0);
    } catch {
      header = undefined;
    }
    const built = header ? detectBinaryTarget(header) : undefined;
    if (built === target || (built === undefined && target === hostTarget)) {
      return { kind: "file", path: shared, variable: "DENORT_BIN" };
    }
  }
  return { kind: "download" };
}

/** The stamp written into a build. */
export interface Stamp {
  version: string;
  commit: string;
  date: string;
}

async function git(args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", { args: ["-C", ROOT, ...args], stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined; // no git
  }
}

/** Reads the version from deno.json, the commit from git and the date from the clock. */
async function makeStamp(): Promise<Stamp> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const head = await git(["rev-parse", "--short=12", "HEAD"]);
  const changes = await git(["status", "--porcelain", "--untracked-files=no"]);
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  return {
    version: String(config.version),
    commit: head ? head + (changes ? "-dirty" : "") : "unknown",
    date: new Date(epoch ? Number(epoch) * 1000 : Date.now()).toISOString(),
  };
}

/**
 * The source of the generated entry point for a build stamped with `stamp`, to be written to
 * `dist/.build/`.
 *
 * @example
 * ```ts
 * import { entrySource } from "./build.ts";
 * entrySource({ version: "0.1.0", commit: "abc", date: "2025-01-01T00:00:00.000Z" });
 * ```
 */
export function entrySource(stamp: Stamp, bundle = basename(BUNDLE_FILE)): string {
  const info = JSON.stringify({ commit: stamp.commit, date: stamp.date });
  return [
    "// Generated by scripts/build.ts for one build and deleted after it.",
    'import { setBuildInfo } from "../../src/version.ts";',
    'import { setEmbeddedBundle } from "../../src/install/bundle.ts";',
    'import { main } from "../../main.ts";',
    `setBuildInfo(${info});`,
    `setEmbeddedBundle(new URL(${JSON.stringify(`./${bundle}`)}, import.meta.url));`,
    "Deno.exit(await main(Deno.args));",
    "",
  ].join("\n");
}

/**
 * The arguments of `deno compile` for one target.
 *
 * @example
 * ```ts
 * import { compileArgs } from "./build.ts";
 * compileArgs({ target: "x86_64-unknown-linux-gnu", output: "dist/k", include: [], entry: "e.ts" });
 * ```
 */
export function compileArgs(
  options: { target: Target; output: string; include: readonly string[]; entry: string },
): string[] {
  return [
    "compile",
    ...COMPILE_FLAGS,
    "--config",
    join(ROOT, "deno.json"),
    "--target",
    options.target,
    ...options.include.flatMap((path) => ["--include", path]),
    "--output",
    options.output,
    options.entry,
  ];
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const encoder = new TextEncoder();

function say(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

function complain(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Picks the line of deno's error output that says why the runtime download failed. */
function downloadCause(stderr: string): string {
  const end = stderr.indexOf("Stack backtrace");
  const lines = (end < 0 ? stderr : stderr.slice(0, end)).split("\n").map((line) => line.trim())
    .filter(Boolean);
  const request = lines.find((line) => line.includes("error sending request"));
  const last = lines.filter((line) => /^\d+: /.test(line)).at(-1) ?? lines.at(-1);
  return (request ?? last ?? "no error output").replace(/^\d+: /, "");
}

/** Outcome of compiling one target. */
interface TargetResult {
  target: Target;
  path?: string;
  error?: string;
}

/** Proxy settings that make any download by `deno compile` fail at once (port 9 refuses). */
const NO_NETWORK = {
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  ALL_PROXY: "http://127.0.0.1:9",
};

/**
 * The environment of `deno compile` for an offline build from the checked runtimes seeded in
 * `denoDir`: that `DENO_DIR`, no `DENORT_BIN*` (Deno would prefer it to the cache), and proxies
 * that refuse, so nothing can be downloaded in place of the checked zips.
 */
export function offlineEnv(
  base: Record<string, string>,
  denoDir: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (name.startsWith("DENORT_BIN") || /^(https?|all|no)_proxy$/i.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...NO_NETWORK, DENO_DIR: denoDir };
}

async function compileTarget(
  target: Target,
  options: {
    output: string;
    include: readonly string[];
    entry: string;
    timeoutMs: number;
    seededDenoDir?: string;
  },
  stamp: Stamp,
): Promise<TargetResult> {
  let env = Deno.env.toObject();
  const source: RuntimeSource | { kind: "seeded"; variable: string; path: string } =
    options.seededDenoDir
      ? {
        kind: "seeded",
        variable: "DENO_DIR",
        path: cachedRuntimePath(options.seededDenoDir, Deno.version.deno, target),
      }
      : runtimeSource(target, env, Deno.build.target);
  env.NO_COLOR = "1"; // plain error text to read the cause from
  delete env.DENORT_BIN; // never let Deno use it for a target it was not built for
  if (source.kind === "file") env.DENORT_BIN = source.path;
  if (options.seededDenoDir) env = offlineEnv(env, options.seededDenoDir);
  say(
    `==> ${target}: runtime from ${
      source.kind === "file"
        ? `${source.variable}=${source.path}`
        : source.kind === "seeded"
        ? `the checked zip ${source.path} (offline)`
        : "Deno's cache or its download host"
    }`,
  );
  const args = compileArgs({ target, ...options });
  const signal = AbortSignal.timeout(options.timeoutMs);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(Deno.execPath(), {
      args,
      env,
      clearEnv: true,
      cwd: ROOT,
      stdin: "null",
      signal,
    }).output();
  } catch (err) {
    return { target, error: `cannot run deno compile: ${(err as Error).message}` };
  }
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    await removeLeftovers(options.output);
    const seconds = Math.round(options.timeoutMs / 1000);
    if (signal.aborted) {
      return {
        target,
        error: source.kind === "download"
          ? `the Deno runtime (denort ${Deno.version.deno} for ${target}) did not download ` +
            `within ${seconds} s. Set DENORT_BIN to a local denort binary for ${target} ` +
            `(or ${denortEnvName(target)}), or build where Deno's download host is reachable.`
          : `deno compile did not finish within ${seconds} s`,
      };
    }
    if (source.kind === "seeded") {
      return {
        target,
        error: `deno compile failed offline with the checked runtime ${source.path} (exit ` +
          `${out.code}): ${downloadCause(stderr)}`,
      };
    }
    if (source.kind === "file" && stderr.includes("Could not find denort")) {
      return {
        target,
        error: `${source.variable}=${source.path} cannot be read as the Deno runtime ` +
          `(${downloadCause(stderr)}).`,
      };
    }
    if (source.kind === "download" && /base binary|denort/i.test(stderr)) {
      return {
        target,
        error: `the Deno runtime (denort ${Deno.version.deno} for ${target}) could not be ` +
          `downloaded from Deno's download host (${downloadCause(stderr)}). Set DENORT_BIN to ` +
          `a local denort binary for ${target} (or ${denortEnvName(target)}), or build where ` +
          `that host is reachable.`,
      };
    }
    return {
      target,
      error: `deno compile failed (exit ${out.code}):\n${stderr.trimEnd()}`,
    };
  }
  if (target === Deno.build.target) {
    const problem = await smokeTest(options.output, stamp);
    if (problem) {
      await Deno.remove(options.output).catch(() => {});
      const hint = source.kind === "file"
        ? ` Is ${source.variable}=${source.path} really denort (not the deno CLI)?`
        : source.kind === "seeded"
        ? ` The runtime was ${source.path}, checked against the manifest: is the pin right?`
        : "";
      return { target, error: `${problem}; the binary was deleted.${hint}` };
    }
  }
  return { target, path: options.output };
}

/** Deletes the `<output>.tmp-*` file an interrupted `deno compile` leaves behind. */
async function removeLeftovers(output: string): Promise<void> {
  const prefix = basename(output) + ".tmp-";
  try {
    for await (const entry of Deno.readDir(dirname(output))) {
      if (entry.name.startsWith(prefix)) {
        await Deno.remove(join(dirname(output), entry.name)).catch(() => {});
      }
    }
  } catch {
    // nothing to clean
  }
}

/** Runs a binary built for this machine and checks that it reports the stamp it was given. */
async function smokeTest(path: string, stamp: Stamp): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(path, {
      args: ["version", "--json"],
      stdin: "null",
      signal: AbortSignal.timeout(30_000),
    }).output();
    let report: { version?: unknown; commit?: unknown } = {};
    try {
      report = JSON.parse(new TextDecoder().decode(out.stdout));
    } catch {
      // not kconnect's JSON: reported below
    }
    if (!out.success || report.version !== stamp.version || report.commit !== stamp.commit) {
      return `the built binary does not run as kconnect: \`version --json\` exited ${out.code} ` +
        `and reported version ${report.version} commit ${report.commit}, expected ` +
        `${stamp.version} ${stamp.commit}`;
    }
  } catch (err) {
    return `the built binary did not run: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * Writes `SHA256SUMS` in `dir` (`sha256sum -c` format): the entries of `sums` (file name to
 * hex digest) merged over the old file's entries for binaries that still exist.
 *
 * @example
 * ```ts ignore
 * import { writeSums } from "./build.ts";
 * await writeSums("dist", new Map([["kconnect-0.1.0-x86_64-unknown-linux-gnu", "ab12..."]]));
 * ```
 */
export async function writeSums(dir: string, sums: Map<string, string>): Promise<void> {
  const file = join(dir, "SHA256SUMS");
  const merged = new Map<string, string>();
  try {
    for (const line of (await Deno.readTextFile(file)).split("\n")) {
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (m && !sums.has(m[2])) {
        try {
          await Deno.stat(join(dir, m[2]));
          merged.set(m[2], m[1]);
        } catch {
          // binary gone: drop its line
        }
      }
    }
  } catch {
    // no previous file
  }
  for (const [name, hash] of sums) merged.set(name, hash);
  const names = [...merged.keys()].sort();
  await Deno.writeTextFile(file, names.map((name) => `${merged.get(name)}  ${name}\n`).join(""));
}

/** Options of {@linkcode build}. */
export interface BuildOptions {
  /** Targets to build. Default: all of {@linkcode TARGETS}. */
  targets?: Target[];
  /** Directory for the binaries. Default `dist/` in the repository. */
  outDir?: string;
  /** Paths added to {@linkcode INCLUDE}, relative to the repository root. Default none. */
  include?: string[];
  /** Print the commands instead of running them. Default false. */
  dryRun?: boolean;
  /** Time limit for each target's `deno compile`, in milliseconds. Default 600 000. */
  timeoutMs?: number;
  /**
   * A directory of denort runtime zips (`denort-<target>.zip`) to build from offline: each is
   * checked against the manifest (see `scripts/denort.ts`), and all must pass before anything
   * is compiled. Default: none (Deno's cache or its download host).
   */
  runtimeDir?: string;
  /** The manifest pinning the runtimes. Default {@linkcode MANIFEST_FILE}. */
  manifestPath?: string;
  /** With `runtimeDir`: only check the zips and report (exit 3 if the only problem is pins). */
  checkRuntimes?: boolean;
  /** With `runtimeDir`: pin the sha256 of its zips into the manifest, build nothing. */
  pin?: boolean;
}

/** The checked-in manifest of denort runtime sha256 values. */
export const MANIFEST_FILE: string = join(ROOT, "scripts", "denort-manifest.json");

/** The `DENO_DIR` this Deno uses (for the dependency caches an offline build shares). */
async function currentDenoDir(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdin: "null",
      stderr: "null",
    }).output();
    return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
  } catch {
    return undefined;
  }
}

/** Checks the runtime directory and prints the outcome of every target. */
async function checkRuntimes(
  runtimeDir: string,
  targets: Target[],
  manifestPath: string,
): Promise<RuntimeCheck[] | undefined> {
  let manifest;
  try {
    manifest = await readManifest(manifestPath);
  } catch (err) {
    complain(`build: ${(err as Error).message}`);
    return undefined;
  }
  const shown = relative(ROOT, manifestPath).startsWith("..")
    ? manifestPath
    : relative(ROOT, manifestPath);
  const checks = await checkRuntimeDir(runtimeDir, targets, manifest, { manifestPath: shown });
  for (const check of checks) {
    if (check.error) complain(`build: refused the runtime for ${check.target}: ${check.error}`);
    else say(`runtime ${check.target}: ${check.path} sha256 ${check.sha256} matches ${shown}`);
  }
  return checks;
}

/**
 * Builds the binaries and returns the exit status: 0 when every target was built, 1 otherwise.
 *
 * @example
 * ```ts ignore
 * import { build } from "./build.ts";
 * await build({ targets: ["x86_64-unknown-linux-gnu"], dryRun: true });
 * ```
 */
export async function build(options: BuildOptions = {}): Promise<number> {
  const targets = options.targets?.length ? options.targets : [...TARGETS];
  const outDir = resolve(options.outDir ?? join(ROOT, "dist"));
  const include = [...INCLUDE, BUNDLE_FILE, ...(options.include ?? [])];
  const timeoutMs = options.timeoutMs ?? 600_000;
  for (const path of include) {
    if (path === BUNDLE_FILE) continue; // made below
    try {
      await Deno.stat(resolve(ROOT, path));
    } catch {
      complain(`build: cannot include ${path}: no such file or folder under ${ROOT}`);
      return 1;
    }
  }
  const manifestPath = resolve(options.manifestPath ?? MANIFEST_FILE);
  const runtimeDir = options.runtimeDir ? resolve(options.runtimeDir) : undefined;
  if ((options.pin || options.checkRuntimes) && !runtimeDir) {
    complain("build: --pin and --check-runtimes need --runtime-dir <dir>");
    return 2;
  }
  if (runtimeDir && options.pin) {
    let result;
    try {
      result = await pinRuntimes(runtimeDir, targets, manifestPath);
    } catch (err) {
      complain(`build: ${(err as Error).message}`);
      return 1;
    }
    for (const error of result.errors) complain(`build: not pinned: ${error}`);
    for (const target of result.pinned) say(`pinned ${target} in ${manifestPath}`);
    say(`pinned ${result.pinned.length} of ${targets.length} target(s)`);
    return result.errors.length ? 1 : 0;
  }
  if (runtimeDir) {
    const checks = await checkRuntimes(runtimeDir, targets, manifestPath);
    if (!checks) return 1;
    const refused = checks.filter((c) => c.error);
    if (options.checkRuntimes) {
      say(`runtimes: ${checks.length - refused.length} of ${checks.length} accepted`);
      return refused.length === 0 ? 0 : refused.every((c) => c.unpinned) ? 3 : 1;
    }
    if (refused.length) {
      say(
        `built 0 of ${targets.length} target(s): refused the runtime for ` +
          `${refused.map((c) => c.target).join(", ")}; nothing compiled`,
      );
      return 1;
    }
  }
  const stamp = await makeStamp();
  const buildDir = join(ROOT, "dist", ".build");
  const entry = join(buildDir, `entry-${Deno.pid}.ts`);
  const entryArg = relative(ROOT, entry);

  if (options.dryRun) {
    say(`# kconnect ${stamp.version}, commit ${stamp.commit}, date ${stamp.date}`);
    say(`# ${entryArg} is generated before compiling:`);
    for (const line of entrySource(stamp).trimEnd().split("\n")) say(`#   ${line}`);
    say(`cd ${shellQuote(ROOT)}`);
    say(
      [Deno.execPath(), ...BUNDLE_FLAGS, "--config", "deno.json", "-o", BUNDLE_FILE, BUNDLE_ENTRY]
        .map(shellQuote).join(" "),
    );
    for (const target of targets) {
      const source = runtimeSource(target, Deno.env.toObject(), Deno.build.target);
      const prefix = runtimeDir
        ? "DENO_DIR=<a private DENO_DIR seeded with the checked zips> HTTPS_PROXY=http://127.0.0.1:9 "
        : source.kind === "file"
        ? `DENORT_BIN=${shellQuote(source.path)} `
        : "";
      const output = join(outDir, binaryName(stamp.version, target));
      const args = compileArgs({ target, output, include, entry: entryArg });
      say(prefix + [Deno.execPath(), ...args].map(shellQuote).join(" "));
    }
    return 0;
  }

  await Deno.mkdir(outDir, { recursive: true });
  await Deno.mkdir(buildDir, { recursive: true });
  await Deno.writeTextFile(entry, entrySource(stamp));
  say(`kconnect ${stamp.version}, commit ${stamp.commit}, date ${stamp.date}`);
  const results: TargetResult[] = [];
  const bundle = join(ROOT, BUNDLE_FILE);
  let seededDenoDir: string | undefined;
  try {
    if (runtimeDir) {
      seededDenoDir = await Deno.makeTempDir({ prefix: "kc-build-deno-dir-" });
      const accepted = targets.map((target) => ({
        target,
        path: join(runtimeDir, `denort-${target}.zip`),
      }));
      await seedDenoDir(seededDenoDir, Deno.version.deno, accepted, await currentDenoDir());
      say(`offline: the checked runtimes are in ${seededDenoDir}; downloads are refused`);
    }
    try {
      await runDenoBundle(ROOT + "/", bundle);
    } catch (err) {
      complain(`build: ${(err as Error).message}`);
      return 1;
    }
    const size = (await Deno.stat(bundle)).size;
    if (size > 1024 * 1024) {
      complain(`build: the traffic-manager bundle is ${size} bytes, more than a ConfigMap holds`);
      return 1;
    }
    say(
      `traffic-manager bundle: ${BUNDLE_FILE}, ${Math.ceil(size / 1024)} KiB, sha256 ${await sha256(
        bundle,
      )}`,
    );
    for (const target of targets) {
      const output = join(outDir, binaryName(stamp.version, target));
      const result = await compileTarget(
        target,
        { output, include, entry: entryArg, timeoutMs, seededDenoDir },
        stamp,
      );
      if (result.error) complain(`build: cannot build ${target}: ${result.error}`);
      results.push(result);
    }
  } finally {
    await Deno.remove(entry).catch(() => {});
    await Deno.remove(bundle).catch(() => {});
    await Deno.remove(buildDir).catch(() => {}); // only if empty
    if (seededDenoDir) await Deno.remove(seededDenoDir, { recursive: true }).catch(() => {});
  }

  const sums = new Map<string, string>();
  for (const { path } of results) {
    if (!path) continue;
    const hash = await sha256(path);
    sums.set(basename(path), hash);
    say(`${hash}  ${path}`);
  }
  if (sums.size > 0) await writeSums(outDir, sums);
  const failed = results.filter((r) => r.error).map((r) => r.target);
  say(
    `built ${sums.size} of ${targets.length} target(s)` +
      (sums.size ? `; sha256 in ${join(outDir, "SHA256SUMS")}` : "") +
      (failed.length ? `; failed: ${failed.join(", ")}` : ""),
  );
  return failed.length ? 1 : 0;
}

if (import.meta.main) {
  const program = new Command("build")
    .description("Compile kconnect binaries with deno compile.")
    .addOption(
      new Option("--target <triple...>", "targets to build (default: all)").choices(TARGETS),
    )
    .option("--out-dir <dir>", "where to write the binaries", join(ROOT, "dist"))
    .option("--include <path...>", "more files or folders to embed, relative to the repo root")
    .option("--dry-run", "print the deno compile commands, build nothing")
    .option("--timeout <seconds>", "time limit for each target's deno compile", "600")
    .option(
      "--runtime-dir <dir>",
      "build offline from the denort-<target>.zip files in <dir>, checked against the manifest",
    )
    .option("--manifest <file>", "the manifest pinning the runtimes' sha256", MANIFEST_FILE)
    .option("--check-runtimes", "with --runtime-dir: check the zips only (exit 3: only unpinned)")
    .option("--pin", "with --runtime-dir: pin the zips' sha256 (checked against .sha256sum)")
    .exitOverride((err) => Deno.exit(err.exitCode === 0 ? 0 : 2));
  program.parse(Deno.args, { from: "user" });
  const opts = program.opts<{
    target?: Target[];
    outDir: string;
    include?: string[];
    dryRun?: boolean;
    timeout: string;
    runtimeDir?: string;
    manifest: string;
    checkRuntimes?: boolean;
    pin?: boolean;
  }>();
  const timeout = Number(opts.timeout);
  if (!(timeout > 0)) {
    complain(`build: --timeout must be a positive number of seconds, got ${opts.timeout}`);
    Deno.exit(2);
  }
  Deno.exit(
    await build({
      targets: opts.target,
      outDir: opts.outDir,
      include: opts.include,
      dryRun: opts.dryRun,
      timeoutMs: timeout * 1000,
      runtimeDir: opts.runtimeDir,
      manifestPath: opts.manifest,
      checkRuntimes: opts.checkRuntimes,
      pin: opts.pin,
    }),
  );
}
