/**
 * macOS: one file per domain in `/etc/resolver/` naming kconnect's server, which the system
 * resolver uses for names in that domain (split DNS by design). Files that existed before are
 * journaled and restored; new ones are removed.
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import type { DnsPlan, ResolverConfigurator } from "./plan.ts";
import { decodeBase64, encodeBase64 } from "./_bytes.ts";

/** The journal kind of this change. */
export const RESOLVER_FILE_KIND = "resolver-file";

/** What the journal keeps per file. */
export interface ResolverFileRecord extends Record<string, unknown> {
  path: string;
  /** Base64 of the file kconnect replaced, or null if there was none. */
  original: string | null;
}

/** The content of one resolver file. */
export function resolverFile(server: string, domain: string): string {
  return `# Written by kconnect while connected; removed on disconnect.\ndomain ${domain}\nnameserver ${server}\nport 53\n`;
}

/** Undoes one resolver file. */
export async function undoResolverFile(r: ResolverFileRecord): Promise<string> {
  if (r.original === null) {
    await Deno.remove(r.path).catch(() => {});
    return `${r.path} removed`;
  }
  await Deno.writeFile(r.path, decodeBase64(r.original));
  return `${r.path} restored`;
}

/** Writes `/etc/resolver/<domain>` files. */
export class MacosResolverConfigurator implements ResolverConfigurator {
  readonly mode = "/etc/resolver";
  readonly #journal: Journal;
  readonly #dir: string;
  readonly #files = new Map<string, string>(); // path → journal id

  constructor(journal: Journal, dir = "/etc/resolver") {
    this.#journal = journal;
    this.#dir = dir;
  }

  upstreamServers(): null {
    return null;
  }

  apply(plan: DnsPlan): Promise<void> {
    return this.update(plan);
  }

  async update(plan: DnsPlan): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    const want = new Set(plan.routingDomains.map((d) => `${this.#dir}/${d}`));
    for (const [path, id] of this.#files) {
      if (want.has(path)) continue;
      await undoResolverFile(
        (this.#journal.entries().find((e) => e.id === id)!.data) as ResolverFileRecord,
      );
      await this.#journal.remove(id);
      this.#files.delete(path);
    }
    for (const domain of plan.routingDomains) {
      const path = `${this.#dir}/${domain}`;
      if (this.#files.has(path)) continue;
      let original: string | null = null;
      try {
        original = encodeBase64(await Deno.readFile(path));
      } catch { /* none */ }
      this.#files.set(path, await this.#journal.add(RESOLVER_FILE_KIND, { path, original }));
      await Deno.writeTextFile(path, resolverFile(plan.server, domain));
    }
  }

  async restore(): Promise<void> {
    for (const [path, id] of this.#files) {
      const e = this.#journal.entries().find((x) => x.id === id);
      if (e) await undoResolverFile(e.data as ResolverFileRecord);
      await this.#journal.remove(id);
      this.#files.delete(path);
    }
  }
}
