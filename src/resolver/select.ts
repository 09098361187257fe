/**
 * Choosing how to configure the machine's resolver: what the user asked for, or what the machine
 * has (`auto`).
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { MacosResolverConfigurator } from "./macos.ts";
import { NrptConfigurator } from "./nrpt.ts";
import type { ResolverConfigurator } from "./plan.ts";
import { ResolvConfConfigurator } from "./resolv_conf.ts";
import { resolvedAvailable, ResolvedConfigurator } from "./resolved.ts";

/** The `--dns` choices. */
export const DNS_MODES = ["auto", "resolved", "resolv.conf", "macos", "nrpt", "off"] as const;
/** One of {@linkcode DNS_MODES}. */
export type DnsMode = typeof DNS_MODES[number];

/**
 * Why `mode` cannot be used on `os`, or null when it can (`macos` is for macOS only, `nrpt` for
 * Windows only).
 */
export function dnsModeProblem(mode: DnsMode, os: string = Deno.build.os): string | null {
  if (mode === "macos" && os !== "darwin") {
    return `"macos" (files in /etc/resolver) works on macOS only; this is ${os}`;
  }
  if (mode === "nrpt" && os !== "windows") {
    return `"nrpt" (Name Resolution Policy Table rules) works on Windows only; this is ${os}`;
  }
  return null;
}

/**
 * The configurator for `mode`, or null for `off`.
 *
 * @throws {Error} for `macos` anywhere but macOS.
 */
export async function selectResolver(
  mode: DnsMode,
  journal: Journal,
  os: string = Deno.build.os,
): Promise<ResolverConfigurator | null> {
  const problem = dnsModeProblem(mode, os);
  if (problem !== null) throw new Error(`--dns ${mode}: ${problem}`);
  switch (mode) {
    case "off":
      return null;
    case "resolved":
      return new ResolvedConfigurator(journal);
    case "resolv.conf":
      return new ResolvConfConfigurator(journal);
    case "macos":
      return new MacosResolverConfigurator(journal);
    case "nrpt":
      return new NrptConfigurator(journal);
    case "auto":
      if (os === "darwin") return new MacosResolverConfigurator(journal);
      if (os === "windows") return new NrptConfigurator(journal);
      if (os !== "linux") return null;
      return (await resolvedAvailable())
        ? new ResolvedConfigurator(journal)
        : new ResolvConfConfigurator(journal);
  }
}
