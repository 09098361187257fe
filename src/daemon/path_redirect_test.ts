/**
 * Security review M6: root never follows a path another user can redirect — the daemon's
 * socket directory, the state directory (journal, pid file) and gather-logs' output. Root only
 * (ownership by other uids). The checks themselves: `src/host/safe_path_test.ts`.
 */
import assert from "node:assert/strict";
import { Daemon } from "./server.ts";
import { Journal } from "../journal/journal.ts";
import { writeUpRecord } from "../journal/pidfile.ts";
import { gatherLogs } from "../cli/gather_logs.ts";
import { pathExists, withTempDir } from "../host/_test_fs.ts";

const root = Deno.build.os === "linux" && Deno.uid() === 0;
const opts = { ignore: !root, sanitizeResources: false, sanitizeOps: false };

const withDir = (fn: (dir: string) => Promise<void>) =>
  withTempDir(fn, { prefix: "kc-safepath-", mode: 0o755 });

Deno.test({
  name: "Daemon.start() refuses a socket below a world-writable directory",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      await Deno.mkdir(`${dir}/open`);
      await Deno.chmod(`${dir}/open`, 0o777);
      await assert.rejects(
        () =>
          Daemon.start({
            socket: `${dir}/open/run/kconnect.sock`,
            access: { gid: null, group: null, uids: [] },
            stateDir: `${dir}/state`,
            logFile: null,
          }),
        /open is writable by everyone/,
      );
      assert.equal(await pathExists(`${dir}/open/run`), false);
    });
  },
});

Deno.test({
  name: "the journal and pid file never write through a planted link, nor below a shared parent",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      const state = `${dir}/state`;
      await Journal.open(state);
      const victim = `${dir}/victim`;
      await Deno.writeTextFile(victim, "precious\n");
      // Links where the old code wrote with O_CREAT|O_TRUNC (following them).
      await Deno.symlink(victim, `${state}/journal.json.tmp`);
      await Deno.symlink(victim, `${state}/up.json`);
      const j = await Journal.open(state);
      await j.add("route", { cidr: "10.96.0.0/12", dev: "kconnect0" });
      await writeUpRecord(state, "ctx");
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      assert.equal((await Deno.lstat(`${state}/up.json`)).isFile, true, "the link was replaced");
      assert.equal((await Deno.stat(state)).mode! & 0o777, 0o700);

      await Deno.mkdir(`${dir}/open`);
      await Deno.chmod(`${dir}/open`, 0o777);
      await assert.rejects(() => Journal.open(`${dir}/open/state`), /writable by everyone/);
    });
  },
});

Deno.test({
  name: "gather-logs -o replaces a planted link instead of writing through it",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      const victim = `${dir}/victim`;
      await Deno.writeTextFile(victim, "precious\n");
      await Deno.mkdir(`${dir}/tmp`);
      await Deno.chmod(`${dir}/tmp`, 0o1777);
      const output = `${dir}/tmp/logs.tar.gz`;
      await Deno.symlink(victim, output);
      await gatherLogs({
        output,
        socket: `${dir}/none.sock`,
        stateDir: `${dir}/state`,
        logFile: `${dir}/none.log`,
      });
      assert.equal(await Deno.readTextFile(victim), "precious\n");
      const st = await Deno.lstat(output);
      assert.equal(st.isFile, true);
      assert.equal(st.mode! & 0o777, 0o600);
    });
  },
});
