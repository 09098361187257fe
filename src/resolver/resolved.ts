/**
 * Linux with systemd-resolved: split DNS on the TUN link. kconnect's server becomes the link's
 * DNS server, the cluster's domains become the link's routing domains (`~cluster.local`, `~svc`,
 * one per namespace, the reverse zones), the connected namespace's search domains make short
 * names work, and the link is never the default route for other names. Everything is on the link,
 * which disappears with the TUN; `resolvectl revert` undoes it earlier.
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { registerUndo } from "../journal/undo.ts";
import type { DnsPlan, ResolverConfigurator } from "./plan.ts";
import { isDnsName, TUN_NAME } from "../trust/trust.ts";
import { parseAddress } from "../wire/address.ts";

/** Refuses a plan whose link, server or domains `resolvectl` could read as something else. */
function checkPlan(plan: DnsPlan): void {
  if (!TUN_NAME.test(plan.link)) {
    throw new TypeError(`Interface name ${JSON.stringify(plan.link)} is not one kconnect uses`);
  }
  if (parseAddress(plan.server) === null) {
    throw new TypeError(`kconnect's DNS server ${JSON.stringify(plan.server)} is not an address`);
  }
  for (const d of [...plan.routingDomains, ...plan.searchDomains]) {
    if (!isDnsName(d)) throw new TypeError(`Domain ${JSON.stringify(d)} is not a DNS name`);
  }
}

/** The journal kind of this change. */
export const RESOLVED_KIND = "resolved-link";

async function resolvectl(args: string[], timeoutMs = 5000): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("resolvectl", {
      args: ["--no-pager", ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error("resolvectl is not installed");
    throw new Error(`resolvectl ${args.join(" ")}: ${(err as Error).message}`);
  }
  if (!out.success) {
    throw new Error(
      `resolvectl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Whether systemd-resolved is running and answering (through resolvectl). */
export async function resolvedAvailable(): Promise<boolean> {
  try {
    await resolvectl(["status"], 3000);
    return true;
  } catch {
    return false;
  }
}

/** Undoes the link configuration (the link may be gone already: then there is nothing to do). */
export async function undoResolvedLink(link: string): Promise<string> {
  // From the journal, which only root writes; still, never hand resolvectl an option.
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(link)) {
    return `${JSON.stringify(link)} is not an interface name; its DNS settings were left alone`;
  }
  try {
    await resolvectl(["revert", link]);
    return `DNS settings of ${link} reverted`;
  } catch (err) {
    if (/not found|No such|Failed to resolve interface/i.test((err as Error).message)) {
      return `${link} is gone, and its DNS settings with it`;
    }
    throw err;
  }
}

registerUndo(RESOLVED_KIND, (data) => undoResolvedLink(String(data.link)));

/** Configures systemd-resolved for the TUN link. */
export class ResolvedConfigurator implements ResolverConfigurator {
  readonly mode = "systemd-resolved";
  readonly #journal: Journal;
  #id: string | null = null;
  #link: string | null = null;

  constructor(journal: Journal) {
    this.#journal = journal;
  }

  upstreamServers(): null {
    return null;
  }

  async apply(plan: DnsPlan): Promise<void> {
    checkPlan(plan);
    this.#link = plan.link;
    this.#id = await this.#journal.add(RESOLVED_KIND, { link: plan.link });
    await resolvectl(["dns", plan.link, plan.server]);
    await this.update(plan);
    await resolvectl(["default-route", plan.link, "false"]);
    for (const off of ["llmnr", "mdns"]) await resolvectl([off, plan.link, "no"]).catch(() => {});
    await resolvectl(["flush-caches"]).catch(() => {});
  }

  async update(plan: DnsPlan): Promise<void> {
    checkPlan(plan);
    await resolvectl([
      "domain",
      plan.link,
      ...plan.routingDomains.map((d) => `~${d}`),
      ...plan.searchDomains,
    ]);
  }

  async restore(): Promise<void> {
    if (this.#link === null || this.#id === null) return;
    await undoResolvedLink(this.#link);
    await this.#journal.remove(this.#id);
    this.#link = null;
    this.#id = null;
  }
}
