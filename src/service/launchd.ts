/**
 * The launchd job of the kconnect daemon on macOS: a property list in /Library/LaunchDaemons,
 * loaded with `launchctl bootstrap system`. Written and unit-tested on Linux only.
 *
 * @module
 */

/** The job's label (and the plist's base name). */
export const LAUNCHD_LABEL = "dev.kconnect.daemon";

function xml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** What goes into the plist. */
export interface PlistOptions {
  /** The daemon's command line (program first). */
  programArguments: string[];
  /** Where launchd writes the daemon's stdout and stderr. */
  logFile: string;
  /** Extra environment. */
  environment?: Record<string, string>;
}

/**
 * Renders the launchd plist: run at load, kept alive after a crash (not after a clean exit),
 * output to the log file's directory.
 *
 * @example
 * ```ts
 * import { launchdPlist } from "./launchd.ts";
 * const p = launchdPlist({ programArguments: ["/usr/local/bin/kconnect", "daemon"], logFile: "/var/log/kconnect/launchd.log" });
 * p.includes("<string>dev.kconnect.daemon</string>"); // true
 * ```
 */
export function launchdPlist(o: PlistOptions): string {
  const env = { DENO_NO_UPDATE_CHECK: "1", ...o.environment };
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    "  <key>Label</key>",
    `  <string>${LAUNCHD_LABEL}</string>`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...o.programArguments.map((a) => `    <string>${xml(a)}</string>`),
    "  </array>",
    "  <key>EnvironmentVariables</key>",
    "  <dict>",
    ...Object.entries(env).flatMap((
      [k, v],
    ) => [`    <key>${xml(k)}</key>`, `    <string>${xml(v)}</string>`]),
    "  </dict>",
    "  <key>RunAtLoad</key>",
    "  <true/>",
    "  <key>KeepAlive</key>",
    "  <dict>",
    "    <key>SuccessfulExit</key>",
    "    <false/>",
    "  </dict>",
    "  <key>StandardOutPath</key>",
    `  <string>${xml(o.logFile)}</string>`,
    "  <key>StandardErrorPath</key>",
    `  <string>${xml(o.logFile)}</string>`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}
