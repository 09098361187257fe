/**
 * Security review M6: root never follows a path another user can redirect. Root only (ownership
 * by other uids). Its users (the daemon's socket, the journal, gather-logs) are tested in
 * `src/daemon/path_redirect_test.ts`.
 */
import assert from "node:assert/strict";
import {
  checkTrustedParents,
  ensureAdminOnlyDir,
  ensureTrustedDir,
  UntrustedPathError,
} from "./safe_path.ts";
import { pathExists, withTempDir } from "./_test_fs.ts";

const root = Deno.build.os === "linux" && Deno.uid() === 0;
const opts = { ignore: !root, sanitizeResources: false, sanitizeOps: false };

const withDir = (fn: (dir: string) => Promise<void>) =>
  withTempDir(fn, { prefix: "kc-safepath-", mode: 0o755 });

Deno.test({
  name: "ensureTrustedDir() refuses world-writable parents, other users' links and directories",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      // A world-writable (not sticky) parent: anyone could rename run/ away and put a link there.
      await Deno.mkdir(`${dir}/open`, { mode: 0o777 });
      await Deno.chmod(`${dir}/open`, 0o777);
      await assert.rejects(
        () => ensureTrustedDir(`${dir}/open/run`, { mode: 0o750, what: "the daemon's socket" }),
        (e: Error) =>
          e instanceof UntrustedPathError && /open is writable by everyone/.test(e.message),
      );
      assert.equal(await pathExists(`${dir}/open/run`), false, "nothing was created");

      // A sticky shared directory (like /tmp) where a user made the directory first.
      await Deno.mkdir(`${dir}/tmp`);
      await Deno.chmod(`${dir}/tmp`, 0o1777);
      await Deno.mkdir(`${dir}/tmp/k`);
      await Deno.chown(`${dir}/tmp/k`, 4001, 4001);
      await assert.rejects(
        () => ensureTrustedDir(`${dir}/tmp/k`, { mode: 0o750, what: "the daemon's socket" }),
        /owned by uid 4001/,
      );
      await assert.rejects(
        () => ensureTrustedDir(`${dir}/tmp/k/run`, { mode: 0o750, what: "the daemon's socket" }),
        /k is owned by uid 4001/,
      );
      // … or a link to /etc: refused without following it, and /etc is untouched.
      const etc = await Deno.stat("/etc");
      await Deno.symlink("/etc", `${dir}/tmp/l`);
      const lchown = await new Deno.Command("chown", { args: ["-h", "4001:4001", `${dir}/tmp/l`] })
        .output();
      assert.ok(lchown.success);
      await assert.rejects(
        () => ensureTrustedDir(`${dir}/tmp/l`, { mode: 0o750, gid: 4242, what: "x" }),
        /not a directory/,
      );
      await assert.rejects(
        () => ensureTrustedDir(`${dir}/tmp/l/kconnect`, { mode: 0o750, what: "x" }),
        /symbolic link owned by uid 4001/,
      );
      const after = await Deno.stat("/etc");
      assert.equal(after.mode, etc.mode);
      assert.equal(after.gid, etc.gid);
      assert.equal(await pathExists("/etc/kconnect"), false);

      // In a sticky directory a root-owned directory is fine: nobody else can replace it.
      const made = await ensureTrustedDir(`${dir}/tmp/mine/run`, {
        mode: 0o750,
        gid: 4242,
        what: "x",
      });
      const st = await Deno.stat(made);
      assert.equal(st.mode! & 0o7777, 0o750);
      assert.equal(st.uid, 0);
      assert.equal(st.gid, 4242);

      // Group-writable by a user's group: refused.
      await Deno.mkdir(`${dir}/grp`);
      await Deno.chown(`${dir}/grp`, 0, 4242);
      await Deno.chmod(`${dir}/grp`, 0o775);
      await assert.rejects(
        () => checkTrustedParents(`${dir}/grp/x/y`, "x"),
        /writable by group 4242/,
      );
    });
  },
});

Deno.test("ensureAdminOnlyDir (Windows): creates the folder, and refuses one that others could change, saying how to fix it", async () => {
  const base = await Deno.makeTempDir({ prefix: "kconnect-adminonly-" });
  try {
    const dir = `${base}/kconnect/state`;
    const asked: string[] = [];
    assert.equal(
      await ensureAdminOnlyDir(dir, "the journal", (p) => {
        asked.push(p);
        return null;
      }),
      dir,
    );
    assert.ok((await Deno.stat(dir)).isDirectory);
    assert.deepEqual(asked, [dir]);
    await assert.rejects(
      () =>
        ensureAdminOnlyDir(
          dir,
          "the journal",
          () => "its owner is S-1-5-21-1-2-3-1001, not an administrator",
        ),
      (e: Error) =>
        e instanceof UntrustedPathError && e.message.includes("S-1-5-21-1-2-3-1001") &&
        e.message.includes("Delete the folder"),
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
