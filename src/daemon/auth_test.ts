import assert from "node:assert/strict";
import { checkIdentity, isNonce, newNonce, proveIdentity } from "./auth.ts";
import { withTempDir } from "../host/_test_fs.ts";

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir(fn);

Deno.test("newNonce() makes distinct 128-bit hex nonces", () => {
  const a = newNonce(), b = newNonce();
  assert.ok(isNonce(a) && isNonce(b));
  assert.notEqual(a, b);
  assert.equal(isNonce("../etc/passwd"), false);
});

Deno.test("checkIdentity() returns the uid and gid of the file's creator and removes it", async () => {
  await withDir(async (dir) => {
    const nonce = newNonce();
    const path = await proveIdentity(dir, nonce);
    const peer = await checkIdentity(dir, nonce);
    assert.deepEqual(peer, { uid: Deno.uid(), gid: Deno.gid() });
    await assert.rejects(() => Deno.lstat(path), Deno.errors.NotFound);
  });
});

Deno.test("checkIdentity() refuses a missing file, a symlink, a hard link and a FIFO, without opening them", async () => {
  await withDir(async (dir) => {
    await assert.rejects(() => checkIdentity(dir, newNonce()), /did not create/);

    const target = `${dir}/target`;
    const n1 = newNonce();
    await Deno.writeTextFile(target, n1);
    await Deno.symlink(target, `${dir}/${n1}`);
    await assert.rejects(() => checkIdentity(dir, n1), /not a regular file/);

    const n2 = newNonce();
    await Deno.writeTextFile(target, n2);
    await Deno.link(target, `${dir}/${n2}`);
    await assert.rejects(() => checkIdentity(dir, n2), /2 links/);

    // A FIFO would block a daemon that opened it; it is refused by lstat() alone.
    const n3 = newNonce();
    const mk = await new Deno.Command("mkfifo", { args: [`${dir}/${n3}`] }).output();
    assert.ok(mk.success);
    await assert.rejects(() => checkIdentity(dir, n3), /not a regular file/);

    await assert.rejects(() => checkIdentity(dir, "../x"), /malformed nonce/);
  });
});

Deno.test("proveIdentity() does not overwrite an existing file", async () => {
  await withDir(async (dir) => {
    const n = newNonce();
    await Deno.writeTextFile(`${dir}/${n}`, "x");
    await assert.rejects(() => proveIdentity(dir, n), Deno.errors.AlreadyExists);
  });
});

Deno.test({
  name:
    "checkIdentity() refuses a root-owned proof that does not hold the nonce (a root file linked in, its original removed)",
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
  fn: async () => {
    await withDir(async (dir) => {
      // What a user could do where hard links to others' files are allowed: link a root-owned
      // file in under the nonce's name and remove the original, leaving one link.
      const n = newNonce();
      const original = `${dir}/root-file`;
      await Deno.writeTextFile(original, "some root-owned file\n");
      await Deno.link(original, `${dir}/${n}`);
      await Deno.remove(original);
      assert.equal((await Deno.lstat(`${dir}/${n}`)).nlink, 1);
      await assert.rejects(() => checkIdentity(dir, n), /does not hold the nonce/);
      await assert.rejects(() => Deno.lstat(`${dir}/${n}`), Deno.errors.NotFound, "removed");

      // Root's own proof holds the nonce; so must another user's (see auth_linked_test.ts).
      await proveIdentity(dir, n);
      assert.equal((await checkIdentity(dir, n)).uid, 0);
      const m = newNonce();
      await Deno.writeTextFile(`${dir}/${m}`, m);
      await Deno.chown(`${dir}/${m}`, 4001, 4001);
      assert.deepEqual(await checkIdentity(dir, m), { uid: 4001, gid: 4001 });
    });
  },
});
