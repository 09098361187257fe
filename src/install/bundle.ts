/**
 * The traffic manager's code as one JavaScript file: `src/manager/main.ts` bundled by
 * `deno bundle`, with its npm dependencies (commander, dns-packet) inlined. `kconnect install`
 * puts it in a ConfigMap; the official `denoland/deno` image runs it.
 *
 * Where it comes from:
 *
 * - a compiled binary: `scripts/build.ts` bundles first and embeds the file (`--include`); its
 *   generated entry point calls {@linkcode setEmbeddedBundle} with the embedded path;
 * - `KCONNECT_MANAGER_BUNDLE=<file>`: that file (for development and tests);
 * - running from source: bundled on the fly with the running Deno (`Deno.execPath()`), cached
 *   under the cache directory by the sha256 of everything that goes into it (the sources under
 *   `src/`, `deno.json`, `deno.lock`, the Deno version), so only the first install after a change
 *   pays for the bundling.
 *
 * The bundle's bytes do not depend on where it is written (minified: no path comments), so a
 * compiled binary and a source checkout of the same commit produce the same sha256.
 *
 * The cache decides what code goes into clusters, so it must be this user's alone
 * ({@linkcode bundleCacheDir}): never a shared directory such as `/tmp`, owned by the user (root:
 * `/var/cache/kconnect`), mode 0700, below directories no other user can change. A cache that is
 * not is refused, not used.
 *
 * @module
 */
import { logger } from "../log.ts";
import { ensureTrustedDir } from "../host/safe_path.ts";
import { sha256Hex } from "../io/bytes.ts";

const log = logger("install");

/** The entry point that is bundled, relative to the repository root. */
export const BUNDLE_ENTRY = "src/manager/main.ts";

/**
 * `deno bundle` arguments (before `-o <file> <entry>`). `scripts/build.ts` uses the same, so
 * binaries and source checkouts bundle identically.
 */
export const BUNDLE_FLAGS: readonly string[] = [
  "bundle",
  "--quiet",
  "--platform",
  "deno",
  "--minify",
  // The lock as it is: a bundle is built from exactly the dependencies the lock pins.
  "--frozen",
  // Not --keep-names: with it, Deno 2.9's bundler leaves out the createRequire shim that
  // commander's `require("node:events")` needs, and the bundle fails at start.
];

/** A manager bundle. */
export interface ManagerBundle {
  /** The JavaScript. */
  code: string;
  /** Hex sha256 of `code`. */
  sha256: string;
  /** Where it came from, for messages: `embedded`, a file, or `bundled from source`. */
  source: string;
}

let embedded: URL | string | undefined;

/** Records where a compiled binary holds its bundle; called by the build's entry point. */
export function setEmbeddedBundle(path: URL | string): void {
  embedded = path;
}

/** Repository root, when running from source (`file:` URLs). */
function sourceRoot(): string | null {
  const url = new URL("../../", import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : null;
}

/** Root's bundle cache when KCONNECT_CACHE_DIR and XDG_CACHE_HOME name none. */
export const ROOT_CACHE_DIR = "/var/cache/kconnect";

/**
 * The directory where bundles built from source are cached: KCONNECT_CACHE_DIR, else
 * `$XDG_CACHE_HOME/kconnect`, else for root {@linkcode ROOT_CACHE_DIR} (root ignores HOME,
 * which under sudo may be the invoking user's), else `$HOME/.cache/kconnect`. Never a
 * directory under `/tmp`.
 *
 * @throws {Error} when none applies (a non-root process with no HOME).
 */
export function bundleCacheDir(): string {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const explicit = env("KCONNECT_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/kconnect`;
  if ((Deno.uid?.() ?? 0) === 0) return ROOT_CACHE_DIR;
  const home = env("HOME");
  if (home) return `${home}/.cache/kconnect`;
  throw new Error(
    "No cache directory for the traffic-manager bundle: set KCONNECT_CACHE_DIR (or HOME) to a directory of yours",
  );
}

/**
 * Makes sure `dir` can hold bundles: created when missing (mode 0700), owned by this user, not
 * writable by others, below directories no other user can change.
 *
 * @throws {Error} naming what is wrong, when another user could plant or swap a bundle there.
 */
export async function checkCacheDir(dir: string): Promise<string> {
  const abs = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  try {
    return await ensureTrustedDir(abs, { mode: 0o700, what: "the traffic-manager bundle cache" });
  } catch (err) {
    throw new Error(
      `${(err as Error).message} (set KCONNECT_CACHE_DIR to a directory only you can write)`,
      { cause: err },
    );
  }
}

async function listSources(dir: string, out: string[]): Promise<void> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await listSources(path, out);
    else if (e.isFile && /\.(ts|js|json)$/.test(e.name) && !/_test\.ts$/.test(e.name)) {
      out.push(path);
    }
  }
}

/** sha256 over the inputs of a bundle built from `root` (its cache key). */
export async function sourceKey(root: string): Promise<string> {
  const files: string[] = [];
  await listSources(`${root}src`, files);
  files.push(`${root}deno.json`, `${root}deno.lock`);
  const parts: string[] = [`deno ${Deno.version.deno}`, BUNDLE_FLAGS.join(" ")];
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch {
      text = "";
    }
    parts.push(`${f.slice(root.length)}\0${await sha256Hex(text)}`);
  }
  return await sha256Hex(parts.join("\n"));
}

/**
 * Runs `deno bundle` for the manager entry of `root` into `output`. Throws with deno's error
 * output when it fails.
 */
export async function runDenoBundle(
  root: string,
  output: string,
  deno = Deno.execPath(),
): Promise<void> {
  const out = await new Deno.Command(deno, {
    args: [...BUNDLE_FLAGS, "--config", `${root}deno.json`, "-o", output, `${root}${BUNDLE_ENTRY}`],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`Cannot bundle the traffic manager (${deno} bundle): ${text}`);
  }
}

async function fromFile(path: URL | string, source: string): Promise<ManagerBundle> {
  const code = await Deno.readTextFile(path);
  return { code, sha256: await sha256Hex(code), source };
}

/**
 * The manager bundle for this client: embedded, from `KCONNECT_MANAGER_BUNDLE`, or bundled from
 * source (cached). Errors say which source failed.
 */
export async function managerBundle(): Promise<ManagerBundle> {
  if (embedded !== undefined) {
    try {
      return await fromFile(embedded, "embedded in this binary");
    } catch (err) {
      throw new Error(
        `This kconnect binary's embedded traffic-manager bundle cannot be read (${embedded}): ${
          (err as Error).message
        }; it was built without it`,
      );
    }
  }
  const file = Deno.env.get("KCONNECT_MANAGER_BUNDLE");
  if (file) return await fromFile(file, file);
  const root = sourceRoot();
  if (root === null) {
    throw new Error(
      `No traffic-manager bundle: this kconnect runs from ${import.meta.url}, which is neither a ` +
        "compiled binary with an embedded bundle nor a source checkout; set " +
        "KCONNECT_MANAGER_BUNDLE to a bundle file",
    );
  }
  const key = await sourceKey(root);
  const dir = await checkCacheDir(bundleCacheDir());
  const cached = `${dir}/manager-${key.slice(0, 32)}.js`;
  try {
    return await fromFile(cached, `bundled from source (cached in ${cached})`);
  } catch {
    // not cached yet
  }
  // The name must end in .js: deno bundle leaves out its createRequire shim otherwise.
  const tmp = `${dir}/manager-${key.slice(0, 32)}.tmp-${Deno.pid}.js`;
  log.info(`bundling ${root}${BUNDLE_ENTRY}`, { to: cached });
  try {
    await runDenoBundle(root, tmp);
    await Deno.rename(tmp, cached);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  // Bundles of earlier sources are of no more use.
  for await (const e of Deno.readDir(dir)) {
    if (/^manager-[0-9a-f]{32}\.js$/.test(e.name) && `${dir}/${e.name}` !== cached) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
    }
  }
  return await fromFile(cached, `bundled from source (cached in ${cached})`);
}
