/**
 * Proving a client's uid to the daemon without SO_PEERCRED (Deno's Unix sockets do not expose
 * the peer's credentials).
 *
 * The daemon owns a directory `auth/` beside its socket, mode `1730 root:<group>` (or `1733
 * root:root` for a daemon with no group, see `access.ts`): those who may connect may create
 * files in it but not list it, and the sticky bit stops them from removing or renaming each
 * other's files. For each connection:
 *
 * 1. the daemon sends a fresh 128-bit random nonce (`hello`);
 * 2. the client creates `auth/<nonce>` (O_CREAT|O_EXCL, mode 0600) and writes the nonce into
 *    it, then sends its request;
 * 3. the daemon `lstat`s the file: it must be a regular file (not a symlink) with one link,
 *    holding the nonce. Its owner is the client's uid and its group the client's gid — set by
 *    the kernel from the creating process's (filesystem) ids, which no unprivileged process can
 *    choose; the daemon removes the file at once.
 *
 * Limits: this proves who created the file, not who holds the socket. A process that passes
 * its connection to another user's process (SCM_RIGHTS, or a shared fd) lends that user's
 * identity — the same trust as handing over a logged-in terminal. A hard link to someone else's
 * file is refused by its link count only while the original still exists; where hard links to
 * files one does not own are allowed (`fs.protected_hardlinks=0`, macOS), a user could link a
 * file and remove the original. A root-owned proof must therefore also hold the nonce: no other
 * user can write a root-owned file, nor (sticky directory) swap it for something else between
 * the `lstat` and the read, so reading it is safe; the uid claimed this way — root's — is the
 * one that matters most. With a group, only members reach the socket at all (directory 0750,
 * socket 0660), so this decides *which* member asks; without one it decides whether the client
 * is let in at all. Supplementary groups cannot be proven this way: the daemon takes them from
 * the user database (or none), never from the client.
 *
 * @module
 */

/** Who the client proved to be. */
export interface Peer {
  uid: number;
  gid: number;
}

/**
 * A fresh nonce: 32 hex digits.
 *
 * @example
 * ```ts
 * import { newNonce } from "./auth.ts";
 * newNonce().length; // 32
 * ```
 */
export function newNonce(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Whether `nonce` looks like one {@linkcode newNonce} made (so it is a safe file name). */
export function isNonce(nonce: string): boolean {
  return /^[0-9a-f]{32}$/.test(nonce);
}

/**
 * Client side: creates `<authDir>/<nonce>` holding the nonce. Returns its path (the daemon
 * removes it; the client removes it too if the daemon did not answer).
 */
export async function proveIdentity(authDir: string, nonce: string): Promise<string> {
  if (!isNonce(nonce)) throw new Error(`The daemon sent a malformed nonce "${nonce}"`);
  const path = `${authDir}/${nonce}`;
  await Deno.writeTextFile(path, nonce, { createNew: true, mode: 0o600 });
  return path;
}

/**
 * Daemon side: checks `<authDir>/<nonce>` and returns who made it; removes the file.
 *
 * @throws {Error} when the file is missing or not what the client should have made.
 */
export async function checkIdentity(authDir: string, nonce: string): Promise<Peer> {
  if (!isNonce(nonce)) throw new Error("malformed nonce");
  const path = `${authDir}/${nonce}`;
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch {
    throw new Error(`the client did not create ${path}`);
  }
  try {
    if (!st.isFile) throw new Error(`${path} is not a regular file`);
    if (st.nlink !== 1) throw new Error(`${path} has ${st.nlink} links`);
    if (st.uid === null || st.gid === null) throw new Error("no file ownership on this system");
    // No open() of a file another user owns: root opening a path that user controls would follow
    // a symlink swapped in after lstat() (to a device, say) or block on a FIFO. The name is a
    // fresh 128-bit nonce only this client was told, and lstat() gives the owner the kernel
    // recorded, so the regular, singly linked file itself is the proof.
    if (st.uid === 0 && !(await holdsNonce(path, nonce))) {
      // A root-owned file that does not hold the nonce was linked in, not written by root.
      throw new Error(`${path} does not hold the nonce`);
    }
    return { uid: st.uid, gid: st.gid };
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/**
 * Whether the root-owned regular file at `path` starts with `nonce` (reads at most 64 bytes).
 * Only for root-owned entries of the sticky auth directory: nobody else can replace them.
 */
async function holdsNonce(path: string, nonce: string): Promise<boolean> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch {
    return false;
  }
  try {
    const buf = new Uint8Array(64);
    let n = 0;
    while (n < buf.length) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return new TextDecoder().decode(buf.subarray(0, n)) === nonce;
  } finally {
    f.close();
  }
}
