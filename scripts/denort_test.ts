/**
 * Tests for the offline path of scripts/build.ts (scripts/denort.ts): a fabricated directory of
 * runtime zips, checked against a test manifest.
 *
 * No genuine denort is reachable from the project's machines, so the zips hold stand-ins: for
 * this machine's target `/bin/false` (a real executable for it that, like denort, does not
 * answer `--version` as the CLI does), for the others a bare ELF, Mach-O or PE header of the
 * right machine, and, where a test needs the Deno CLI, the running `deno` itself. What that
 * proves: the verification accepts exactly the zips the manifest pins and refuses the rest, the
 * seeded `DENO_DIR` is where `deno compile` reads its runtime (with every download refused), and
 * the whole `build.ts --runtime-dir` run gets as far as compiling. It cannot prove that a real
 * denort makes a working kconnect: that runs on GitHub's runners (.github/workflows/release.yml).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { offlineEnv, ROOT, type Target, TARGETS } from "./build.ts";
import { elf, machO, pe } from "./_test_executables.ts";
import {
  cachedRuntimePath,
  checkRuntimeDir,
  listZip,
  pinRuntimes,
  readManifest,
  readZipEntryHead,
  type RuntimeManifest,
  runtimeZipName,
  seedDenoDir,
} from "./denort.ts";

const decoder = new TextDecoder();
const HOST = Deno.build.target as Target;

// --- a small zip writer (stored or deflated entries), for fabricated runtime zips -----------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function makeZip(
  files: { name: string; data: Uint8Array; store?: boolean }[],
): Promise<Uint8Array> {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const file of files) {
    const name = new TextEncoder().encode(file.name);
    const body = file.store ? file.data : await deflateRaw(file.data);
    const crc = crc32(file.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, file.store ? 0 : 8, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, file.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 0x031e, true); // made by Unix
    cv.setUint16(6, 20, true);
    cv.setUint16(10, file.store ? 0 : 8, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, file.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(38, (0o100755 << 16) >>> 0, true); // rwxr-xr-x
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const cdSize = centrals.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let at = 0;
  for (const part of [...locals, ...centrals, end]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// --- fabricated executables -------------------------------------------------------------------

/** A stand-in for `target`'s denort: a real executable for this machine, a header otherwise. */
async function fakeRuntime(target: Target): Promise<Uint8Array> {
  if (target === HOST) return await Deno.readFile("/bin/false");
  return {
    "x86_64-unknown-linux-gnu": () => elf(0x3e),
    "aarch64-unknown-linux-gnu": () => elf(0xb7),
    "x86_64-apple-darwin": () => machO(0x01000007),
    "aarch64-apple-darwin": () => machO(0x0100000c),
    "x86_64-pc-windows-msvc": () => pe(0x8664),
  }[target]();
}

function entryName(target: Target, base = "denort"): string {
  return target.includes("windows") ? `${base}.exe` : base;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A runtime directory with a fabricated zip for every target, and a manifest in it that pins
 * their sha256 for this Deno.
 */
async function fabricate(): Promise<
  { dir: string; manifest: string; hashes: Map<Target, string> }
> {
  const dir = await Deno.makeTempDir({ prefix: "kc-denort-test-" });
  const hashes = new Map<Target, string>();
  const manifest: RuntimeManifest = { denoVersion: Deno.version.deno, targets: {} };
  for (const target of TARGETS) {
    const zip = await makeZip([{ name: entryName(target), data: await fakeRuntime(target) }]);
    await Deno.writeFile(join(dir, runtimeZipName(target)), zip);
    const hash = await sha256(zip);
    hashes.set(target, hash);
    manifest.targets[target] = { file: runtimeZipName(target), sha256: hash };
  }
  const path = join(dir, "manifest.json");
  await Deno.writeTextFile(path, JSON.stringify(manifest, null, 2));
  return { dir, manifest: path, hashes };
}

async function editManifest(path: string, edit: (m: RuntimeManifest) => void): Promise<void> {
  const manifest = JSON.parse(await Deno.readTextFile(path));
  edit(manifest);
  await Deno.writeTextFile(path, JSON.stringify(manifest));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function runBuild(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Deno.env.toObject();
  for (const name of Object.keys(base)) if (name.startsWith("DENORT_BIN")) delete base[name];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", "--cached-only", join(ROOT, "scripts", "build.ts"), ...args],
    env: { ...base, NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

// --- the tests --------------------------------------------------------------------------------

Deno.test("listZip() and readZipEntryHead() read stored and deflated entries", async () => {
  const a = new TextEncoder().encode("stored ".repeat(100));
  const b = elf(0xb7);
  const zip = await makeZip([{ name: "a.txt", data: a, store: true }, { name: "denort", data: b }]);
  const entries = listZip(zip);
  assert.deepEqual(entries.map((e) => [e.name, e.method, e.size]), [
    ["a.txt", 0, a.length],
    ["denort", 8, b.length],
  ]);
  assert.deepEqual(await readZipEntryHead(zip, entries[0], 10), a.subarray(0, 10));
  assert.deepEqual(await readZipEntryHead(zip, entries[1], 512), b.subarray(0, 512));
  assert.deepEqual(await readZipEntryHead(zip, entries[1], 1e6), b, "shorter than the limit");
  assert.throws(() => listZip(new TextEncoder().encode("not a zip at all, just some text")), /zip/);
});

Deno.test("checkRuntimeDir() accepts the five zips whose sha256 the manifest pins", async () => {
  const { dir, manifest, hashes } = await fabricate();
  try {
    const checks = await checkRuntimeDir(dir, TARGETS, await readManifest(manifest));
    assert.deepEqual(
      checks.map((c) => [c.target, c.error, c.sha256]),
      TARGETS.map((t) => [t, undefined, hashes.get(t)]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkRuntimeDir() refuses a wrong hash, a missing zip, a wrong target, an unpinned target", async () => {
  const { dir, manifest } = await fabricate();
  try {
    // Wrong hash: another arm64 Mach-O under the right name.
    await Deno.writeFile(
      join(dir, runtimeZipName("aarch64-apple-darwin")),
      await makeZip([{ name: "denort", data: machO(0x0100000c).fill(7, 100) }]),
    );
    // Missing, with the CLI's release zip lying there instead.
    await Deno.remove(join(dir, runtimeZipName("aarch64-unknown-linux-gnu")));
    await Deno.writeFile(
      join(dir, "deno-aarch64-unknown-linux-gnu.zip"),
      await makeZip([{ name: "deno", data: elf(0xb7) }]),
    );
    // Wrong target inside: an arm64 Mach-O in the x86-64 zip, pinned so only the content is wrong.
    const wrong = await makeZip([{ name: "denort", data: machO(0x0100000c) }]);
    await Deno.writeFile(join(dir, runtimeZipName("x86_64-apple-darwin")), wrong);
    // Windows: a Linux ELF named denort.exe.
    const elfExe = await makeZip([{ name: "denort.exe", data: elf(0x3e) }]);
    await Deno.writeFile(join(dir, runtimeZipName("x86_64-pc-windows-msvc")), elfExe);
    const wrongHash = await sha256(wrong), elfExeHash = await sha256(elfExe);
    await editManifest(manifest, (m) => {
      m.targets["x86_64-apple-darwin"]!.sha256 = wrongHash;
      m.targets["x86_64-pc-windows-msvc"]!.sha256 = elfExeHash;
      m.targets[HOST]!.sha256 = null;
    });
    const checks = await checkRuntimeDir(dir, TARGETS, await readManifest(manifest), {
      manifestPath: "test-manifest.json",
    });
    const errors = new Map(checks.map((c) => [c.target, c.error ?? "accepted"]));
    assert.match(
      errors.get("aarch64-apple-darwin")!,
      /^denort-aarch64-apple-darwin\.zip: sha256 mismatch: the file has [0-9a-f]{64}, test-manifest\.json pins [0-9a-f]{64} for Deno /,
    );
    assert.match(
      errors.get("aarch64-unknown-linux-gnu")!,
      /^missing: no denort-aarch64-unknown-linux-gnu\.zip in .*\(deno-aarch64-unknown-linux-gnu\.zip is there: that is the Deno CLI, not the runtime\)/,
    );
    assert.match(
      errors.get("x86_64-apple-darwin")!,
      /^denort-x86_64-apple-darwin\.zip: the denort in it is built for aarch64-apple-darwin, not x86_64-apple-darwin$/,
    );
    assert.match(
      errors.get("x86_64-pc-windows-msvc")!,
      /the denort\.exe in it is built for x86_64-unknown-linux-gnu, not x86_64-pc-windows-msvc/,
    );
    assert.match(
      errors.get(HOST)!,
      /test-manifest\.json pins no sha256 for .* cannot be trusted\. .*--pin --runtime-dir/,
    );
    assert.equal(checks.find((c) => c.target === HOST)!.unpinned, true);
    assert.equal(checks.filter((c) => c.unpinned).length, 1, "only the unpinned one says so");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkRuntimeDir() refuses the Deno CLI in place of denort, even when pinned", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kc-denort-test-" });
  try {
    // The CLI's own zip layout (deno inside), for another machine's target.
    const cliZip = await makeZip([{ name: "deno", data: elf(0xb7) }]);
    await Deno.writeFile(join(dir, runtimeZipName("aarch64-unknown-linux-gnu")), cliZip);
    // The running deno renamed to denort, for this machine: run once, it answers as the CLI.
    const renamed = await makeZip([
      { name: entryName(HOST), data: await Deno.readFile(Deno.execPath()), store: true },
    ]);
    await Deno.writeFile(join(dir, runtimeZipName(HOST)), renamed);
    const manifest: RuntimeManifest = {
      denoVersion: Deno.version.deno,
      targets: {
        "aarch64-unknown-linux-gnu": {
          file: runtimeZipName("aarch64-unknown-linux-gnu"),
          sha256: await sha256(cliZip),
        },
        [HOST]: { file: runtimeZipName(HOST), sha256: await sha256(renamed) },
      },
    };
    const [arm, host] = await checkRuntimeDir(
      dir,
      ["aarch64-unknown-linux-gnu", HOST],
      manifest,
    );
    assert.match(arm.error!, /holds deno, the Deno CLI .*not the runtime denort/);
    // Not pinned to its hash: refused for that, and never run (it would say "CLI renamed").
    for (const pin of [null, "e".repeat(64)]) {
      const [unrun] = await checkRuntimeDir(dir, [HOST], {
        ...manifest,
        targets: { [HOST]: { file: runtimeZipName(HOST), sha256: pin } },
      });
      assert.match(unrun.error!, pin ? /sha256 mismatch/ : /pins no sha256/);
      assert.doesNotMatch(unrun.error!, /renamed/);
    }
    assert.match(
      host.error!,
      new RegExp(
        `is the Deno CLI renamed: \`denort --version\` printed "deno ${
          Deno.version.deno.replaceAll(".", "\\.")
        }`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkRuntimeDir() refuses every target when the manifest is for another Deno", async () => {
  const { dir, manifest } = await fabricate();
  try {
    await editManifest(manifest, (m) => m.denoVersion = "2.9.5");
    const checks = await checkRuntimeDir(dir, TARGETS, await readManifest(manifest));
    for (const check of checks) {
      assert.match(check.error!, new RegExp(`is for Deno 2\\.9\\.5, but the build runs with deno`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readManifest() rejects malformed manifests; the checked-in one is well formed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [unknown, RegExp][] = [
      [[], /"denoVersion"/],
      [{ denoVersion: "2.9.6", targets: { "riscv64-linux": {} } }, /unknown target/],
      [{
        denoVersion: "2.9.6",
        targets: { "x86_64-apple-darwin": { file: "deno-x86_64-apple-darwin.zip", sha256: null } },
      }, /"file" must be denort-x86_64-apple-darwin\.zip/],
      [{
        denoVersion: "2.9.6",
        targets: {
          "x86_64-apple-darwin": { file: "denort-x86_64-apple-darwin.zip", sha256: "AB" },
        },
      }, /"sha256" must be 64 lowercase hex/],
    ];
    for (const [data, error] of cases) {
      const path = join(dir, "m.json");
      await Deno.writeTextFile(path, JSON.stringify(data));
      await assert.rejects(readManifest(path), error);
    }
    const real = await readManifest(join(ROOT, "scripts", "denort-manifest.json"));
    assert.equal(real.denoVersion, Deno.version.deno, "the manifest pins this project's Deno");
    assert.deepEqual(Object.keys(real.targets).sort(), [...TARGETS].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seedDenoDir() puts the zips where deno compile reads them, and it compiles offline from them", async () => {
  const work = await Deno.makeTempDir({ prefix: "kc-denort-seed-" });
  try {
    // The running deno as this machine's "denort": deno compile accepts it (the result is just
    // deno, which tells us whose runtime was used).
    const zip = join(work, runtimeZipName(HOST));
    await Deno.writeFile(
      zip,
      await makeZip([
        { name: entryName(HOST), data: await Deno.readFile(Deno.execPath()), store: true },
      ]),
    );
    const npm = join(work, "shared", "npm");
    await Deno.mkdir(npm, { recursive: true });
    const seeded = join(work, "seeded");
    await seedDenoDir(
      seeded,
      Deno.version.deno,
      [{ target: HOST, path: zip }],
      join(work, "shared"),
    );
    const cached = cachedRuntimePath(seeded, Deno.version.deno, HOST);
    assert.equal(
      cached,
      join(seeded, "dl", "release", `v${Deno.version.deno}`, `denort-${HOST}.zip`),
    );
    assert.deepEqual(await Deno.readFile(cached), await Deno.readFile(zip));
    assert.equal(await Deno.readLink(join(seeded, "npm")), npm);
    assert.equal(await exists(join(seeded, "remote")), false, "no cache is invented");

    await Deno.writeTextFile(join(work, "hello.ts"), 'console.log("hello", Deno.args[0]);\n');
    const compile = (denoDir: string, output: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["compile", "--no-config", "--target", HOST, "--output", output, "hello.ts"],
        cwd: work,
        env: offlineEnv({ ...Deno.env.toObject(), DENORT_BIN: "/nonexistent" }, denoDir),
        clearEnv: true,
        stdin: "null",
      }).output();
    // Control: with nothing seeded, the runtime would have to be downloaded, and cannot be.
    const empty = join(work, "empty");
    await Deno.mkdir(empty);
    const refused = await compile(empty, join(work, "hello-empty"));
    assert.equal(refused.success, false, decoder.decode(refused.stderr));
    const out = await compile(seeded, join(work, "hello"));
    assert.equal(out.success, true, decoder.decode(out.stderr));
    // The binary is the seeded runtime (the CLI) with the program appended.
    const version = await new Deno.Command(join(work, "hello"), { args: ["--version"] }).output();
    assert.match(decoder.decode(version.stdout), new RegExp(`^deno ${Deno.version.deno}`));
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("offlineEnv() drops DENORT_BIN* and the user's proxies, refuses downloads", () => {
  const env = offlineEnv({
    PATH: "/bin",
    DENORT_BIN: "/x",
    DENORT_BIN_aarch64_apple_darwin: "/y",
    https_proxy: "http://proxy:3128",
    NO_PROXY: "*",
    DENO_DIR: "/old",
  }, "/private");
  assert.deepEqual(env, {
    PATH: "/bin",
    HTTP_PROXY: "http://127.0.0.1:9",
    HTTPS_PROXY: "http://127.0.0.1:9",
    ALL_PROXY: "http://127.0.0.1:9",
    DENO_DIR: "/private",
  });
});

Deno.test("pinRuntimes() pins a zip that agrees with its .sha256sum, and nothing else", async () => {
  const { dir, manifest, hashes } = await fabricate();
  try {
    const mac: Target = "aarch64-apple-darwin", win: Target = "x86_64-pc-windows-msvc";
    const linux: Target = "aarch64-unknown-linux-gnu", intel: Target = "x86_64-apple-darwin";
    await editManifest(manifest, (m) => {
      for (const t of [mac, win, linux]) m.targets[t]!.sha256 = null;
      m.targets[intel]!.sha256 = "0".repeat(64);
    });
    const sidecar = (t: Target, hash: string) =>
      Deno.writeTextFile(
        join(dir, `${runtimeZipName(t)}.sha256sum`),
        `${hash}  ${runtimeZipName(t)}\n`,
      );
    await sidecar(mac, hashes.get(mac)!); // agrees
    await sidecar(win, "f".repeat(64)); // disagrees
    // linux: no sidecar
    await sidecar(intel, hashes.get(intel)!); // agrees, but another value is pinned
    const result = await pinRuntimes(dir, [mac, win, linux, intel], manifest);
    assert.deepEqual(result.pinned, [mac]);
    assert.equal(result.errors.length, 3);
    assert.match(result.errors[0], /x86_64-pc-windows-msvc: .*\.sha256sum does not agree/);
    assert.match(result.errors[1], /aarch64-unknown-linux-gnu: no .*\.sha256sum beside/);
    assert.match(result.errors[2], /x86_64-apple-darwin: .* already pins 0{64}.*not overwritten/);
    const after = await readManifest(manifest);
    assert.equal(after.targets[mac]!.sha256, hashes.get(mac));
    assert.equal(after.targets[win]!.sha256, null);
    assert.equal(after.targets[intel]!.sha256, "0".repeat(64));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("build.ts --check-runtimes: 0 when all match, 3 when only pins are missing, 1 otherwise", async () => {
  const { dir, manifest } = await fabricate();
  try {
    const ok = await runBuild(["--runtime-dir", dir, "--manifest", manifest, "--check-runtimes"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(
      (ok.stdout.match(/^runtime \S+: .* sha256 [0-9a-f]{64} matches /gm) ?? []).length,
      5,
    );
    assert.match(ok.stdout, /runtimes: 5 of 5 accepted/);
    // The checked-in manifest: this machine's target is not pinned there (exit 3)...
    const real = await runBuild(["--runtime-dir", dir, "--check-runtimes", "--target", HOST]);
    assert.equal(real.code, 3, real.stdout + real.stderr);
    assert.match(real.stderr, /scripts\/denort-manifest\.json pins no sha256 for/);
    // ... and its one pin refuses a fabricated zip (exit 1).
    const mac = await runBuild([
      "--runtime-dir",
      dir,
      "--check-runtimes",
      "--target",
      "aarch64-apple-darwin",
    ]);
    assert.equal(mac.code, 1, mac.stdout + mac.stderr);
    assert.match(mac.stderr, /sha256 mismatch: .* pins 315d3690/);
    const needsDir = await runBuild(["--check-runtimes"]);
    assert.equal(needsDir.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("build.ts --runtime-dir compiles nothing if one target is refused", async () => {
  const { dir, manifest } = await fabricate();
  const outDir = await Deno.makeTempDir();
  try {
    await editManifest(manifest, (m) => m.targets["x86_64-apple-darwin"]!.sha256 = "a".repeat(64));
    const run = await runBuild(["--runtime-dir", dir, "--manifest", manifest, "--out-dir", outDir]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /refused the runtime for x86_64-apple-darwin: .*sha256 mismatch/);
    assert.match(
      run.stdout,
      /built 0 of 5 target\(s\): refused the runtime for x86_64-apple-darwin; nothing compiled/,
    );
    assert.doesNotMatch(run.stdout, /==> /, "no deno compile started");
    assert.deepEqual([...Deno.readDirSync(outDir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test("build.ts --runtime-dir builds offline from the checked zip (here: a stand-in, so the smoke test deletes it)", async () => {
  const { dir, manifest } = await fabricate();
  const outDir = await Deno.makeTempDir();
  try {
    // Any download would go through this proxy, which refuses: only the seeded zip can serve.
    const proxy = "http://127.0.0.1:9";
    const run = await runBuild(
      ["--runtime-dir", dir, "--manifest", manifest, "--out-dir", outDir, "--target", HOST],
      { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, DENORT_BIN: Deno.execPath() },
    );
    const all = run.stdout + run.stderr;
    assert.equal(run.code, 1, all);
    assert.match(run.stdout, new RegExp(`runtime ${HOST}: .* matches `));
    assert.match(run.stdout, /offline: the checked runtimes are in (\S+); downloads are refused/);
    assert.match(
      run.stdout,
      new RegExp(`==> ${HOST}: runtime from the checked zip .*denort-${HOST}\\.zip \\(offline\\)`),
    );
    // deno compile used /bin/false (not DENORT_BIN, not a download): the result does not run
    // as kconnect, and the build says so and deletes it.
    assert.match(run.stderr, /does not run as kconnect/, all);
    assert.match(run.stderr, /checked against the manifest: is the pin right\?/);
    assert.deepEqual([...Deno.readDirSync(outDir)], []);
    const seeded = /offline: the checked runtimes are in (\S+);/.exec(run.stdout)![1];
    assert.equal(await exists(seeded), false, "the private DENO_DIR is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});
