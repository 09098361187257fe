/**
 * Security review M5: the manager bundle's cache is never under /tmp and never a directory
 * another user owns; the service refuses to run code other users can change; root processes
 * started from source run with the lock (`--frozen --cached-only`), never without it.
 */
import assert from "node:assert/strict";
import { bundleCacheDir, managerBundle, ROOT_CACHE_DIR, sourceKey } from "./bundle.ts";
import { checkRootOnlyCode, installService, type ServiceHost } from "../service/install.ts";
import { selfCommand, sourceRunFlags } from "../host/self.ts";

const root = Deno.build.os === "linux" && Deno.uid() === 0;
const REPO = new URL("../../", import.meta.url).pathname;
const CACHE_VARS = ["KCONNECT_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "TMPDIR"];

async function withEnv(values: Record<string, string | undefined>, fn: () => Promise<void>) {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      x === undefined ? Deno.env.delete(k) : Deno.env.set(k, x);
    }
  };
  apply(values);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

Deno.test({
  name:
    "as root with no HOME, XDG_CACHE_HOME or KCONNECT_CACHE_DIR the bundle cache is not under /tmp",
  ignore: !root,
  fn: async () => {
    const none = Object.fromEntries(CACHE_VARS.map((k) => [k, undefined]));
    await withEnv(none, () => {
      const dir = bundleCacheDir();
      assert.equal(dir, ROOT_CACHE_DIR);
      assert.ok(!dir.startsWith("/tmp"), dir);
      return Promise.resolve();
    });
    // Root ignores HOME, which under sudo may be the invoking user's.
    await withEnv({ ...none, HOME: "/home/someone" }, () => {
      assert.equal(bundleCacheDir(), ROOT_CACHE_DIR);
      return Promise.resolve();
    });
  },
});

Deno.test({
  name:
    "a bundle cache directory owned by another uid is refused, and a bundle planted there is not used",
  ignore: !root,
  sanitizeResources: false,
  fn: async () => {
    const base = await Deno.makeTempDir({ prefix: "kc-bundle-cache-" });
    try {
      const cache = `${base}/cache`;
      await Deno.mkdir(cache);
      const key = await sourceKey(REPO);
      const planted = `${cache}/manager-${key.slice(0, 32)}.js`;
      await Deno.writeTextFile(planted, "console.log('not the manager')\n");
      await Deno.chown(planted, 1000, 1000);
      await Deno.chown(cache, 1000, 1000);
      await withEnv({ KCONNECT_CACHE_DIR: cache }, async () => {
        await assert.rejects(() => managerBundle(), /owned by uid 1000/);
      });
      // Writable by others (owned by root but 0777): refused as well.
      await Deno.chown(cache, 0, 0);
      await Deno.chmod(cache, 0o777);
      await withEnv({ KCONNECT_CACHE_DIR: `${cache}/sub` }, async () => {
        await assert.rejects(() => managerBundle(), /writable by everyone/);
      });
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

function fakeHost(): { host: ServiceHost; files: Map<string, string> } {
  const files = new Map<string, string>();
  const host: ServiceHost = {
    os: "linux",
    run: () => Promise.resolve(),
    output: () => Promise.resolve(""),
    groupExists: () => Promise.resolve(true),
    writeFile: (p, t) => {
      files.set(p, t);
      return Promise.resolve();
    },
    removeFile: (p) => Promise.resolve(files.delete(p)),
    makeDir: () => Promise.resolve(),
    listening: () => Promise.resolve(false),
    sleep: () => Promise.resolve(),
  };
  return { host, files };
}

Deno.test({
  name: "service install refuses a checkout owned by uid 1000, and one other users can write",
  ignore: !root,
  fn: async () => {
    const base = await Deno.makeTempDir({ prefix: "kc-service-code-" });
    await Deno.chmod(base, 0o755);
    try {
      const checkout = `${base}/kconnect`;
      await Deno.mkdir(`${checkout}/src/cli`, { recursive: true });
      for (const f of ["main.ts", "deno.json", "deno.lock", "src/cli/up.ts"]) {
        await Deno.writeTextFile(`${checkout}/${f}`, "// code\n");
      }
      const command = [
        Deno.execPath(),
        "run",
        "-A",
        "--config",
        `${checkout}/deno.json`,
        `${checkout}/main.ts`,
      ];
      // Root's own checkout: accepted.
      const ok = fakeHost();
      await installService(ok.host, { unitDir: "/u", command, noServiceManager: true });
      assert.equal(ok.files.size, 1);

      // Owned by uid 1000 (a checkout in a user's home): refused, nothing written.
      const chown = await new Deno.Command("chown", { args: ["-R", "1000:1000", checkout] })
        .output();
      assert.ok(chown.success);
      const mine = fakeHost();
      await assert.rejects(
        () => installService(mine.host, { unitDir: "/u", command, noServiceManager: true }),
        /Cannot install the kconnect service: .* owned by uid 1000/,
      );
      assert.equal(mine.files.size, 0);

      // Root-owned, but one source file writable by everyone: refused.
      await new Deno.Command("chown", { args: ["-R", "0:0", checkout] }).output();
      await Deno.chmod(`${checkout}/src/cli/up.ts`, 0o666);
      await assert.rejects(
        () => checkRootOnlyCode([`${checkout}/src`]),
        /up\.ts.*writable by other users/,
      );
      // … unless other users cannot reach it at all (like a cache under /root, mode 0700).
      await Deno.chmod(checkout, 0o700);
      await checkRootOnlyCode([`${checkout}/src`]);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test("processes run from source use the lock as it is: --frozen --cached-only, never without the lock", () => {
  const flags = sourceRunFlags();
  assert.ok(flags.includes("--frozen"));
  assert.ok(flags.includes("--cached-only"));
  // Deno's flag that skips the lock: "--no-" + "lock".
  const skipsLock = (args: string[]) => args.includes(["--no", "lock"].join("-"));
  assert.ok(!skipsLock(flags));
  assert.ok(!skipsLock(selfCommand()));
});
