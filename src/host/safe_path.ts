/**
 * Paths that root may write to without another user redirecting the write: the daemon's socket
 * directory, the state directory (journal, pid file), the log directory, the bundle cache.
 *
 * A path is **trusted** when no other user can change what it names: every directory from `/`
 * down to it is owned by root (or by this process's user) and is not writable by others — or is
 * sticky, like `/tmp`, where others may add entries but cannot rename or remove ours; every
 * symbolic link on the way is owned by root (or us) and what it points to is trusted in turn.
 * Then checking and using a path are not a race: nobody else can swap a component in between,
 * so the daemon can create, `chown` and `chmod` by path afterwards. Group write is tolerated only
 * for system groups (gid below 1000, such as Ubuntu's `root:syslog` `/var/log`).
 *
 * The directory a daemon owns itself is created when missing (mode 0700 first, then the mode it
 * needs) and refused when it is a symbolic link, not a directory, owned by someone else, or (unless
 * it is meant to be shared) sticky or world-writable.
 *
 * @module
 */
import { adminOnlyProblem } from "./windows_acl.ts";

/** Largest gid of a system group whose write permission on a directory is tolerated. */
const SYSTEM_GID_MAX = 999;

/** Thrown when a path is not safe for root to use. */
export class UntrustedPathError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UntrustedPathError";
  }
}

function euid(): number {
  return Deno.uid() ?? 0;
}

function trustedOwner(uid: number | null): boolean {
  return uid === 0 || uid === euid();
}

/** Why directory `st` at `path` lets others change its entries, or null when it does not. */
function untrustedDirReason(path: string, st: Deno.FileInfo): string | null {
  if (!trustedOwner(st.uid)) return `${path} is owned by uid ${st.uid}`;
  const mode = st.mode ?? 0;
  if ((mode & 0o1000) !== 0) return null; // sticky: others cannot replace what we own
  if ((mode & 0o002) !== 0) return `${path} is writable by everyone (mode ${octal(mode)})`;
  if ((mode & 0o020) !== 0 && (st.gid ?? 0) > SYSTEM_GID_MAX) {
    return `${path} is writable by group ${st.gid} (mode ${octal(mode)})`;
  }
  return null;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

function join(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * Checks that every existing directory on the way to `path` is trusted (see the module doc) and
 * returns `path` with its existing part resolved through trusted links. Components that do not
 * exist yet are left as they are; the last component itself is not checked (only what leads to
 * it).
 *
 * @throws {UntrustedPathError} naming the component another user could change.
 */
export async function checkTrustedParents(path: string, what = "this path"): Promise<string> {
  if (!path.startsWith("/")) {
    throw new UntrustedPathError(`Cannot use ${path} for ${what}: not an absolute path`);
  }
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new UntrustedPathError(`Cannot use ${path} for ${what}: it contains ".."`);
  }
  const last = parts.pop();
  const dir = await trustedDir("/", parts, what, path, 0);
  return last === undefined ? dir : join(dir, last);
}

/** Walks `parts` below the trusted directory `start`; returns the resolved path. */
async function trustedDir(
  start: string,
  parts: string[],
  what: string,
  original: string,
  depth: number,
): Promise<string> {
  const refuse = (why: string) =>
    new UntrustedPathError(
      `Cannot use ${original} for ${what}: ${why}, so another user could redirect what root writes there`,
    );
  let cur = start;
  if (cur === "/") {
    const root = await Deno.lstat("/");
    const why = untrustedDirReason("/", root);
    if (why) throw refuse(why);
  }
  for (let i = 0; i < parts.length; i++) {
    const next = join(cur, parts[i]);
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(next);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return parts.slice(i).reduce(join, cur);
      throw err;
    }
    if (st.isSymlink) {
      if (!trustedOwner(st.uid)) throw refuse(`${next} is a symbolic link owned by uid ${st.uid}`);
      if (depth > 16) throw refuse(`too many symbolic links at ${next}`);
      const target = await Deno.realPath(next);
      cur = await trustedDir(
        "/",
        target.split("/").filter((p) => p !== ""),
        what,
        original,
        depth + 1,
      );
      continue;
    }
    if (!st.isDirectory) throw refuse(`${next} is not a directory`);
    const why = untrustedDirReason(next, st);
    if (why) throw refuse(why);
    cur = next;
  }
  return cur;
}

/** Options of {@linkcode ensureTrustedDir}. */
export interface TrustedDirOptions {
  /** The mode the directory gets. */
  mode: number;
  /** Its group (root only; default 0, or left alone when not root). */
  gid?: number;
  /**
   * Whether the directory is meant to be writable by others (the daemon's sticky `auth/`). A
   * directory that is not refuses to be sticky or world-writable when found so.
   */
  shared?: boolean;
  /** What the directory is for, in messages: "the daemon's socket". */
  what: string;
  /** What to do about a shared directory, in messages. Default "give it a directory of its own". */
  sharedHint?: string;
}

/**
 * Makes `dir` a directory only root (or this process's user) controls: its ancestors must be
 * trusted ({@linkcode checkTrustedParents}); missing ancestors are created (mode 0755) and
 * `dir` itself (mode 0700 at first); an existing `dir` must be a real directory owned by root
 * (or us). Then it gets `mode` and, as root, owner `0:<gid>`. Returns the path it resolved to.
 *
 * @throws {UntrustedPathError} when any of that does not hold.
 */
export async function ensureTrustedDir(dir: string, o: TrustedDirOptions): Promise<string> {
  if (Deno.build.os === "windows") return await ensureAdminOnlyDir(dir, o.what);
  const what = o.what;
  let path = await checkTrustedParents(dir, what);
  // Create what is missing, one component at a time, each checked as it comes.
  const parent = parentOf(path);
  const missing: string[] = [];
  for (let p = parent; p !== "/"; p = parentOf(p)) {
    try {
      await Deno.lstat(p);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      missing.unshift(p);
    }
  }
  for (const p of missing) {
    try {
      await Deno.mkdir(p, { mode: 0o755 });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  if (missing.length) path = await checkTrustedParents(path, what);
  try {
    await Deno.mkdir(path, { mode: 0o700 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const st = await Deno.lstat(path);
  if (st.isSymlink || !st.isDirectory) {
    throw new UntrustedPathError(`Cannot use ${dir} for ${what}: it is not a directory`);
  }
  const m = st.mode ?? 0;
  if (!o.shared && (m & 0o1002) !== 0) {
    throw new UntrustedPathError(
      `Cannot use ${dir} for ${what}: it is shared (mode ${octal(m)}); ${
        o.sharedHint ?? "give it a directory of its own"
      }`,
    );
  }
  if (!trustedOwner(st.uid)) {
    throw new UntrustedPathError(
      `Cannot use ${dir} for ${what}: it is owned by uid ${st.uid}, not root; remove it or choose another path`,
    );
  }
  if (euid() === 0) await Deno.chown(path, 0, o.gid ?? 0);
  await Deno.chmod(path, o.mode);
  return path;
}

/**
 * Windows: creates `dir` (and its parents) and checks that only SYSTEM, Administrators or
 * TrustedInstaller own it and may change it (users may create folders in `%ProgramData%`, so a
 * folder made there before the daemon's first start would be theirs). `problemOf` reads the
 * folder's owner and DACL (default {@linkcode adminOnlyProblem}).
 *
 * @throws {UntrustedPathError} when someone else could change it, saying how to fix it.
 */
export async function ensureAdminOnlyDir(
  dir: string,
  what: string,
  problemOf: (path: string) => string | null = adminOnlyProblem,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const problem = problemOf(dir);
  if (problem !== null) {
    throw new UntrustedPathError(
      `Cannot use ${dir} for ${what}: SYSTEM would write there and ${problem}. Delete the folder (or give it to Administrators) and start again`,
    );
  }
  return dir;
}
