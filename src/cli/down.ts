/**
 * `kconnect down`: disconnect. Asks the kconnect daemon to disconnect (any member of its group
 * may); as root it also stops a foreground `kconnect up` (which undoes its own changes), then
 * undoes whatever the journal says is left from a run that could not (`kill -9`, a crash, a
 * power cut). A foreground `up` is signalled only while its pid still names the process its pid
 * file recorded (same start time and executable): a pid reused by another process is left alone.
 *
 * @module
 */
import type { Command } from "commander";
import { Journal, stateDir } from "../journal/journal.ts";
import { isRunning, runningUp, type UpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../connect/leftovers.ts";
import { callDaemon, DaemonUnavailableError } from "../daemon/client.ts";
import { socketPath } from "../daemon/paths.ts";
import type { DownResult } from "../daemon/protocol.ts";
import { printLine } from "../cmdline/output.ts";

interface DownOptions {
  stateDir?: string;
  socket?: string;
  timeout: string;
}

async function waitGone(up: UpRecord, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isRunning(up)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isRunning(up);
}

/** Sends `signal` to the recorded `up` if its pid still names that process; whether it did. */
function signalUp(up: UpRecord, signal: Deno.Signal): boolean {
  if (!isRunning(up)) return false;
  try {
    Deno.kill(up.pid, signal);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs `kconnect down`. */
export async function runDown(opts: DownOptions): Promise<void> {
  const root = Deno.build.os === "windows" || Deno.uid() === 0;
  let did = false;
  let daemon = true;
  try {
    const r = await callDaemon(socketPath(opts.socket), { type: "down" }) as DownResult & {
      undone?: string[];
    };
    if (r.disconnected !== null) {
      printLine(`disconnected from context "${r.disconnected}" (kconnect daemon)`);
      did = true;
    }
    for (const line of r.undone ?? []) {
      printLine(`undone: ${line}`);
      did = true;
    }
  } catch (err) {
    if (!(err instanceof DaemonUnavailableError)) throw err;
    if (err.reason === "denied" && !root) throw err;
    daemon = false;
  }
  if (!root) {
    if (!did) printLine(daemon ? "not connected" : "not connected (no kconnect daemon running)");
    return;
  }
  const dir = stateDir(opts.stateDir);
  const up = await runningUp(dir);
  if (up !== null && !up.daemon && signalUp(up, "SIGTERM")) {
    if (await waitGone(up, Number(opts.timeout) * 1000)) {
      printLine(`disconnected from context "${up.context}" (kconnect up, pid ${up.pid})`);
    } else if (signalUp(up, "SIGKILL")) {
      await waitGone(up, 5000);
      printLine(`kconnect up (pid ${up.pid}) did not stop in ${opts.timeout} s and was killed`);
    }
    did = true;
  }
  const journal = await Journal.open(dir);
  for (const line of await undoLeftovers(journal)) {
    printLine(`undone: ${line}`);
    did = true;
  }
  if (!did) printLine("not connected; nothing to undo");
}

/** Registers `kconnect down`. */
export function registerDown(program: Command): void {
  program
    .command("down")
    .description("disconnect, and undo whatever an earlier run left on this machine")
    .option(
      "--state-dir <dir>",
      "where the journal of host changes lives (default /var/lib/kconnect)",
    )
    .option(
      "--socket <path>",
      "the daemon's control socket (default: KCONNECT_SOCKET, else /run/kconnect/kconnect.sock)",
    )
    .option("--timeout <seconds>", "how long kconnect up gets to stop before it is killed", "15")
    .action((opts: DownOptions) => runDown(opts));
}
