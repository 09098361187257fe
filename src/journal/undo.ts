/**
 * Undoing what the journal says is left: after a crash, `kill -9` or a power cut, the next `up`
 * or `down` puts the machine back.
 *
 * @module
 */
import {
  RESOLVER_FILE_KIND,
  type ResolverFileRecord,
  undoResolverFile,
} from "../resolver/macos.ts";
import {
  RESOLV_CONF_KIND,
  type ResolvConfRecord,
  undoResolvConf,
} from "../resolver/resolv_conf.ts";
import { RESOLVED_KIND, undoResolvedLink } from "../resolver/resolved.ts";
import type { Journal, JournalEntry } from "./journal.ts";
import { deleteRoute } from "../routes/linux.ts";
import { Cidr } from "../wire/address.ts";
import { sameProcessAlive } from "./process.ts";

export { processAlive } from "./process.ts";

/** The journal kind of a route kconnect added (`{ cidr, dev }`). */
export const ROUTE_KIND = "route";
/** The journal kind of a TUN device kconnect created (`{ name }`). */
export const TUN_KIND = "tun";

async function undoTun(name: string): Promise<string> {
  if (Deno.build.os !== "linux") return `TUN ${name}: nothing to do`;
  const show = await new Deno.Command("ip", {
    args: ["-d", "-j", "link", "show", name],
    stdout: "piped",
    stderr: "null",
  })
    .output().catch(() => null);
  if (show === null || !show.success) return `TUN ${name} is gone`;
  const [link] = JSON.parse(new TextDecoder().decode(show.stdout) || "[{}]");
  if (link?.linkinfo?.info_kind !== "tun") {
    return `${name} is not a TUN device any more; left alone`;
  }
  await new Deno.Command("ip", { args: ["link", "del", name], stdout: "null", stderr: "null" })
    .output();
  return `TUN ${name} removed`;
}

async function undoOne(e: JournalEntry): Promise<string> {
  switch (e.kind) {
    case RESOLV_CONF_KIND:
      return await undoResolvConf(e.data as ResolvConfRecord);
    case RESOLVED_KIND:
      return await undoResolvedLink(String(e.data.link));
    case RESOLVER_FILE_KIND:
      return await undoResolverFile(e.data as ResolverFileRecord);
    case TUN_KIND:
      return await undoTun(String(e.data.name));
    case ROUTE_KIND: {
      const cidr = Cidr.parse(String(e.data.cidr));
      if (cidr === null) return `bad route entry ${e.data.cidr} left alone`;
      await deleteRoute(cidr, String(e.data.dev));
      return `route ${cidr} via ${e.data.dev} removed`;
    }
    default:
      return `unknown change "${e.kind}" left alone`;
  }
}

/**
 * Undoes every entry whose process is gone (newest first) and returns what was done. Entries of
 * a live process belong to a running kconnect and are left alone — but a process that only got
 * the same pid later (another start time) does not keep them.
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
