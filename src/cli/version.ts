/**
 * `kconnect version`: the version, the build stamp and the runtime it runs on.
 *
 * @module
 */

import type { Command } from "commander";
import { buildInfo, VERSION } from "../version.ts";
import { printLine } from "../cmdline/output.ts";

/** Everything `kconnect version` reports. */
export interface VersionReport {
  version: string;
  /** Git commit, or `null` when running from source. */
  commit: string | null;
  /** Build date (ISO 8601), or `null` when running from source. */
  buildDate: string | null;
  deno: string;
  v8: string;
  typescript: string;
  os: string;
  arch: string;
}

/**
 * Collects the version report for this process.
 *
 * @example
 * ```ts
 * import { versionReport } from "./version.ts";
 * versionReport().deno; // e.g. "2.9.6"
 * ```
 */
export function versionReport(): VersionReport {
  const info = buildInfo();
  return {
    version: VERSION,
    commit: info?.commit ?? null,
    buildDate: info?.date ?? null,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    arch: Deno.build.arch,
  };
}

/**
 * Formats a report as the aligned text `kconnect version` prints.
 *
 * @example
 * ```ts
 * import { formatVersionReport, versionReport } from "./version.ts";
 * formatVersionReport(versionReport()).startsWith("kconnect "); // true
 * ```
 */
export function formatVersionReport(report: VersionReport): string {
  const fromSource = "(running from source)";
  const rows: [string, string][] = [
    ["commit", report.commit ?? fromSource],
    ["built", report.buildDate ?? fromSource],
    ["deno", report.deno],
    ["v8", report.v8],
    ["typescript", report.typescript],
    ["os/arch", `${report.os}/${report.arch}`],
  ];
  return [`kconnect ${report.version}`, ...rows.map(([k, v]) => `  ${(k + ":").padEnd(12)}${v}`)]
    .join("\n");
}

/**
 * Registers `kconnect version [--json]` on `program`.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * import { registerVersion } from "./version.ts";
 * const program = new Command("kconnect");
 * registerVersion(program);
 * ```
 */
export function registerVersion(program: Command): void {
  program
    .command("version")
    .description("print the version, build stamp and runtime versions")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }) => {
      const report = versionReport();
      printLine(opts.json ? JSON.stringify(report, null, 2) : formatVersionReport(report));
    });
}
