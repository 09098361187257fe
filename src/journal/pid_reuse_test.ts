/**
 * Security review L6: a pid file or journal entry whose pid the kernel has since given to another
 * process does not make `down` signal that process, nor keep the journal's entries forever.
 */
import assert from "node:assert/strict";
import { isRunning, runningUp, writeUpRecord } from "./pidfile.ts";
import { processIdentity } from "./process.ts";
import { Journal } from "./journal.ts";
import { undoLeftovers } from "./undo.ts";
import { runDown } from "../cli/down.ts";
import { withTempDir } from "../host/_test_fs.ts";

const linux = Deno.build.os === "linux";

/** A stranger: a process that got a pid some earlier kconnect had. */
function stranger(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
}

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn, { prefix: "kc-pidreuse-" });

Deno.test({
  name: "the pid file records the process's start time and executable; a reused pid is stale",
  ignore: !linux,
  fn: async () => {
    await withDir(async (dir) => {
      await writeUpRecord(dir, "ctx");
      const mine = JSON.parse(await Deno.readTextFile(`${dir}/up.json`));
      const me = processIdentity(Deno.pid)!;
      assert.equal(mine.start, me.start);
      assert.equal(mine.exe, me.exe);
      assert.ok(isRunning(mine));

      const s = stranger();
      try {
        // What an `up` that died without cleaning up left, its pid now the stranger's.
        const stale = { pid: s.pid, startedAt: "2026-01-01T00:00:00Z", context: "c", start: "1" };
        await Deno.writeTextFile(`${dir}/up.json`, JSON.stringify(stale));
        assert.equal(await runningUp(dir), null);
        assert.equal(isRunning(stale), false);
        // The stranger's own identity makes it the recorded process.
        const id = processIdentity(s.pid)!;
        assert.equal(isRunning({ ...stale, start: id.start, exe: id.exe }), true);
        assert.equal(isRunning({ ...stale, start: id.start, exe: "/usr/bin/other" }), false);
      } finally {
        try {
          s.kill("SIGKILL");
        } catch { /* it exited (the test failed) */ }
        await s.status;
      }
    });
  },
});

Deno.test({
  name: "down does not signal a process that only got the pid of a recorded up",
  ignore: !linux || Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withDir(async (dir) => {
      const s = stranger();
      try {
        await Deno.writeTextFile(
          `${dir}/up.json`,
          JSON.stringify({
            pid: s.pid,
            startedAt: "2026-01-01T00:00:00Z",
            context: "c",
            start: "1",
          }),
        );
        await runDown({ stateDir: dir, socket: `${dir}/none.sock`, timeout: "1" });
        const r = await Promise.race([
          s.status.then(() => "exited"),
          new Promise((ok) => setTimeout(() => ok("alive"), 300)),
        ]);
        assert.equal(r, "alive", "the stranger was not signalled");
      } finally {
        try {
          s.kill("SIGKILL");
        } catch { /* it exited (the test failed) */ }
        await s.status;
      }
    });
  },
});

Deno.test({
  name: "journal entries of a process whose pid was reused are undone, not kept forever",
  ignore: !linux || Deno.uid() !== 0,
  fn: async () => {
    await withDir(async (dir) => {
      const s = stranger();
      try {
        const j = await Journal.open(dir);
        await j.add("unknown-kind", {});
        // Make the entry look like an earlier process's, whose pid the stranger has now.
        const file = JSON.parse(await Deno.readTextFile(j.path));
        file.entries[0].pid = s.pid;
        file.entries[0].start = "1";
        await Deno.writeTextFile(j.path, JSON.stringify(file));
        const done = await undoLeftovers(await Journal.open(dir));
        assert.deepEqual(done, ['unknown change "unknown-kind" left alone']);
        assert.equal((await Journal.open(dir)).entries().length, 0);
      } finally {
        try {
          s.kill("SIGKILL");
        } catch { /* it exited (the test failed) */ }
        await s.status;
      }
    });
  },
});
