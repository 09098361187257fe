/**
 * The systemd unit of the kconnect daemon, and reading a unit's `ExecStart` back.
 *
 * Hardening: only settings that leave TUN devices, routes, resolver files (`/etc/resolv.conf`),
 * systemd-resolved over D-Bus and the credentials command run as users (`setpriv`, exec plugins
 * writing their caches in the user's home) working. So no `ProtectSystem=full` (it makes /etc
 * read-only), no `ProtectHome`, no `PrivateTmp`, no `ProtectKernelTunables` (the TUN driver
 * writes `/proc/sys/net/ipv6/conf/<tun>/accept_dad`), no capability bounding set; but no new
 * privileges, read-only /usr and /boot, no kernel module loading or clock changes, only the
 * address families kconnect uses. Written for real systemd but only run here the way systemd
 * would run `ExecStart` (there is no systemd as PID 1 on the machines this is built on).
 *
 * @module
 */

/** The unit's name. */
export const UNIT_NAME = "kconnect.service";

/**
 * Quotes one word for a systemd command line: `%` and `$` are escaped (specifiers and variable
 * expansion), and words with spaces or quotes are double-quoted.
 *
 * @example
 * ```ts
 * import { quoteSystemdWord } from "./systemd.ts";
 * quoteSystemdWord("/opt/my apps/kconnect"); // '"/opt/my apps/kconnect"'
 * quoteSystemdWord("50%"); // "50%%"
 * ```
 */
export function quoteSystemdWord(word: string): string {
  const escaped = word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Splits a unit's command line into words (the inverse of {@linkcode quoteSystemdWord} joined
 * with spaces): double and single quotes, backslash escapes, `%%` and `$$`.
 *
 * @example
 * ```ts
 * import { splitSystemdCommand } from "./systemd.ts";
 * splitSystemdCommand('"/opt/my apps/k" daemon --group kconnect'); // ["/opt/my apps/k", "daemon", "--group", "kconnect"]
 * ```
 */
export function splitSystemdCommand(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) break;
    let w = "";
    while (i < line.length && line[i] !== " " && line[i] !== "\t") {
      const c = line[i];
      if (c === '"' || c === "'") {
        i++;
        while (i < line.length && line[i] !== c) {
          if (line[i] === "\\" && c === '"') i++;
          w += line[i++];
        }
        i++;
      } else if (c === "\\") {
        w += line[i + 1] ?? "";
        i += 2;
      } else {
        w += c;
        i++;
      }
    }
    words.push(w.replaceAll("%%", "%").replaceAll("$$", "$"));
  }
  return words;
}

/** What goes into the unit. */
export interface UnitOptions {
  /** The daemon's command line (program first). */
  execStart: string[];
  /** Extra `Environment=` entries. */
  environment?: Record<string, string>;
}

/**
 * Renders the unit file.
 *
 * @example
 * ```ts
 * import { systemdUnit } from "./systemd.ts";
 * const unit = systemdUnit({ execStart: ["/usr/local/bin/kconnect", "daemon", "--group", "kconnect"] });
 * unit.includes("ExecStart=/usr/local/bin/kconnect daemon --group kconnect"); // true
 * ```
 */
export function systemdUnit(o: UnitOptions): string {
  const env = Object.entries({ DENO_NO_UPDATE_CHECK: "1", ...o.environment })
    .map(([k, v]) => `Environment=${quoteSystemdWord(`${k}=${v}`)}`);
  return [
    "# Written by `kconnect service install`; `kconnect service uninstall` removes it.",
    "[Unit]",
    "Description=kconnect daemon: a Kubernetes cluster's network on this machine",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${o.execStart.map(quoteSystemdWord).join(" ")}`,
    "Restart=on-failure",
    "RestartSec=2s",
    "TimeoutStopSec=30s",
    ...env,
    "RuntimeDirectory=kconnect",
    "RuntimeDirectoryMode=0750",
    "StateDirectory=kconnect",
    "StateDirectoryMode=0700",
    "LogsDirectory=kconnect",
    "LogsDirectoryMode=0750",
    "# Hardening that keeps TUN devices, routes, resolver settings and setpriv working.",
    "NoNewPrivileges=yes",
    "ProtectSystem=true",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "RestrictNamespaces=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * The `ExecStart` of a unit file's text, split into words.
 *
 * @throws {Error} when the unit has none.
 */
export function unitExecStart(unit: string): string[] {
  const line = unit.split("\n").find((l) => l.startsWith("ExecStart="));
  if (!line) throw new Error("The unit has no ExecStart= line");
  return splitSystemdCommand(line.slice("ExecStart=".length));
}

/** The `Environment=` entries of a unit file's text. */
export function unitEnvironment(unit: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of unit.split("\n")) {
    if (!l.startsWith("Environment=")) continue;
    for (const kv of splitSystemdCommand(l.slice("Environment=".length))) {
      const i = kv.indexOf("=");
      if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  return out;
}
