/**
 * The journal of changes kconnect makes to the machine: each change is written here (synced to
 * disk) before it is made, and removed once it is undone, so that after a crash, `kill -9` or a
 * power cut the next `up` or `down` can undo exactly what is left.
 *
 * The state directory is root's alone: every directory leading to it must be one no other user
 * can change (`src/host/safe_path.ts`), it is mode 0700, and the journal is written to a
 * freshly created temporary file (never an existing one, never through a link) that is renamed
 * over `journal.json`.
 *
 * @module
 */
import { windowsDataDir } from "../host/data_dir.ts";
import { ensureTrustedDir } from "../host/safe_path.ts";
import { processIdentity } from "./process.ts";

/** One recorded change. `kind` says which undo applies; `data` is what the undo needs. */
export interface JournalEntry {
  id: string;
  kind: string;
  /** The process that made the change. */
  pid: number;
  /** That process's start time (`/proc/<pid>/stat`), so a reused pid is told apart. */
  start?: string;
  createdAt: string;
  data: Record<string, unknown>;
}

interface JournalFile {
  version: 1;
  entries: JournalEntry[];
}

/** Where kconnect keeps its state unless told otherwise. */
export const DEFAULT_STATE_DIR = "/var/lib/kconnect";

/** The state directory: `--state-dir`, else KCONNECT_STATE_DIR, else the default. */
export function stateDir(flag?: string): string {
  return flag ?? Deno.env.get("KCONNECT_STATE_DIR") ??
    (Deno.build.os === "windows" ? `${windowsDataDir()}\\state` : DEFAULT_STATE_DIR);
}

/** A journal file. Not safe for two processes at once: `up` holds a pid file for that. */
export class Journal {
  readonly path: string;
  #entries: JournalEntry[];

  private constructor(path: string, entries: JournalEntry[]) {
    this.path = path;
    this.#entries = entries;
  }

  /** Opens (or creates) the journal in `dir`. A damaged file is kept aside and reported. */
  static async open(dir: string): Promise<Journal> {
    await ensureStateDir(dir);
    const path = `${dir}/journal.json`;
    let entries: JournalEntry[] = [];
    try {
      const parsed = JSON.parse(await Deno.readTextFile(path)) as JournalFile;
      if (parsed?.version !== 1 || !Array.isArray(parsed.entries)) {
        throw new SyntaxError("not a journal");
      }
      entries = parsed.entries;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        const aside = `${path}.damaged-${Date.now()}`;
        await Deno.rename(path, aside).catch(() => {});
        throw new Error(
          `kconnect's journal ${path} is damaged (${
            (err as Error).message
          }); it was moved to ${aside}. ` +
            "Check the machine's resolver settings and routes by hand.",
        );
      }
    }
    return new Journal(path, entries);
  }

  /** The recorded changes, oldest first. */
  entries(): readonly JournalEntry[] {
    return this.#entries;
  }

  /** Records a change that is about to be made; returns its id. */
  async add(kind: string, data: Record<string, unknown>): Promise<string> {
    const id = `${kind}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const start = processIdentity(Deno.pid)?.start;
    this.#entries = [...this.#entries, {
      id,
      kind,
      pid: Deno.pid,
      ...(start ? { start } : {}),
      createdAt: new Date().toISOString(),
      data,
    }];
    await this.#save();
    return id;
  }

  /** Replaces the data of an entry (e.g. once the change is known in full). */
  async update(id: string, data: Record<string, unknown>): Promise<void> {
    this.#entries = this.#entries.map((e) => (e.id === id ? { ...e, data } : e));
    await this.#save();
  }

  /** Forgets an entry whose change was undone. */
  async remove(id: string): Promise<void> {
    this.#entries = this.#entries.filter((e) => e.id !== id);
    await this.#save();
  }

  /** Saves run one after another, each writing the entries as they are when it runs. */
  #saving: Promise<void> = Promise.resolve();

  #save(): Promise<void> {
    const next = this.#saving.then(() => this.#write(), () => this.#write());
    this.#saving = next.catch(() => {});
    return next;
  }

  async #write(): Promise<void> {
    const body: JournalFile = { version: 1, entries: this.#entries };
    await writeFileAtomic(this.path, JSON.stringify(body, null, 2) + "\n");
  }
}

/**
 * Makes the state directory `dir` (mode 0700, owned by root) after checking that no other user
 * can change any directory leading to it.
 *
 * @throws {Error} when it is not safe to use.
 */
export async function ensureStateDir(dir: string): Promise<void> {
  await ensureTrustedDir(absolute(dir), { mode: 0o700, what: "kconnect's state directory" });
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Writes `text` to `path` through a new file beside it (created exclusively, mode 0600, synced)
 * that is then renamed over `path`: no existing file or link is ever opened for writing.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = `${path}.tmp-${Deno.pid}-${rand}`;
  const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    const bytes = new TextEncoder().encode(text);
    for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (err) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  f.close();
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
