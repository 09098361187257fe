/**
 * Tests for scripts/build.ts. The runtime `deno compile` needs cannot be downloaded on these
 * machines, so the end-to-end cases check what can honestly be checked here: the exact
 * commands (`--dry-run`), the clear failure when the download is refused or hangs (forced with
 * an unreachable proxy and an empty `DENO_DIR`, so neither a reachable network nor a cached
 * runtime changes the outcome), and that a runtime which is not denort yields no binary.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { elf, machO, pe } from "../scripts/_test_executables.ts";
import {
  binaryName,
  compileArgs,
  denortEnvName,
  detectBinaryTarget,
  entrySource,
  ROOT,
  runtimeSource,
  type Target,
  TARGETS,
  writeSums,
} from "../scripts/build.ts";

const VERSION = denoJson.version;
const decoder = new TextDecoder();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function runBuild(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Deno.env.toObject();
  delete base.DENORT_BIN;
  for (const target of TARGETS) delete base[denortEnvName(target)];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "scripts", "build.ts"), ...args],
    env: { ...base, NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * A DENO_DIR with no cached runtime, sharing the npm cache so build.ts's own imports load, and
 * the bundler (esbuild) so its manager-bundle step runs without a download.
 */
async function emptyDenoDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kc-build-deno-dir-" });
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const { npmCache, denoDir } = JSON.parse(decoder.decode(info.stdout));
  await Deno.symlink(npmCache, join(dir, "npm"));
  // deno bundle keeps esbuild in dl/ beside the runtimes: link esbuild, not the runtimes.
  await Deno.mkdir(join(dir, "dl"));
  try {
    for (const e of Deno.readDirSync(join(denoDir, "dl"))) {
      if (e.name.startsWith("esbuild-")) {
        await Deno.symlink(join(denoDir, "dl", e.name), join(dir, "dl", e.name));
      }
    }
  } catch {
    // no dl/ yet: the bundle step downloads esbuild
  }
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("binaryName() adds .exe for Windows only", () => {
  assert.equal(
    binaryName("1.2.3", "x86_64-unknown-linux-gnu"),
    "kconnect-1.2.3-x86_64-unknown-linux-gnu",
  );
  assert.equal(
    binaryName("1.2.3", "x86_64-pc-windows-msvc"),
    "kconnect-1.2.3-x86_64-pc-windows-msvc.exe",
  );
});

Deno.test("detectBinaryTarget() reads ELF, Mach-O and PE headers", () => {
  const cases: [Uint8Array, Target | undefined][] = [
    [elf(0x3e), "x86_64-unknown-linux-gnu"],
    [elf(0xb7), "aarch64-unknown-linux-gnu"],
    [elf(0x28), undefined], // 32-bit ARM machine number
    [machO(0x01000007), "x86_64-apple-darwin"],
    [machO(0x0100000c), "aarch64-apple-darwin"],
    [pe(0x8664), "x86_64-pc-windows-msvc"],
    [pe(0xaa64), undefined],
    [new TextEncoder().encode("#!/bin/sh\necho not a binary\n"), undefined],
    [new Uint8Array(0), undefined],
  ];
  for (const [header, want] of cases) assert.equal(detectBinaryTarget(header), want);
});

Deno.test({
  name: "detectBinaryTarget() recognises the running deno executable",
  // On a host that is not a target the expected answer would be undefined, which a broken
  // detector gives too: nothing to learn there.
  ignore: !(TARGETS as readonly string[]).includes(Deno.build.target),
  async fn() {
    using file = await Deno.open(Deno.execPath());
    const header = new Uint8Array(512);
    const n = await file.read(header);
    assert.equal(detectBinaryTarget(header.subarray(0, n ?? 0)), Deno.build.target);
  },
});

Deno.test("runtimeSource() uses DENORT_BIN only for the target it is built for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const mac = join(dir, "denort-mac");
    await Deno.writeFile(mac, machO(0x0100000c));
    const env = { DENORT_BIN: mac };
    const host = "x86_64-unknown-linux-gnu";
    assert.deepEqual(runtimeSource("aarch64-apple-darwin", env, host), {
      kind: "file",
      path: mac,
      variable: "DENORT_BIN",
    });
    assert.deepEqual(runtimeSource("x86_64-unknown-linux-gnu", env, host), { kind: "download" });
    // Unreadable or unknown format: only for this machine's target, as Deno itself would.
    const missing = { DENORT_BIN: join(dir, "missing") };
    assert.equal(runtimeSource("x86_64-unknown-linux-gnu", missing, host).kind, "file");
    assert.equal(runtimeSource("aarch64-unknown-linux-gnu", missing, host).kind, "download");
    // A per-target variable wins.
    const own = { DENORT_BIN: mac, DENORT_BIN_aarch64_apple_darwin: "/x/denort" };
    assert.deepEqual(runtimeSource("aarch64-apple-darwin", own, host), {
      kind: "file",
      path: "/x/denort",
      variable: "DENORT_BIN_aarch64_apple_darwin",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("entrySource() and compileArgs() stamp the build and embed the include list", () => {
  const src = entrySource({
    version: "9.9.9",
    commit: "abc123-dirty",
    date: "2025-01-01T00:00:00.000Z",
  });
  assert.match(
    src,
    /setBuildInfo\(\{"commit":"abc123-dirty","date":"2025-01-01T00:00:00.000Z"\}\)/,
  );
  assert.match(src, /import \{ main \} from "..\/..\/main.ts"/);
  const args = compileArgs({
    target: "aarch64-apple-darwin",
    output: "/out/k",
    include: ["manager/bundle.js"],
    entry: "dist/.build/e.ts",
  });
  assert.deepEqual(args.slice(0, 4), [
    "compile",
    "--allow-all",
    "--unstable-net",
    "--v8-flags=--max-semi-space-size=4,--expose-gc",
  ]);
  assert.deepEqual(args.slice(-7), [
    "--target",
    "aarch64-apple-darwin",
    "--include",
    "manager/bundle.js",
    "--output",
    "/out/k",
    "dist/.build/e.ts",
  ]);
});

Deno.test("writeSums() merges with entries of binaries that still exist", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = "a".repeat(64), b = "b".repeat(64), c = "c".repeat(64);
    await Deno.writeTextFile(join(dir, "kept"), "");
    await Deno.writeTextFile(join(dir, "SHA256SUMS"), `${a}  kept\n${b}  gone\n${b}  new\n`);
    await writeSums(dir, new Map([["new", c]]));
    assert.equal(await Deno.readTextFile(join(dir, "SHA256SUMS")), `${a}  kept\n${c}  new\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("build.ts --dry-run prints one deno compile command per target", async () => {
  const outDir = join(await Deno.makeTempDir(), "out");
  const run = await runBuild(["--dry-run", "--out-dir", outDir]);
  assert.equal(run.code, 0, run.stderr);
  const commands = run.stdout.split("\n").filter((line) => line.includes(" compile "));
  assert.equal(commands.length, TARGETS.length);
  for (const [i, target] of TARGETS.entries()) {
    const line = commands[i];
    assert.ok(line.includes(` --target ${target} `), line);
    assert.ok(line.includes(`--output ${join(outDir, binaryName(VERSION, target))} `), line);
    assert.ok(
      line.includes(" --allow-all --unstable-net --v8-flags=--max-semi-space-size=4,--expose-gc "),
      line,
    );
    assert.match(line, / dist\/\.build\/entry-\d+\.ts$/);
  }
  assert.match(run.stdout, /setBuildInfo\(\{"commit":"[0-9a-f]+(-dirty)?","date":"/);
  assert.equal(await exists(outDir), false, "a dry run writes nothing");
});

Deno.test("build.ts --target picks targets and rejects unknown ones", async () => {
  const run = await runBuild([
    "--dry-run",
    "--target",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assert.equal(run.code, 0, run.stderr);
  const targets = [...run.stdout.matchAll(/--target (\S+)/g)].map((m) => m[1]);
  assert.deepEqual(targets, ["aarch64-apple-darwin", "x86_64-pc-windows-msvc"]);
  const bad = await runBuild(["--dry-run", "--target", "riscv64-unknown-linux-gnu"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /riscv64-unknown-linux-gnu/);
});

Deno.test("build.ts says the runtime download failed and names DENORT_BIN", async () => {
  const denoDir = await emptyDenoDir();
  const outDir = await Deno.makeTempDir();
  try {
    // Port 9 on loopback refuses connections: the download fails at once, online or not.
    const proxy = "http://127.0.0.1:9";
    const run = await runBuild(
      ["--target", "aarch64-unknown-linux-gnu", "--out-dir", outDir, "--timeout", "60"],
      { DENO_DIR: denoDir, HTTPS_PROXY: proxy, HTTP_PROXY: proxy },
    );
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      /cannot build aarch64-unknown-linux-gnu: the Deno runtime \(denort [\d.]+ for aarch64-unknown-linux-gnu\) could not be downloaded/,
    );
    assert.match(
      run.stderr,
      /Set DENORT_BIN to a local denort binary for aarch64-unknown-linux-gnu/,
    );
    assert.match(run.stdout, /built 0 of 1 target\(s\); failed: aarch64-unknown-linux-gnu/);
    assert.deepEqual([...Deno.readDirSync(outDir)], [], "no binary, no SHA256SUMS");
  } finally {
    await Deno.remove(denoDir, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("build.ts gives up on a download that hangs after --timeout", async () => {
  const denoDir = await emptyDenoDir();
  const outDir = await Deno.makeTempDir();
  // A proxy that accepts connections and never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const proxy = `http://127.0.0.1:${listener.addr.port}`;
    const run = await runBuild(
      ["--target", "x86_64-apple-darwin", "--out-dir", outDir, "--timeout", "3"],
      { DENO_DIR: denoDir, HTTPS_PROXY: proxy, HTTP_PROXY: proxy },
    );
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /denort [\d.]+ for x86_64-apple-darwin\) did not download within 3 s/);
    assert.match(run.stderr, /DENORT_BIN/);
    assert.deepEqual([...Deno.readDirSync(outDir)], []);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
    await Deno.remove(denoDir, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test({
  name: "build.ts deletes a binary that does not run as kconnect (DENORT_BIN is not denort)",
  ignore: !(TARGETS as readonly string[]).includes(Deno.build.target),
  async fn() {
    const outDir = await Deno.makeTempDir();
    try {
      // The deno CLI is a valid executable for this machine but not a runtime for compiled
      // programs: deno compile accepts it, the result does not run kconnect.
      const run = await runBuild(
        ["--target", Deno.build.target, "--out-dir", outDir, "--timeout", "120"],
        { DENORT_BIN: Deno.execPath() },
      );
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr, /does not run as kconnect/);
      assert.match(run.stderr, /the binary was deleted\. Is DENORT_BIN=.* really denort/);
      assert.deepEqual([...Deno.readDirSync(outDir)], []);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  },
});
