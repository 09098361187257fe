/**
 * macOS: one file per domain in `/etc/resolver/` naming kconnect's server, which the system
 * resolver uses for names in that domain (split DNS by design). Files that existed before are
 * journaled and restored; new ones are removed.
 *
 * The domain becomes a file name that root writes, so each one is checked again here (a DNS name
 * in normal form: no `/`, no `.` or `..`, no control characters or spaces), every file is
 * written as a temporary file in the directory and renamed into place, and the directory must
 * be the one configured once symlinks are resolved. Nothing is written when a check fails.
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { registerUndo } from "../journal/undo.ts";
import type { DnsPlan, ResolverConfigurator } from "./plan.ts";
import { decodeBase64, encodeBase64 } from "../io/bytes.ts";
import { isDnsName } from "../trust/trust.ts";
import { parseAddress } from "../wire/address.ts";

/** The journal kind of this change. */
export const RESOLVER_FILE_KIND = "resolver-file";

/** What the journal keeps per file. */
export interface ResolverFileRecord extends Record<string, unknown> {
  path: string;
  /** Base64 of the file kconnect replaced, or null if there was none. */
  original: string | null;
}

/** Why `domain` may not name a file in the resolver directory, or null when it may. */
export function resolverDomainProblem(domain: unknown): string | null {
  if (typeof domain !== "string") return "not text";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0020\u007f/\\]/.test(domain)) {
    return "holds a slash, a space or a control character";
  }
  if (domain === "." || domain === ".." || domain === "") return "not a file name";
  if (!isDnsName(domain)) return "not a DNS name in normal form";
  return null;
}

/** The content of one resolver file. */
export function resolverFile(server: string, domain: string): string {
  const problem = resolverDomainProblem(domain);
  if (problem !== null) {
    throw new TypeError(`Resolver domain ${JSON.stringify(domain)}: ${problem}`);
  }
  if (parseAddress(server) === null) {
    throw new TypeError(`Resolver server ${JSON.stringify(server)} is not an IP address`);
  }
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

registerUndo(RESOLVER_FILE_KIND, (data) => undoResolverFile(data as ResolverFileRecord));

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

  /** The file for `domain`, after the checks above; throws before anything is written. */
  #pathOf(domain: string): string {
    const problem = resolverDomainProblem(domain);
    if (problem !== null) {
      throw new TypeError(
        `Refusing to write a resolver file for ${JSON.stringify(domain)}: ${problem}`,
      );
    }
    return `${this.#dir}/${domain}`;
  }

  /** Writes `text` to `path` through a temporary file renamed into place in the same directory. */
  async #write(path: string, text: string): Promise<void> {
    const name = path.slice(this.#dir.length + 1);
    const tmp = `${this.#dir}/.${name}.kconnect-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await Deno.writeTextFile(tmp, text, { createNew: true, mode: 0o644 });
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  async update(plan: DnsPlan): Promise<void> {
    // Every name is checked before anything changes on disk.
    const paths = plan.routingDomains.map((d) => ({ domain: d, path: this.#pathOf(d) }));
    const content = new Map(paths.map((p) => [p.domain, resolverFile(plan.server, p.domain)]));
    await Deno.mkdir(this.#dir, { recursive: true });
    const dir = await Deno.realPath(this.#dir);
    for (const { path } of paths) {
      const parent = path.slice(0, path.lastIndexOf("/")) || "/";
      if (await Deno.realPath(parent) !== dir) {
        throw new Error(`Refusing to write ${path}: it is not a file directly in ${this.#dir}`);
      }
    }
    const want = new Set(paths.map((p) => p.path));
    for (const [path, id] of this.#files) {
      if (want.has(path)) continue;
      await undoResolverFile(
        (this.#journal.entries().find((e) => e.id === id)!.data) as ResolverFileRecord,
      );
      await this.#journal.remove(id);
      this.#files.delete(path);
    }
    for (const { domain, path } of paths) {
      if (this.#files.has(path)) continue;
      let original: string | null = null;
      const st = await Deno.lstat(path).catch(() => null);
      if (st !== null && !st.isFile) {
        throw new Error(`Refusing to replace ${path}: it is not a regular file`);
      }
      if (st !== null) original = encodeBase64(await Deno.readFile(path));
      this.#files.set(path, await this.#journal.add(RESOLVER_FILE_KIND, { path, original }));
      await this.#write(path, content.get(domain)!);
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
