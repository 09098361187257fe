/**
 * The status report: what `kconnect status --json` prints and the daemon's `status` request
 * answers. This file is the one definition of its schema ({@linkcode STATUS_SCHEMA}).
 *
 * `state` is `connected`, `reconnecting` (the tunnel is being re-established; TUN, routes and
 * DNS stay), `connecting` (an `up` is in progress) or `disconnected`. `session` holds the
 * connection's details ({@linkcode UpConnectionStatus}: context, server and its version, user,
 * client and manager versions, CIDRs with their sources, routes, TUN, DNS, transports with
 * round-trip times, bytes, flows, uptime, last error, warnings, and `refused`: each item of the
 * traffic manager's cluster info that kconnect did not accept, or kept out of the tunnel, with
 * the reason and how to allow it) and is null when disconnected; `daemon` is null when no daemon
 * answered.
 *
 * @module
 */
import type { UpConnectionStatus } from "../connect/up_connection.ts";
import { describeAccess } from "./access.ts";
import { describeRefusal } from "../trust/trust.ts";

/** The schema version of {@linkcode StatusReport}; bumped when a field changes meaning. */
export const STATUS_SCHEMA = 1;

/** The connection states. */
export type ConnectionState = "connected" | "reconnecting" | "connecting" | "disconnected";

/** The daemon's own facts. */
export interface DaemonInfo {
  pid: number;
  version: string;
  socket: string;
  logFile: string | null;
  stateDir: string;
  /** Who may use the daemon: its group (name or gid as given, and gid), or root and `uids`. */
  access?: { group: string | null; gid: number | null; uids: number[]; sids?: string[] };
  startedAt: string;
  uptimeSeconds: number;
}

/** What `status` reports. */
export interface StatusReport {
  schema: typeof STATUS_SCHEMA;
  state: ConnectionState;
  daemon: DaemonInfo | null;
  /** The uid that asked for the current session. */
  ownerUid: number | null;
  /** Windows: the SID of the user that asked for the current session. */
  ownerSid?: string | null;
  session: UpConnectionStatus | null;
  /** Why the last session ended or failed, if it did. */
  lastError: string | null;
  /** A one-line explanation when not connected (e.g. no daemon runs). */
  message: string | null;
}

/**
 * The report when no daemon answers.
 *
 * @example
 * ```ts
 * import { noDaemonReport } from "./status.ts";
 * noDaemonReport("not connected (no kconnect daemon running)").state; // "disconnected"
 * ```
 */
export function noDaemonReport(message: string): StatusReport {
  return {
    schema: STATUS_SCHEMA,
    state: "disconnected",
    daemon: null,
    ownerUid: null,
    session: null,
    lastError: null,
    message,
  };
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function duration(s: number): string {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(sec).padStart(2, "0")}s`
    : `${sec}s`;
}

/** The `resume` line of `status`. */
function describeResume(r: NonNullable<UpConnectionStatus["resume"]>): string {
  const mode = r.mode === "off"
    ? "off (--resume-grace 0): open flows end when the tunnel drops"
    : r.mode === "unsupported"
    ? "not supported by the traffic manager (protocol 1): open flows end when the tunnel drops"
    : `on, flows held up to ${r.graceSeconds} s while the tunnel is down, ${
      bytes(r.retainLimit ?? 0)
    } kept per transport at most (now ${bytes(r.retainedBytes ?? 0)})`;
  const held = r.held && r.mode === "on"
    ? `; now ${r.held.flows} flows held (${bytes(r.held.bytes ?? 0)}), ${r.held.secondsLeft} s left`
    : "";
  const l = r.last;
  const last = l === null
    ? ""
    : l.outcome === "resumed"
    ? `; last drop ${l.at}: ${l.streams} flows back after ${((l.afterMs ?? 0) / 1000).toFixed(1)} s`
    : `; last drop ${l.at}: ${l.streams} flows lost (${l.reason})`;
  return mode + held + last;
}

/**
 * Formats a report as the text `kconnect status` prints.
 *
 * @example
 * ```ts
 * import { formatStatus, noDaemonReport } from "./status.ts";
 * formatStatus(noDaemonReport("not connected (no kconnect daemon running)"));
 * // "not connected (no kconnect daemon running)\n"
 * ```
 */
export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  const row = (k: string, v: string) =>
    lines.push(`${k ? (k + ":").padEnd(16) : " ".repeat(16)}${v}`);
  const s = r.session;
  if (s === null) {
    lines.push(r.message ?? (r.state === "connecting" ? "connecting" : "not connected"));
  } else {
    const held = s.resume?.held;
    row(
      "state",
      held && s.state === "reconnecting"
        ? `reconnecting (${held.flows} flows held, ${held.secondsLeft} s left)`
        : r.state,
    );
    row("context", `${s.context} (user ${s.user}, namespace ${s.namespace})`);
    row("cluster", `${s.server} (Kubernetes ${s.serverVersion})`);
    row(
      "versions",
      `client ${s.clientVersion}, traffic manager ${s.manager.version} (${s.manager.namespace}/${s.manager.pod})`,
    );
    row("cluster domain", s.clusterDomain);
    for (const c of s.serviceCidrs) row("service CIDR", `${c.cidr} (${c.source})`);
    for (const c of s.podCidrs) row("pod CIDR", `${c.cidr} (${c.source})`);
    row("routes", s.routes.join(", ") || "none");
    row("TUN", `${s.tun.name}, mtu ${s.tun.mtu}`);
    row(
      "DNS",
      s.dns.mode === null
        ? "off"
        : `${s.dns.mode}, server ${s.dns.server}, domains ${
          s.dns.routingDomains.join(" ") || "none"
        }${s.dns.searchDomains.length ? `, search ${s.dns.searchDomains.join(" ")}` : ""}`,
    );
    s.transports.forEach((t, i) =>
      row(
        i === 0 ? "transports" : "",
        `#${i} ${t.state}, rtt ${
          t.rttMs === null ? "?" : `${t.rttMs.toFixed(1)} ms`
        }, ${t.streams} streams, in ${bytes(t.bytesIn)}, out ${bytes(t.bytesOut)}`,
      )
    );
    row(
      "traffic",
      `in ${bytes(s.bytes.in)}, out ${
        bytes(s.bytes.out)
      }; flows ${s.flows.tcp} TCP, ${s.flows.udp} UDP${
        s.flows.notLocal ? `; ${s.flows.notLocal} packets from other hosts dropped` : ""
      }`,
    );
    if (s.resume) row("resume", describeResume(s.resume));
    row("uptime", `${duration(s.uptimeSeconds)} (since ${s.startedAt})`);
    if (s.lastError) row("last error", s.lastError);
    for (const w of s.warnings) row("warning", w);
    // Absent from the reports of daemons before it was added.
    for (const x of s.refused ?? []) row("refused", describeRefusal(x).replace(/^refused /, ""));
  }
  if (r.lastError && s === null) row("last error", r.lastError);
  if (r.daemon) {
    row(
      "daemon",
      `pid ${r.daemon.pid}, version ${r.daemon.version}, log ${r.daemon.logFile ?? "stderr"}${
        r.daemon.access ? `; for ${describeAccess(r.daemon.access)}` : ""
      }`,
    );
  }
  return lines.join("\n") + "\n";
}
