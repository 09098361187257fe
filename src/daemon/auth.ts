/**
 * Who is at the other end of the daemon's socket.
 *
 * **From the kernel** (Linux, the normal case): the daemon owns its listening socket through FFI
 * and reads `SO_PEERCRED` of each accepted connection (`peercred.ts`): the uid and gid the
 * connecting process had at `connect()`, recorded by the kernel. Nothing the client sends or
 * creates is involved.
 *
 * **By a file** (where that is not available: other systems, or a libc that cannot be loaded):
 * the daemon owns a directory `auth/` beside its socket, mode `1730 root:<group>` (or `1733
 * root:root` for a daemon with no group, see `access.ts`): those who may connect may create
 * files in it but not list it, and the sticky bit stops them from removing or renaming each
 * other's files. For each connection:
 *
 * 1. the daemon sends a fresh 128-bit random nonce (`hello`);
 * 2. the client creates `auth/<nonce>` (O_CREAT|O_EXCL, mode 0600) and writes the nonce into
 *    it, then sends its request;
 * 3. the daemon `lstat`s the file (a regular file, not a symlink, with one link), opens it with
 *    `O_NOFOLLOW|O_NONBLOCK` (a symlink swapped in is refused, a FIFO does not block), checks
 *    that the open file is the one it `lstat`ed (same device and inode, still one link), and
 *    reads at most 64 bytes, which must be the nonce. The file's owner and group — set by the
 *    kernel from the creating process's ids, which no unprivileged process can choose — are the
 *    client's uid and gid. The daemon removes the file at once.
 *
 * The content check is what makes a hard link useless: where one may link files one does not own
 * (`fs.protected_hardlinks=0`, macOS), a user could link another user's (or root's) file into
 * `auth/` and remove the original, but the linked file cannot hold a nonce that was made a
 * moment ago and sent only to this connection.
 *
 * Both ways, clients still create the proof file when the daemon names an auth directory
 * (protocol version 1 has every daemon do so); a daemon that has the kernel's answer only removes
 * it. The sweeper removes whatever else appears in `auth/`.
 *
 * Limits: the kernel's answer is about the process that connected; the file proves who created
 * the file. Either way a process that passes its connection to another user's process
 * (SCM_RIGHTS, or a shared fd) lends its identity — the same trust as handing over a logged-in
 * terminal. With a group, only members reach the socket at all (directory 0750, socket 0660), so
 * this decides *which* member asks; without one it decides whether the client is let in at all.
 * Supplementary groups are never taken from the client: the daemon takes them from the user
 * database (or none).
 *
 * @module
 */
import fs from "node:fs";

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
 * Daemon side (the file proof): checks `<authDir>/<nonce>` and returns who made it; removes the
 * file.
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
    const held = readProof(path, st);
    if (held !== nonce) throw new Error(`${path} does not hold the nonce`);
    return { uid: st.uid, gid: st.gid };
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/**
 * Reads up to 64 bytes of the proof file at `path`, which `lstat` found to be `st`, without
 * following a symlink or blocking on a FIFO, and only if the opened file is still that one.
 *
 * @throws {Error} when it cannot be opened or is not the file `st` describes.
 */
function readProof(path: string, st: Deno.FileInfo): string {
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY);
  } catch (err) {
    throw new Error(`cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    const f = fs.fstatSync(fd);
    if (!f.isFile() || f.nlink !== 1 || f.ino !== st.ino || f.dev !== st.dev) {
      throw new Error(`${path} changed while it was checked`);
    }
    const buf = new Uint8Array(64);
    let n = 0;
    while (n < buf.length) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r <= 0) break;
      n += r;
    }
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}
