/**
 * `kconnect status [--json]`: what the kconnect daemon reports (see `src/daemon/status.ts` for
 * the JSON schema).
 *
 * Exit status: 0 when connected (or connecting, reconnecting), 3 when not connected — including
 * when no daemon runs ("not connected (no kconnect daemon running)") — and 1 when the daemon
 * cannot be asked (e.g. the user is not in its group).
 *
 * @module
 */
import type { Command } from "commander";
import { stateDir } from "../journal/journal.ts";
import { runningUp } from "../journal/pidfile.ts";
import { callDaemon, DaemonUnavailableError } from "../daemon/client.ts";
import { socketPath } from "../daemon/paths.ts";
import { formatStatus, noDaemonReport, type StatusReport } from "../daemon/status.ts";
import { print, printLine } from "../cmdline/output.ts";
import { ExitStatus } from "../cmdline/program.ts";

/** Exit status of `kconnect status` when not connected. */
export const EXIT_NOT_CONNECTED = 3;

interface StatusOptions {
  json?: boolean;
  socket?: string;
  stateDir?: string;
}

/** Asks the daemon on `socket` for its report; a report saying so when none runs. */
export async function statusReport(socket: string, dir?: string): Promise<StatusReport> {
  try {
    return await callDaemon(socket, { type: "status" }) as StatusReport;
  } catch (err) {
    if (!(err instanceof DaemonUnavailableError) || err.reason !== "absent") throw err;
    const fg = Deno.uid() === 0 ? await runningUp(stateDir(dir)).catch(() => null) : null;
    return noDaemonReport(
      fg !== null && !fg.daemon
        ? `not connected through the daemon (no kconnect daemon running); a foreground kconnect up (pid ${fg.pid}) is connected to context "${fg.context}"`
        : "not connected (no kconnect daemon running)",
    );
  }
}

/** Runs `kconnect status`. */
export async function runStatus(opts: StatusOptions): Promise<void> {
  const r = await statusReport(socketPath(opts.socket), opts.stateDir);
  if (opts.json) printLine(JSON.stringify(r, null, 2));
  else print(formatStatus(r));
  if (r.state === "disconnected") throw new ExitStatus(EXIT_NOT_CONNECTED);
}

/** Registers `kconnect status`. */
export function registerStatus(program: Command): void {
  program
    .command("status")
    .description(
      "show the connection: state, cluster, networks, routes, DNS, transports (exit 3 when not connected)",
    )
    .option("--json", "print the report as JSON")
    .option(
      "--socket <path>",
      "the daemon's control socket (default: KCONNECT_SOCKET, else /run/kconnect/kconnect.sock)",
    )
    .option("--state-dir <dir>", "state directory, to spot a foreground kconnect up")
    .action((opts: StatusOptions) => runStatus(opts));
}
