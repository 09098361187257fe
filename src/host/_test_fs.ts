/**
 * File helpers for tests: a temporary directory that lives as long as a callback, and whether a
 * path exists (a dangling symbolic link counts).
 *
 * @module
 */

/** Options for {@linkcode withTempDir}. */
export interface TempDirOptions {
  /** Name prefix, e.g. `kc-safepath-`. */
  prefix?: string;
  /** Mode set on the directory (e.g. 0o755, so other users can reach below it). */
  mode?: number;
}

/** Runs `fn` with a new temporary directory, removed with everything in it afterwards. */
export async function withTempDir(
  fn: (dir: string) => Promise<void>,
  options: TempDirOptions = {},
): Promise<void> {
  const dir = await Deno.makeTempDir(options.prefix ? { prefix: options.prefix } : {});
  if (options.mode !== undefined) await Deno.chmod(dir, options.mode);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether something is at `path` (not following a final symbolic link). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
