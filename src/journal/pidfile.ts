/**
 * The pid file of a running `kconnect up`, so `down` can find it and a second `up` refuses.
 *
 * Besides the pid it records the process's start time and executable (`/proc/<pid>/stat` and
 * `/proc/<pid>/exe`): a record whose pid now belongs to another process (the `up` died without
 * removing it, and the pid was reused) is stale, so `down` never signals a stranger.
 *
 * @module
 */
import { ensureStateDir, writeFileAtomic } from "./journal.ts";
import { processIdentity, sameProcessAlive } from "./process.ts";

/** What the pid file records. */
export interface UpRecord {
  pid: number;
  startedAt: string;
  context: string;
  /** Set when the kconnect daemon holds the session (then `down` asks it instead of a signal). */
  daemon?: boolean;
  /** The process's start time, clock ticks since boot (Linux). */
  start?: string;
  /** The process's executable (Linux). */
  exe?: string | null;
}

/**
 * Whether `r`'s process is still the one that wrote it (alive, same start time and executable).
 *
 * @example
 * ```ts
 * import { isRunning } from "./pidfile.ts";
 * isRunning({ pid: Deno.pid, startedAt: "", context: "c" }); // true
 * ```
 */
export function isRunning(r: UpRecord): boolean {
  return sameProcessAlive(r.pid, r.start, r.exe);
}

function path(dir: string): string {
  return `${dir}/up.json`;
}

/** The running `up` recorded in `dir`, or null (a stale record is ignored). */
export async function runningUp(dir: string): Promise<UpRecord | null> {
  try {
    const r = JSON.parse(await Deno.readTextFile(path(dir))) as UpRecord;
    if (!Number.isInteger(r.pid) || r.pid <= 0) return null;
    return r.pid !== Deno.pid && isRunning(r) ? r : null;
  } catch {
    return null;
  }
}

/** Records this process as the running `up`. */
export async function writeUpRecord(dir: string, context: string, daemon = false): Promise<void> {
  await ensureStateDir(dir);
  const me = processIdentity(Deno.pid);
  const r: UpRecord = {
    pid: Deno.pid,
    startedAt: new Date().toISOString(),
    context,
    ...(daemon ? { daemon } : {}),
    ...(me ? { start: me.start, exe: me.exe } : {}),
  };
  await writeFileAtomic(path(dir), JSON.stringify(r) + "\n");
}

/** Removes the record if it is this process's. */
export async function removeUpRecord(dir: string): Promise<void> {
  try {
    const r = JSON.parse(await Deno.readTextFile(path(dir))) as UpRecord;
    if (r.pid === Deno.pid) await Deno.remove(path(dir));
  } catch { /* none */ }
}
