/**
 * Undoing what the journal says is left: after a crash, `kill -9` or a power cut, the next `up`
 * or `down` puts the machine back.
 *
 * The journal knows no kind of change itself. Each owner of a host change registers how to undo
 * its kind ({@linkcode registerUndo}) when its module loads: the resolver configurators in
 * `src/resolver/`, routes in `src/routes/routes.ts`, the TUN device in `src/tun/undo.ts`.
 * `src/connect/leftovers.ts` loads them all; `up`, `down` and the daemon undo through it.
 *
 * @module
 */
import type { Journal, JournalEntry } from "./journal.ts";
import { sameProcessAlive } from "./process.ts";

/** Puts back one recorded change from its journaled `data`; resolves with what it did. */
export type Undo = (data: Record<string, unknown>) => Promise<string>;

const undos = new Map<string, Undo>();

/**
 * Registers how to undo changes of journal kind `kind`; called by the change's owner when its
 * module loads. A kind has one undo: registering another for it throws.
 *
 * @example
 * ```ts
 * import { registerUndo } from "./undo.ts";
 * registerUndo("example", (data) => Promise.resolve(`example ${data.name} removed`));
 * ```
 */
export function registerUndo(kind: string, undo: Undo): void {
  const had = undos.get(kind);
  if (had !== undefined && had !== undo) {
    throw new Error(`journal kind "${kind}" has an undo already`);
  }
  undos.set(kind, undo);
}

/** The kinds that have an undo registered so far. */
export function undoKinds(): string[] {
  return [...undos.keys()];
}

async function undoOne(e: JournalEntry): Promise<string> {
  const undo = undos.get(e.kind);
  if (undo === undefined) return `unknown change "${e.kind}" left alone`;
  return await undo(e.data);
}

/**
 * Undoes every entry whose process is gone (newest first) and returns what was done. Entries of
 * a live process belong to a running kconnect and are left alone — but a process that only got
 * the same pid later (another start time) does not keep them. An entry of a kind nobody
 * registered is dropped with `unknown change "<kind>" left alone`, so call this through
 * `src/connect/leftovers.ts`, which loads every owner of a change.
 */
export async function undoLeftovers(journal: Journal): Promise<string[]> {
  const done: string[] = [];
  for (const e of [...journal.entries()].reverse()) {
    if (e.pid !== Deno.pid && sameProcessAlive(e.pid, e.start)) continue;
    try {
      done.push(await undoOne(e));
      await journal.remove(e.id);
    } catch (err) {
      done.push(`could not undo ${e.kind}: ${(err as Error).message}`);
    }
  }
  return done;
}
