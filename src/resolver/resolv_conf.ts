/**
 * Linux without systemd-resolved: `/etc/resolv.conf` points at kconnect while connected, with the
 * original nameservers kept after it (so names still resolve if kconnect dies) and the original
 * search list after the cluster's. The original bytes, mode and symlink are journaled before the
 * file is touched and restored exactly.
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { registerUndo } from "../journal/undo.ts";
import { parseResolvConf } from "../dns/resolv_conf.ts";
import type { DnsPlan, ResolverConfigurator } from "./plan.ts";
import { decodeBase64, encodeBase64, sha256Hex } from "../io/bytes.ts";
import { isDnsName } from "../trust/trust.ts";
import { parseAddress } from "../wire/address.ts";

/** The journal kind of this change. */
export const RESOLV_CONF_KIND = "resolv.conf";

/** What the journal keeps to undo the change. */
export interface ResolvConfRecord extends Record<string, unknown> {
  path: string;
  /** The original content, base64 (empty when the file did not exist). */
  original: string;
  existed: boolean;
  /** The original was a symlink to this target. */
  symlink: string | null;
  mode: number | null;
  /** sha256 of what kconnect wrote: restore only if the file still holds it. */
  written: string;
  /** While an update is being written, the sha256 of the previous content. */
  alsoWritten?: string;
}

/** A token of the original file that is safe to write back: printable, no spaces. */
const TOKEN = /^[\x21-\x7e]{1,253}$/;

/**
 * Builds the content kconnect writes. Nothing in `plan` can add a line: the server must be an IP
 * address and each search domain a DNS name (else this throws); of the original, only
 * nameserver addresses, printable search tokens and its own `options` lines are kept.
 */
export function kconnectResolvConf(original: string, plan: DnsPlan): string {
  if (parseAddress(plan.server) === null) {
    throw new TypeError(`kconnect's DNS server ${JSON.stringify(plan.server)} is not an address`);
  }
  for (const d of plan.searchDomains) {
    if (!isDnsName(d)) {
      throw new TypeError(`Search domain ${JSON.stringify(d)} is not a DNS name; not writing it`);
    }
  }
  const conf = parseResolvConf(original);
  const servers = [
    plan.server,
    ...conf.nameservers.filter((s) => s !== plan.server && parseAddress(s.replace(/%.*$/, ""))),
  ].slice(0, 3);
  const search = [
    ...plan.searchDomains,
    ...conf.search.filter((s) => !plan.searchDomains.includes(s) && TOKEN.test(s)),
  ];
  const options = original.split(/\r?\n/).filter((l) => /^\s*options\s/.test(l))
    // deno-lint-ignore no-control-regex
    .filter((l) => !/[\u0000-\u0008\u000a-\u001f\u007f]/.test(l));
  return [
    "# Written by kconnect while connected to a cluster; the original comes back on disconnect",
    "# (kconnect down restores it after a crash).",
    ...servers.map((s) => `nameserver ${s}`),
    `search ${search.join(" ")}`,
    ...options,
    "",
  ].join("\n");
}

async function writeFile(path: string, text: string, mode: number | null): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const tmp = `${dir}/.${path.split("/").pop()}.kconnect-tmp`;
  try {
    await Deno.writeFile(tmp, bytes, { mode: mode ?? 0o644 });
    await Deno.rename(tmp, path);
  } catch {
    // A bind-mounted resolv.conf (containers, `ip netns exec`) cannot be replaced: write in place.
    await Deno.remove(tmp).catch(() => {});
    await Deno.writeFile(path, bytes);
  }
  if (mode !== null) await Deno.chmod(path, mode).catch(() => {});
}

/** Undoes a journaled resolv.conf change; returns what happened, in words. */
export async function undoResolvConf(r: ResolvConfRecord): Promise<string> {
  let current: Uint8Array | null = null;
  try {
    current = await Deno.readFile(r.path);
  } catch { /* gone */ }
  const ours = [r.written, r.alsoWritten].filter((h) => h !== undefined);
  if (current !== null && !ours.includes(await sha256Hex(current))) {
    return `${r.path} was changed by something else since kconnect wrote it; left as it is`;
  }
  if (r.symlink !== null) {
    await Deno.remove(r.path).catch(() => {});
    await Deno.symlink(r.symlink, r.path);
    return `${r.path} is again a symlink to ${r.symlink}`;
  }
  if (!r.existed) {
    await Deno.remove(r.path).catch(() => {});
    return `${r.path} removed (it did not exist before)`;
  }
  await writeFile(r.path, new TextDecoder().decode(decodeBase64(r.original)), r.mode);
  return `${r.path} restored`;
}

registerUndo(RESOLV_CONF_KIND, (data) => undoResolvConf(data as ResolvConfRecord));

/** Points resolv.conf at kconnect. */
export class ResolvConfConfigurator implements ResolverConfigurator {
  readonly mode = "resolv.conf";
  readonly #journal: Journal;
  readonly #path: string;
  #id: string | null = null;
  #record: ResolvConfRecord | null = null;
  #upstream: string[] = [];

  constructor(journal: Journal, path = "/etc/resolv.conf") {
    this.#journal = journal;
    this.#path = path;
  }

  upstreamServers(): string[] {
    return this.#upstream;
  }

  async apply(plan: DnsPlan): Promise<void> {
    let original = new Uint8Array();
    let existed = true;
    let symlink: string | null = null;
    let mode: number | null = null;
    try {
      const l = await Deno.lstat(this.#path);
      if (l.isSymlink) symlink = await Deno.readLink(this.#path);
      original = await Deno.readFile(this.#path);
      mode = (await Deno.stat(this.#path)).mode! & 0o7777;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      existed = false;
    }
    const text = new TextDecoder().decode(original);
    this.#upstream = parseResolvConf(text).nameservers.filter((s) => s !== plan.server);
    const next = kconnectResolvConf(text, plan);
    this.#record = {
      path: this.#path,
      original: encodeBase64(original),
      existed,
      symlink,
      mode,
      written: await sha256Hex(new TextEncoder().encode(next)),
    };
    this.#id = await this.#journal.add(RESOLV_CONF_KIND, this.#record);
    await writeFile(this.#path, next, mode);
  }

  async update(plan: DnsPlan): Promise<void> {
    if (this.#record === null || this.#id === null) return this.apply(plan);
    const original = new TextDecoder().decode(decodeBase64(this.#record.original));
    const next = kconnectResolvConf(original, plan);
    const written = await sha256Hex(new TextEncoder().encode(next));
    if (written === this.#record.written) return;
    const previous = this.#record;
    this.#record = { ...previous, written };
    // Journal both states: whichever the file holds after a crash is recognised as ours.
    await this.#journal.update(this.#id, { ...this.#record, alsoWritten: previous.written });
    await writeFile(this.#path, next, previous.mode);
    await this.#journal.update(this.#id, this.#record);
  }

  async restore(): Promise<void> {
    if (this.#record === null || this.#id === null) return;
    await undoResolvConf(this.#record);
    await this.#journal.remove(this.#id);
    this.#record = null;
    this.#id = null;
  }
}
