/**
 * Choosing how to configure the machine's resolver: what the user asked for, or what the machine
 * has (`auto`).
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { MacosResolverConfigurator } from "./macos.ts";
import type { ResolverConfigurator } from "./plan.ts";
import { ResolvConfConfigurator } from "./resolv_conf.ts";
import { resolvedAvailable, ResolvedConfigurator } from "./resolved.ts";

/** The `--dns` choices. */
export const DNS_MODES = ["auto", "resolved", "resolv.conf", "macos", "off"] as const;
/** One of {@linkcode DNS_MODES}. */
export type DnsMode = typeof DNS_MODES[number];

/** The configurator for `mode`, or null for `off`. */
export async function selectResolver(
  mode: DnsMode,
  journal: Journal,
): Promise<ResolverConfigurator | null> {
  switch (mode) {
    case "off":
      return null;
    case "resolved":
      return new ResolvedConfigurator(journal);
    case "resolv.conf":
      return new ResolvConfConfigurator(journal);
    case "macos":
      return new MacosResolverConfigurator(journal);
    case "auto":
      if (Deno.build.os === "darwin") return new MacosResolverConfigurator(journal);
      if (Deno.build.os !== "linux") return null;
      return (await resolvedAvailable())
        ? new ResolvedConfigurator(journal)
        : new ResolvConfConfigurator(journal);
  }
}
