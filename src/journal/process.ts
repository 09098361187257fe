/**
 * Whether a recorded process is still the one that was recorded: alive, and — on Linux — with
 * the same start time and executable, so that a pid the kernel handed to another process since
 * is not taken for it (`down` must never signal a stranger, and the journal's entries must not
 * stay forever behind a reused pid).
 *
 * @module
 */

/** Whether process `pid` is alive (Linux and macOS). */
export function processAlive(pid: number): boolean {
  if (Deno.build.os === "linux") {
    // Look, don't touch: a signal would resume an unrelated stopped process that got the pid.
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  }
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

/**
 * What tells a process apart from a later one that gets the same pid: its start time in clock
 * ticks since boot (field 22 of `/proc/<pid>/stat`), and its executable. Null where there is no
 * /proc (macOS) or the process is gone.
 */
export interface ProcessIdentity {
  /** Start time, clock ticks since boot, as text. */
  start: string;
  /** `/proc/<pid>/exe`, without a ` (deleted)` suffix; null when it cannot be read. */
  exe: string | null;
}

/**
 * The identity of process `pid` ({@linkcode ProcessIdentity}), or null.
 *
 * @example
 * ```ts
 * import { processIdentity } from "./process.ts";
 * const me = processIdentity(Deno.pid);
 * if (Deno.build.os === "linux" && !/^\d+$/.test(me!.start)) throw new Error();
 * ```
 */
export function processIdentity(pid: number): ProcessIdentity | null {
  if (Deno.build.os !== "linux" || !Number.isInteger(pid) || pid <= 0) return null;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold anything: count after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[19]; // field 22 overall: 3 + 19
  if (start === undefined || !/^\d+$/.test(start)) return null;
  let exe: string | null = null;
  try {
    exe = Deno.readLinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch { /* not ours to read, or a kernel thread */ }
  return { start, exe };
}

/**
 * Whether process `pid` is alive and is the process recorded with `start` (and `exe`): a pid
 * reused by another process is not. Without a recorded start time (records of older versions,
 * or macOS) only liveness is checked.
 */
export function sameProcessAlive(pid: number, start?: string, exe?: string | null): boolean {
  if (!processAlive(pid)) return false;
  if (start === undefined || Deno.build.os !== "linux") return true;
  const now = processIdentity(pid);
  if (now === null || now.start !== start) return false;
  return !exe || !now.exe || now.exe === exe;
}
