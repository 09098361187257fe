/**
 * Version and build stamp.
 *
 * - The version is deno.json's `"version"`, imported as a JSON module: `deno run` reads it from
 *   the file, and `deno compile` embeds the JSON module in the binary, so there is one source of
 *   truth and nothing to generate for it.
 * - The git commit and build date exist only for binaries made by `scripts/build.ts`. That
 *   script compiles a small generated entry point (under `dist/`, never in `src/`) which calls
 *   {@linkcode setBuildInfo} before it runs `main()`. The source tree is never rewritten, so
 *   an interrupted build cannot leave a modified file behind; under `deno run` the stamp stays
 *   `undefined` and `kconnect version` says the program runs from source.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/**
 * kconnect's version, from deno.json.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * VERSION; // e.g. "0.1.0"
 * ```
 */
export const VERSION: string = denoJson.version;

/** What `scripts/build.ts` stamps into a compiled binary. */
export interface BuildInfo {
  /** Git commit the binary was built from, with `-dirty` when the tree had changes. */
  commit: string;
  /** Build time, ISO 8601 (from `SOURCE_DATE_EPOCH` when set, for reproducible builds). */
  date: string;
}

let stamped: BuildInfo | undefined;

/**
 * Records the build stamp. Called once, by the entry point `scripts/build.ts` generates;
 * nothing else calls it.
 *
 * @example
 * ```ts
 * import { buildInfo, setBuildInfo } from "./version.ts";
 * setBuildInfo({ commit: "0123abc", date: "2025-01-01T00:00:00Z" });
 * buildInfo()?.commit; // "0123abc"
 * ```
 */
export function setBuildInfo(info: BuildInfo): void {
  stamped = Object.freeze({ ...info });
}

/**
 * Returns the build stamp, or `undefined` when running from source.
 *
 * @example
 * ```ts
 * import { buildInfo } from "./version.ts";
 * const info = buildInfo();
 * const commit = info ? info.commit : "source";
 * ```
 */
export function buildInfo(): Readonly<BuildInfo> | undefined {
  return stamped;
}
