import assert from "node:assert/strict";
import {
  darwinFfiCheck,
  formatSelfTest,
  hasCapNetAdmin,
  makeReport,
  runFfiCheck,
  type SelfTestKernel32Symbols,
  TUN_TEST_ADDRESS,
  type TunFacts,
  tunNotRunReason,
  windowsFfiCheck,
} from "./self_test.ts";
import { DARWIN_SYMBOLS, type DarwinLibc } from "../tun/darwin_libc.ts";
import type { Kernel32AsyncSymbols, Kernel32Symbols } from "../tun/wintun_symbols.ts";
import { WAIT_FAILED } from "../tun/wintun_symbols.ts";
import { DENO_RUN, ROOT } from "../../tests/_dataplane.ts";
import { Netns } from "../../tests/_netns.ts";
import { makeTestUser } from "../../tests/_up.ts";

const linux = Deno.build.os === "linux";
const root = linux && Deno.uid() === 0;
const decoder = new TextDecoder();

/** Runs `kconnect <args>` from source, optionally behind a prefix (setpriv, ip netns exec). */
async function kconnect(
  args: string[],
  o: { prefix?: string[]; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = [...(o.prefix ?? []), ...DENO_RUN, "-A", `${ROOT}main.ts`, ...args];
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...o.env },
    cwd: o.cwd,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test({
  name: "runFfiCheck() passes on Linux through the driver's libc binding",
  ignore: !linux,
  async fn() {
    const r = await runFfiCheck();
    assert.equal(r.status, "passed", r.detail);
    assert.match(r.detail, /^libc\.so\.6 via src\/tun\/libc\.ts: .*read 42.*EAGAIN/);
  },
});

Deno.test("runFfiCheck() fails, not throws, on an OS without a native layer", async () => {
  assert.deepEqual(await runFfiCheck("plan9"), {
    name: "ffi",
    status: "failed",
    detail: "kconnect has no native layer for plan9",
  });
});

/** glibc bound with the Darwin declarations (as darwin_libc_test.ts does), `__error` included. */
function glibcAsDarwin(): { c: DarwinLibc; close: () => void } {
  const lib = Deno.dlopen("libc.so.6", {
    ioctl: DARWIN_SYMBOLS.ioctl,
    fcntl: DARWIN_SYMBOLS.fcntl,
    pipe: DARWIN_SYMBOLS.pipe,
    write: DARWIN_SYMBOLS.write,
    close: DARWIN_SYMBOLS.close,
    __error: { name: "__errno_location", parameters: [], result: "pointer" },
    // glibc's nfds_t is an unsigned long; Darwin's an unsigned int.
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  });
  const s = lib.symbols;
  const c = {
    ...s,
    poll: (fds: Uint8Array, n: number, timeout: number) => s.poll(fds, BigInt(n), timeout),
  } as unknown as DarwinLibc;
  return { c, close: () => lib.close() };
}

Deno.test({
  name: "darwinFfiCheck() passes with the Darwin declarations bound to glibc",
  ignore: !linux,
  async fn() {
    const { c, close } = glibcAsDarwin();
    try {
      const detail = await darwinFfiCheck(c, 0x541b); // Linux's FIONREAD
      assert.match(detail, /9-parameter ioctl FIONREAD 5/);
    } finally {
      close();
    }
  },
});

Deno.test({
  name: "darwinFfiCheck() fails when the variadic argument does not arrive",
  ignore: !linux,
  async fn() {
    const { c, close } = glibcAsDarwin();
    try {
      // What Apple arm64 would do with a 3-parameter declaration: the callee reads the stack
      // slot, which here holds 0 instead of FD_CLOEXEC.
      const broken = {
        ...c,
        fcntl: (...a: Parameters<DarwinLibc["fcntl"]>) => {
          a[2] = a[8] = 0n;
          return c.fcntl(...a);
        },
      } as DarwinLibc;
      await assert.rejects(darwinFfiCheck(broken, 0x541b), /F_GETFD 0 .*did not arrive/);
    } finally {
      close();
    }
  },
});

function fakeKernel32(o: { pid: number; lastError: number; wait: number }) {
  const k = {
    GetCurrentProcessId: () => o.pid,
    GetLastError: () => o.lastError,
    SetEvent: (h: Deno.PointerValue) => h === null ? 0 : 1,
  } as unknown as Kernel32Symbols & SelfTestKernel32Symbols;
  const kAsync = {
    WaitForSingleObject: () => Promise.resolve(o.wait),
  } as unknown as Kernel32AsyncSymbols;
  return { k, kAsync };
}

Deno.test("windowsFfiCheck() checks the process id, the last error and the wait", async () => {
  const good = fakeKernel32({ pid: 4242, lastError: 6, wait: WAIT_FAILED });
  assert.match(await windowsFfiCheck(good.k, good.kAsync, 4242), /GetCurrentProcessId = 4242/);
  const pid = fakeKernel32({ pid: 1, lastError: 6, wait: WAIT_FAILED });
  await assert.rejects(windowsFfiCheck(pid.k, pid.kAsync, 4242), /returned 1, not .* 4242/);
  const last = fakeKernel32({ pid: 4242, lastError: 0, wait: WAIT_FAILED });
  await assert.rejects(windowsFfiCheck(last.k, last.kAsync, 4242), /last error 0/);
  const wait = fakeKernel32({ pid: 4242, lastError: 6, wait: 0 });
  await assert.rejects(windowsFfiCheck(wait.k, wait.kAsync, 4242), /WAIT_FAILED/);
});

Deno.test("tunNotRunReason() runs only with the rights, and on Windows with wintun.dll", () => {
  const base: TunFacts = { os: "linux", arch: "x86_64", uid: 0, capNetAdmin: true, elevated: null };
  const win: TunFacts = {
    ...base,
    os: "windows",
    uid: null,
    capNetAdmin: null,
    elevated: true,
    wintunPath: "C:\\Program Files\\kconnect\\wintun.dll",
    wintunPresent: true,
    kconnectAdapter: false,
  };
  const cases: [string, TunFacts, RegExp | null][] = [
    ["linux with CAP_NET_ADMIN", base, null],
    ["linux without", { ...base, uid: 1000, capNetAdmin: false }, /^needs root \(CAP_NET_ADMIN\)/],
    ["linux, root without the capability", { ...base, capNetAdmin: false }, /^needs root/],
    ["linux, unknown", { ...base, capNetAdmin: null }, /^needs root/],
    ["macOS root", { ...base, os: "darwin", capNetAdmin: null }, null],
    ["macOS user", { ...base, os: "darwin", uid: 501, capNetAdmin: null }, /^needs root:/],
    ["windows, all there", win, null],
    ["windows, not elevated", { ...win, elevated: false }, /^needs administrator/],
    ["windows, arm64", { ...win, arch: "aarch64" }, /no wintun\.dll is pinned for aarch64/],
    ["windows, no dll", { ...win, wintunPresent: false }, /wintun\.dll is not at C:\\Program/],
    ["windows, kconnect up", { ...win, kconnectAdapter: true }, /fixed GUID/],
    ["freebsd", { ...base, os: "freebsd" }, /no TUN driver for freebsd/],
  ];
  for (const [name, facts, want] of cases) {
    const got = tunNotRunReason(facts);
    if (want === null) assert.equal(got, null, name);
    else assert.match(String(got), want, name);
  }
});

Deno.test("hasCapNetAdmin() reads bit 12 of CapEff", () => {
  assert.equal(hasCapNetAdmin("Name:\tx\nCapEff:\t000001ffffffffff\n"), true);
  assert.equal(hasCapNetAdmin("CapEff:\t0000000000000000\n"), false);
  assert.equal(hasCapNetAdmin("CapEff:\t0000000000001000\n"), true);
  assert.equal(hasCapNetAdmin("CapEff:\t0000000000000fff\n"), false);
  assert.equal(hasCapNetAdmin("Name:\tx\n"), null);
});

Deno.test("formatSelfTest() prints a line per check and the summary; a failure is not ok", () => {
  const report = makeReport([
    { name: "ffi", status: "failed", detail: "boom" },
    { name: "tun", status: "not run", detail: "needs root" },
  ]);
  assert.equal(report.ok, false);
  assert.deepEqual(report.summary, { passed: 0, failed: 1, notRun: 1 });
  assert.equal(
    formatSelfTest(report),
    "ffi  failed   boom\ntun  not run  needs root\nself-test: FAILED (0 passed, 1 failed, 1 not run)",
  );
});

/** Checks the JSON shape and returns the checks by name. */
function parseReport(stdout: string): Map<string, { status: string; detail: string }> {
  const report = JSON.parse(stdout);
  assert.deepEqual(Object.keys(report), ["version", "os", "arch", "checks", "summary", "ok"]);
  assert.equal(report.os, Deno.build.os);
  assert.equal(report.arch, Deno.build.arch);
  assert.deepEqual(report.checks.map((c: { name: string }) => c.name), ["ffi", "tun"]);
  for (const c of report.checks) {
    assert.deepEqual(Object.keys(c), ["name", "status", "detail"]);
    assert.ok(["passed", "failed", "not run"].includes(c.status), c.status);
    assert.equal(typeof c.detail, "string");
  }
  assert.deepEqual(Object.keys(report.summary), ["passed", "failed", "notRun"]);
  assert.equal(report.ok, report.summary.failed === 0);
  return new Map(report.checks.map((c: { name: string }) => [c.name, c]));
}

Deno.test({
  name: "kconnect self-test --json: ffi passed, tun not asked for, exit 0",
  ignore: !linux,
  async fn() {
    const r = await kconnect(["self-test", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const checks = parseReport(r.stdout);
    assert.equal(checks.get("ffi")?.status, "passed");
    assert.equal(checks.get("tun")?.status, "not run");
    assert.match(checks.get("tun")!.detail, /^not asked for/);
    const text = await kconnect(["self-test"]);
    assert.equal(text.code, 0, text.stderr);
    assert.ok(text.stdout.startsWith("ffi  passed   libc.so.6 "), text.stdout);
    assert.match(text.stdout, /\nself-test: ok \(1 passed, 0 failed, 1 not run\)\n$/);
  },
});

Deno.test({
  name: "kconnect self-test --tun as an unprivileged user: tun not run with the reason, exit 0",
  ignore: !root,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kc-selftest-" });
    try {
      await Deno.chmod(dir, 0o755);
      const user = await makeTestUser(dir, 4077);
      const r = await kconnect(["self-test", "--tun", "--json"], {
        prefix: [
          "setpriv",
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          "--clear-groups",
          "--inh-caps=-all",
        ],
        env: { HOME: user.home, DENO_DIR: user.denoDir },
        cwd: user.home,
      });
      assert.equal(r.code, 0, r.stderr);
      const checks = parseReport(r.stdout);
      assert.equal(checks.get("ffi")?.status, "passed");
      assert.deepEqual(checks.get("tun"), {
        name: "tun",
        status: "not run",
        detail: "needs root (CAP_NET_ADMIN): run `sudo kconnect self-test --tun`",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "kconnect self-test --tun as root in a network namespace: opens, checks, closes; no TUN left",
  ignore: !root,
  async fn() {
    await using ns = await Netns.create("selftest");
    const r = await kconnect(["self-test", "--tun", "--json"], {
      prefix: ["ip", "netns", "exec", ns.name],
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const checks = parseReport(r.stdout);
    assert.equal(checks.get("ffi")?.status, "passed");
    const tun = checks.get("tun")!;
    assert.equal(tun.status, "passed", tun.detail);
    assert.match(
      tun.detail,
      new RegExp(
        `^opened (kcst\\d+) \\(/sys/class/net/\\1, tun_flags 0x1001\\), mtu 1280, ` +
          `${
            TUN_TEST_ADDRESS.replaceAll(".", "\\.")
          }/32; closed, gone \\(no /sys/class/net entry\\)$`,
      ),
    );
    const links = await ns.exec(["ip", "-o", "link", "show", "type", "tun"]);
    assert.equal(links.stdout.trim(), "");
  },
});
