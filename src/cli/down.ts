/**
 * `kconnect down`: disconnect. Stops a running `kconnect up` (which undoes its own changes), then
 * undoes whatever the journal says is left from a run that could not (`kill -9`, a crash, a
 * power cut).
 *
 * @module
 */
import type { Command } from "commander";
import { Journal, stateDir } from "../journal/journal.ts";
import { runningUp } from "../journal/pidfile.ts";
import { processAlive, undoLeftovers } from "../journal/undo.ts";
import { printLine } from "./output.ts";

interface DownOptions {
  stateDir?: string;
  timeout: string;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !processAlive(pid);
}

/** Runs `kconnect down`. */
export async function runDown(opts: DownOptions): Promise<void> {
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      "kconnect down must run as root: it undoes changes to routes and resolver settings (try: sudo kconnect down)",
    );
  }
  const dir = stateDir(opts.stateDir);
  let did = false;
  const up = await runningUp(dir);
  if (up !== null) {
    Deno.kill(up.pid, "SIGTERM");
    if (await waitGone(up.pid, Number(opts.timeout) * 1000)) {
      printLine(`disconnected from context "${up.context}" (kconnect up, pid ${up.pid})`);
    } else {
      Deno.kill(up.pid, "SIGKILL");
      await waitGone(up.pid, 5000);
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
    .option("--timeout <seconds>", "how long kconnect up gets to stop before it is killed", "15")
    .action((opts: DownOptions) => runDown(opts));
}
