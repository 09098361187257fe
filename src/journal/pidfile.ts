/**
 * The pid file of a running `kconnect up`, so `down` can find it and a second `up` refuses.
 *
 * @module
 */
import { processAlive } from "./undo.ts";

/** What the pid file records. */
export interface UpRecord {
  pid: number;
  startedAt: string;
  context: string;
  /** Set when the kconnect daemon holds the session (then `down` asks it instead of a signal). */
  daemon?: boolean;
}

function path(dir: string): string {
  return `${dir}/up.json`;
}

/** The running `up` recorded in `dir`, or null (a stale record is ignored). */
export async function runningUp(dir: string): Promise<UpRecord | null> {
  try {
    const r = JSON.parse(await Deno.readTextFile(path(dir))) as UpRecord;
    return r.pid !== Deno.pid && processAlive(r.pid) ? r : null;
  } catch {
    return null;
  }
}

/** Records this process as the running `up`. */
export async function writeUpRecord(dir: string, context: string, daemon = false): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const r: UpRecord = {
    pid: Deno.pid,
    startedAt: new Date().toISOString(),
    context,
    ...(daemon ? { daemon } : {}),
  };
  await Deno.writeTextFile(path(dir), JSON.stringify(r) + "\n", { mode: 0o600 });
}

/** Removes the record if it is this process's. */
export async function removeUpRecord(dir: string): Promise<void> {
  try {
    const r = JSON.parse(await Deno.readTextFile(path(dir))) as UpRecord;
    if (r.pid === Deno.pid) await Deno.remove(path(dir));
  } catch { /* none */ }
}
