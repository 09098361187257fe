/**
 * A TUN device kconnect created, as the journal records it, and how the next `up` or `down`
 * removes one that a kconnect that is gone left behind (registered with the journal when this
 * module loads).
 *
 * @module
 */
import { registerUndo } from "../journal/undo.ts";

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

registerUndo(TUN_KIND, (data) => undoTun(String(data.name)));
