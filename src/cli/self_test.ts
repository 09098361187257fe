/**
 * `kconnect self-test`: checks that this binary's native layer works on this machine.
 *
 * - `ffi` (always): opens the OS's native library through the module the TUN driver uses
 *   (Linux: libc through `src/tun/libc.ts`; macOS: libSystem through `src/tun/darwin_libc.ts`;
 *   Windows: kernel32 through the tables of `src/tun/wintun_symbols.ts`) and makes harmless
 *   calls whose results the kernel decides, so a wrong declaration shows as a wrong value.
 * - `tun` (with `--tun`; root, or administrator on Windows): opens a TUN device through
 *   `openTun`, the call `kconnect up` makes, with the MTU {@linkcode TUN_TEST_MTU} and the address
 *   {@linkcode TUN_TEST_ADDRESS}/32, reads name, MTU and address back from the OS, closes it and
 *   checks that the interface is gone. Without the rights it is reported as not run, with the
 *   reason; that is not a failure.
 *
 * Exit status 0 when no check failed, 1 when one did.
 *
 * @module
 */

import type { Command } from "commander";
import { printLine } from "../cmdline/output.ts";
import { ExitStatus } from "../cmdline/program.ts";
import { VERSION } from "../version.ts";
import type { TunDevice } from "../tun/device.ts";
import { openTun } from "../tun/open.ts";
import { again, EFD_CLOEXEC_NONBLOCK, Errno, errno, libc, libcAsync, POLLIN } from "../tun/libc.ts";
import {
  DarwinErrno,
  type DarwinLibc,
  darwinLibc,
  errnoReader,
  F_SETFD,
  fcntlInt,
  FD_CLOEXEC,
  ioc,
  IOC_OUT,
  ioctlPtr,
  LIBSYSTEM_PATH,
} from "../tun/darwin_libc.ts";
import { type CommandRunner, IFCONFIG, runCommand } from "../tun/darwin_config.ts";
import {
  KERNEL32_ASYNC_SYMBOLS,
  KERNEL32_SYMBOLS,
  type Kernel32AsyncSymbols,
  type Kernel32Symbols,
  WAIT_FAILED,
} from "../tun/wintun_symbols.ts";
import { KCONNECT_ADAPTER_GUID } from "../tun/windows.ts";
import { defaultWintunPath, WINTUN_PINS } from "../tun/wintun_pin.ts";

/** What became of one check. */
export type CheckStatus = "passed" | "failed" | "not run";

/** One check's result: one line of the text output, one element of `checks` in the JSON. */
export interface CheckResult {
  /** `ffi` or `tun`. */
  name: "ffi" | "tun";
  status: CheckStatus;
  /** What was checked (passed), what went wrong (failed), or why it did not run. */
  detail: string;
}

/** Everything `kconnect self-test` reports (`--json` prints this object). */
export interface SelfTestReport {
  version: string;
  os: string;
  arch: string;
  checks: CheckResult[];
  summary: { passed: number; failed: number; notRun: number };
  /** True when no check failed (the exit status is then 0). */
  ok: boolean;
}

/**
 * The address the TUN check gives the device, as a /32: from TEST-NET-2 (RFC 5737), which is
 * never routed, and outside 198.18.0.0/15, where `kconnect up` puts its own TUN addresses. A /32
 * adds no route to any prefix (on Linux only a local route; on macOS a host route to itself), so
 * a machine that uses this range elsewhere loses nothing for the second the device exists.
 */
export const TUN_TEST_ADDRESS = "198.51.100.1";
/** The MTU the TUN check sets: not the default 1500, so reading it back shows it was set. */
export const TUN_TEST_MTU = 1280;
/** The Windows adapter name the TUN check asks for (`kconnect up` uses `kconnect`). */
export const WINDOWS_TEST_ADAPTER = "kconnect-selftest";

class CheckFailure extends Error {}

function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailure(message);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function guarded(
  name: CheckResult["name"],
  fn: () => Promise<string>,
): Promise<CheckResult> {
  try {
    return { name, status: "passed", detail: await fn() };
  } catch (err) {
    return { name, status: "failed", detail: messageOf(err) };
  }
}

// ---- ffi -------------------------------------------------------------------------------------

/**
 * The Linux FFI check, through `src/tun/libc.ts` (the driver's binding of `libc.so.6`): an
 * eventfd (non-blocking, close-on-exec) gets 42 written, is polled on a worker thread (the
 * driver's `nonblocking` poll) and read back; a second read must fail with errno EAGAIN (the
 * driver's errno path); close must return 0. Returns what was checked; throws on a mismatch.
 */
export async function linuxFfiCheck(): Promise<string> {
  const c = libc();
  const fd = again(() => c.eventfd(0, EFD_CLOEXEC_NONBLOCK));
  expect(fd >= 0, `eventfd failed (errno ${errno()})`);
  let closed: number;
  try {
    const value = new BigUint64Array([42n]);
    const wrote = Number(c.write(fd, new Uint8Array(value.buffer), 8n));
    expect(wrote === 8, `write to the eventfd returned ${wrote}, not 8`);
    const pollfd = new Uint8Array(8); // struct pollfd { int fd; short events, revents; }
    const view = new DataView(pollfd.buffer);
    view.setInt32(0, fd, true);
    view.setInt16(4, POLLIN, true);
    const ready = await libcAsync().poll(pollfd, 1n, 0);
    const revents = view.getInt16(6, true);
    expect(ready === 1 && (revents & POLLIN) !== 0, `poll returned ${ready}, revents ${revents}`);
    const back = new BigUint64Array(1);
    const read = Number(c.read(fd, new Uint8Array(back.buffer), 8n));
    expect(read === 8 && back[0] === 42n, `read returned ${read} and the value ${back[0]}, not 42`);
    const empty = again(() => Number(c.read(fd, new Uint8Array(8), 8n)));
    const e = errno();
    expect(
      empty === -1 && e === Errno.EAGAIN,
      `a read of the empty eventfd returned ${empty} with errno ${e}, not -1 with EAGAIN`,
    );
  } finally {
    closed = c.close(fd);
  }
  expect(closed === 0, `close returned ${closed}`);
  return "libc.so.6 via src/tun/libc.ts: eventfd, write 42, poll POLLIN (worker thread), " +
    "read 42, read when empty EAGAIN, close";
}

/** `F_GETFD` (the same on macOS and Linux); `darwin_libc.ts` has only `F_SETFD`. */
const F_GETFD = 1;
/** macOS `FIONREAD` = `_IOR('f', 127, int)`. */
export const DARWIN_FIONREAD: number = ioc(IOC_OUT, "f", 127, 4);

/**
 * The macOS FFI check, on the driver's libSystem symbols (`c`): a pipe; `FD_CLOEXEC` set and
 * read back through the 9-parameter `fcntl`, and `FIONREAD` through the 9-parameter `ioctl`
 * (on Apple arm64 the variadic argument travels on the stack: a wrong value here is the bug
 * `darwin_libc.ts` works round); `poll` on a worker thread; `close(-1)` failing with EBADF
 * through `__error()`. Returns what was checked; throws on a mismatch.
 *
 * @param c The symbols; `darwinLibc()` on a Mac, a test's stand-in elsewhere.
 * @param fionread The `FIONREAD` request; macOS's by default (a test on glibc passes Linux's).
 */
export async function darwinFfiCheck(
  c: DarwinLibc,
  fionread: number = DARWIN_FIONREAD,
): Promise<string> {
  const errnoOf = errnoReader(c);
  const fds = new Int32Array(2);
  const piped = again(() => c.pipe(new Uint8Array(fds.buffer)));
  expect(piped === 0, `pipe returned ${piped} (errno ${errnoOf()})`);
  const closes: number[] = [];
  try {
    const set = fcntlInt(c, fds[0], F_SETFD, FD_CLOEXEC);
    const flags = fcntlInt(c, fds[0], F_GETFD, 0);
    expect(
      set === 0 && flags === FD_CLOEXEC,
      `fcntl F_SETFD FD_CLOEXEC returned ${set}, then F_GETFD ${flags} (want 0, then ` +
        `${FD_CLOEXEC}): the variadic argument did not arrive`,
    );
    const wrote = Number(c.write(fds[1], new Uint8Array([1, 2, 3, 4, 5]), 5n));
    expect(wrote === 5, `write to the pipe returned ${wrote}, not 5`);
    const available = new Int32Array(1);
    const got = ioctlPtr(c, fds[0], fionread, new Uint8Array(available.buffer));
    expect(
      got === 0 && available[0] === 5,
      `ioctl FIONREAD returned ${got} and ${available[0]} bytes, not 0 and 5: ` +
        "the variadic pointer did not arrive",
    );
    const pollfd = new Uint8Array(8);
    const view = new DataView(pollfd.buffer);
    view.setInt32(0, fds[0], true);
    view.setInt16(4, 1, true); // POLLIN
    const ready = await c.poll(pollfd, 1, 0);
    expect(ready === 1 && (view.getInt16(6, true) & 1) !== 0, `poll returned ${ready}`);
    const bad = c.close(-1);
    const e = errnoOf();
    expect(
      bad === -1 && e === DarwinErrno.EBADF,
      `close(-1) returned ${bad} with errno ${e}, not -1 with EBADF`,
    );
  } finally {
    closes.push(c.close(fds[0]), c.close(fds[1]));
  }
  expect(closes.every((r) => r === 0), `close of the pipe returned ${closes.join(", ")}`);
  return `${LIBSYSTEM_PATH} via src/tun/darwin_libc.ts: pipe, 9-parameter fcntl ` +
    "F_SETFD/F_GETFD FD_CLOEXEC, write 5, 9-parameter ioctl FIONREAD 5, poll POLLIN (worker " +
    "thread), close(-1) EBADF, close";
}

/**
 * `GetCurrentProcessId`, which no table of `src/tun/` declares (the driver has no use for it):
 * this one call is declared here rather than in `wintun_symbols.ts`.
 */
export const SELF_TEST_KERNEL32_SYMBOLS = {
  /** `DWORD GetCurrentProcessId(void)` */
  GetCurrentProcessId: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The self-test's own kernel32 function. */
export type SelfTestKernel32Symbols = Deno.DynamicLibrary<
  typeof SELF_TEST_KERNEL32_SYMBOLS
>["symbols"];

/** `ERROR_INVALID_HANDLE` (winerror.h). */
const ERROR_INVALID_HANDLE = 6;

/**
 * The Windows FFI check: kernel32 with the driver's tables (`KERNEL32_SYMBOLS`,
 * `KERNEL32_ASYNC_SYMBOLS`) and `GetCurrentProcessId` from this module's table. The process id
 * must be `pid`; `SetEvent(NULL)` must fail with `GetLastError()` = `ERROR_INVALID_HANDLE` (the
 * driver's last-error path); `WaitForSingleObject(NULL, 0)` on a worker thread must return
 * `WAIT_FAILED`. Wintun itself is the TUN check's business. Throws on a mismatch.
 */
export async function windowsFfiCheck(
  k: Kernel32Symbols & SelfTestKernel32Symbols,
  kAsync: Kernel32AsyncSymbols,
  pid: number = Deno.pid,
): Promise<string> {
  const id = k.GetCurrentProcessId();
  expect(id === pid, `GetCurrentProcessId() returned ${id}, not this process's id ${pid}`);
  const set = k.SetEvent(null);
  const last = k.GetLastError();
  expect(
    set === 0 && last === ERROR_INVALID_HANDLE,
    `SetEvent(NULL) returned ${set} with last error ${last}, not 0 with ERROR_INVALID_HANDLE`,
  );
  const waited = await kAsync.WaitForSingleObject(null, 0);
  expect(
    waited === WAIT_FAILED,
    `WaitForSingleObject(NULL, 0) returned ${waited}, not WAIT_FAILED`,
  );
  return `kernel32.dll via src/tun/wintun_symbols.ts: GetCurrentProcessId = ${pid}, ` +
    "SetEvent(NULL) ERROR_INVALID_HANDLE, WaitForSingleObject(NULL) WAIT_FAILED (worker thread)";
}

async function windowsFfiReal(): Promise<string> {
  const libs: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
  try {
    const k = Deno.dlopen("kernel32.dll", KERNEL32_SYMBOLS);
    libs.push(k);
    const own = Deno.dlopen("kernel32.dll", SELF_TEST_KERNEL32_SYMBOLS);
    libs.push(own);
    const kAsync = Deno.dlopen("kernel32.dll", KERNEL32_ASYNC_SYMBOLS);
    libs.push(kAsync);
    return await windowsFfiCheck({ ...k.symbols, ...own.symbols }, kAsync.symbols);
  } finally {
    libs.forEach((l) => l.close());
  }
}

/** Runs the `ffi` check for `os` (this one by default). */
export function runFfiCheck(os: string = Deno.build.os): Promise<CheckResult> {
  return guarded("ffi", () => {
    switch (os) {
      case "linux":
        return linuxFfiCheck();
      case "darwin":
        return darwinFfiCheck(darwinLibc());
      case "windows":
        return windowsFfiReal();
      default:
        throw new Error(`kconnect has no native layer for ${os}`);
    }
  });
}

// ---- tun -------------------------------------------------------------------------------------

/** What decides whether the TUN check can run here. */
export interface TunFacts {
  os: string;
  arch: string;
  /** `Deno.uid()` (null on Windows). */
  uid: number | null;
  /** Linux: whether CAP_NET_ADMIN is in the effective set (null elsewhere or unknown). */
  capNetAdmin: boolean | null;
  /** Windows: whether the process is elevated (null elsewhere or unknown). */
  elevated: boolean | null;
  /** Windows: where `wintun.dll` must be, and whether it is there. */
  wintunPath?: string;
  wintunPresent?: boolean;
  /** Windows: whether kconnect's own adapter (its fixed GUID) exists now. */
  kconnectAdapter?: boolean;
}

/**
 * Why the TUN check cannot run with `facts`, or null when it can. Missing rights, a missing
 * `wintun.dll` and a running kconnect adapter are reasons not to run, not failures.
 *
 * @example
 * ```ts
 * import { tunNotRunReason } from "./self_test.ts";
 * const why = tunNotRunReason({ os: "darwin", arch: "aarch64", uid: 501, capNetAdmin: null, elevated: null });
 * if (why === null || !why.startsWith("needs root")) throw new Error(String(why));
 * ```
 */
export function tunNotRunReason(facts: TunFacts): string | null {
  switch (facts.os) {
    case "linux":
      return facts.capNetAdmin
        ? null
        : "needs root (CAP_NET_ADMIN): run `sudo kconnect self-test --tun`";
    case "darwin":
      return facts.uid === 0 ? null : "needs root: run `sudo kconnect self-test --tun`";
    case "windows":
      if (!facts.elevated) {
        return "needs administrator rights: run `kconnect self-test --tun` from an elevated prompt";
      }
      if (WINTUN_PINS[facts.arch as typeof Deno.build.arch] === undefined) {
        return `no wintun.dll is pinned for ${facts.arch}`;
      }
      if (!facts.wintunPresent) {
        return `wintun.dll is not at ${facts.wintunPath} (\`kconnect install\` puts it there)`;
      }
      if (facts.kconnectAdapter) {
        return "kconnect's adapter exists (kconnect is connected?): the test adapter would " +
          "take its fixed GUID; run it after `kconnect down`";
      }
      return null;
    default:
      return `kconnect has no TUN driver for ${facts.os}`;
  }
}

/** Whether CAP_NET_ADMIN (bit 12) is in `CapEff` of a `/proc/<pid>/status` text. */
export function hasCapNetAdmin(status: string): boolean | null {
  const m = /^CapEff:\s*([0-9a-f]+)\s*$/m.exec(status);
  return m === null ? null : (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n;
}

/** Runs a PowerShell command (Windows) and returns its trimmed stdout; throws on failure. */
async function powershell(script: string, run: CommandRunner = runCommand): Promise<string> {
  const root = Deno.env.get("SystemRoot") ?? "C:\\Windows";
  const r = await run(`${root}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`, [
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    script,
  ]);
  if (r.code !== 0) throw new Error(`powershell ${script}: ${r.stderr.trim() || r.code}`);
  return r.stdout.trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Collects the {@linkcode TunFacts} of this process. */
export async function gatherTunFacts(): Promise<TunFacts> {
  const os = Deno.build.os;
  const facts: TunFacts = {
    os,
    arch: Deno.build.arch,
    uid: Deno.uid(),
    capNetAdmin: null,
    elevated: null,
  };
  if (os === "linux") {
    facts.capNetAdmin = await Deno.readTextFile("/proc/self/status").then(
      hasCapNetAdmin,
      () => null,
    );
  } else if (os === "windows") {
    // High (S-1-16-12288) or System (S-1-16-16384) integrity: an elevated token.
    const root = Deno.env.get("SystemRoot") ?? "C:\\Windows";
    const who = await runCommand(`${root}\\System32\\whoami.exe`, ["/groups"]).catch(() => null);
    facts.elevated = who === null ? null : /S-1-16-(12288|16384)\b/.test(who.stdout);
    facts.wintunPath = defaultWintunPath();
    facts.wintunPresent = await exists(facts.wintunPath);
    if (facts.elevated && facts.wintunPresent) {
      const count = await powershell(
        `@(Get-NetAdapter -IncludeHidden | Where-Object InterfaceGuid -eq ` +
          `'{${KCONNECT_ADAPTER_GUID}}').Count`,
      ).catch(() => "0");
      facts.kconnectAdapter = count !== "0";
    }
  }
  return facts;
}

async function waitFor(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await what()) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How one OS shows an open test device, and that it is gone. */
interface TunInspector {
  /** The name to ask for (undefined: the kernel picks). */
  name: string | undefined;
  /** Checks before opening; throws when the test cannot go ahead. */
  before(): Promise<void>;
  /** Checks the open device against the OS; returns what was seen; throws on a mismatch. */
  inspect(dev: TunDevice): Promise<string>;
  /** Whether the device is gone from the OS, and how that was checked. */
  gone(name: string): Promise<boolean>;
  goneHow: string;
}

function linuxInspector(): TunInspector {
  // A non-persistent TUN lives as long as its descriptor: no other live process can hold a
  // device named after this process's id, and a stray interface of that name is refused below.
  const name = `kcst${Deno.pid}`;
  const sys = (n: string) => `/sys/class/net/${n}`;
  return {
    name,
    async before() {
      expect(!(await exists(sys(name))), `an interface ${name} exists already; not touched`);
    },
    async inspect(dev) {
      expect(dev.name === name, `the device is named ${dev.name}, not ${name}`);
      const flags = parseInt(await Deno.readTextFile(`${sys(name)}/tun_flags`), 16);
      expect((flags & 0x1) !== 0, `${sys(name)}/tun_flags is ${flags}: not a TUN`);
      const mtu = Number((await Deno.readTextFile(`${sys(name)}/mtu`)).trim());
      expect(mtu === TUN_TEST_MTU, `${sys(name)}/mtu is ${mtu}, not ${TUN_TEST_MTU}`);
      const has = Deno.networkInterfaces().some((i) =>
        i.name === name && i.address === TUN_TEST_ADDRESS
      );
      expect(has, `${TUN_TEST_ADDRESS} is not on ${name}`);
      return `${name} (${sys(name)}, tun_flags 0x${flags.toString(16)}), mtu ${mtu}, ` +
        `${TUN_TEST_ADDRESS}/32`;
    },
    async gone(n) {
      return !(await exists(sys(n)));
    },
    goneHow: "no /sys/class/net entry",
  };
}

function darwinInspector(run: CommandRunner = runCommand): TunInspector {
  const ifconfig = (n: string) => run(IFCONFIG, [n]);
  return {
    name: undefined, // the kernel picks a free utunN: nothing to collide with
    async before() {},
    async inspect(dev) {
      expect(/^utun\d+$/.test(dev.name), `the device is named ${dev.name}, not utunN`);
      const r = await ifconfig(dev.name);
      expect(r.code === 0, `ifconfig ${dev.name}: ${r.stderr.trim() || r.code}`);
      expect(
        new RegExp(`\\bmtu ${TUN_TEST_MTU}\\b`).test(r.stdout),
        `ifconfig ${dev.name} shows no mtu ${TUN_TEST_MTU}: ${r.stdout.trim()}`,
      );
      expect(
        r.stdout.includes(`inet ${TUN_TEST_ADDRESS} `),
        `ifconfig ${dev.name} shows no inet ${TUN_TEST_ADDRESS}: ${r.stdout.trim()}`,
      );
      return `${dev.name} (ifconfig), mtu ${TUN_TEST_MTU}, ${TUN_TEST_ADDRESS}/32`;
    },
    async gone(n) {
      // Gone: ifconfig knows no such interface, or the utunN it shows is another one (without
      // the test address) that some other program opened meanwhile.
      const r = await ifconfig(n);
      return r.code !== 0 || !r.stdout.includes(`inet ${TUN_TEST_ADDRESS} `);
    },
    goneHow: "ifconfig no longer shows it with the test address",
  };
}

function windowsInspector(): TunInspector {
  const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
  return {
    name: WINDOWS_TEST_ADAPTER,
    async before() {},
    async inspect(dev) {
      expect(dev.name !== "", "the adapter's alias is empty");
      const out = await powershell(
        `$i = Get-NetIPInterface -InterfaceAlias ${quote(dev.name)} -AddressFamily IPv4; ` +
          `$a = Get-NetIPAddress -InterfaceAlias ${quote(dev.name)} -AddressFamily IPv4; ` +
          `"$($i.NlMtu) $(@($a.IPAddress) -join ',')"`,
      );
      const [mtu, addresses = ""] = out.split(" ");
      expect(Number(mtu) === TUN_TEST_MTU, `${dev.name} has MTU ${mtu}, not ${TUN_TEST_MTU}`);
      expect(
        addresses.split(",").includes(TUN_TEST_ADDRESS),
        `${dev.name} has the addresses ${addresses || "(none)"}, not ${TUN_TEST_ADDRESS}`,
      );
      return `${dev.name} (Get-NetIPInterface), mtu ${mtu}, ${TUN_TEST_ADDRESS}/32`;
    },
    async gone(n) {
      const count = await powershell(
        `@(Get-NetAdapter -IncludeHidden -Name ${quote(n)} -ErrorAction SilentlyContinue).Count`,
      );
      return count === "0";
    },
    goneHow: "Get-NetAdapter no longer lists it",
  };
}

function inspectorFor(os: string): TunInspector {
  switch (os) {
    case "linux":
      return linuxInspector();
    case "darwin":
      return darwinInspector();
    case "windows":
      return windowsInspector();
    default:
      throw new Error(`kconnect has no TUN driver for ${os}`);
  }
}

/**
 * Runs the `tun` check: not run (with the reason) when {@linkcode tunNotRunReason} says so,
 * else opens, inspects and closes a device and waits up to 5 s for it to be gone.
 */
export async function runTunCheck(facts?: TunFacts): Promise<CheckResult> {
  const reason = tunNotRunReason(facts ?? await gatherTunFacts());
  if (reason !== null) return { name: "tun", status: "not run", detail: reason };
  return guarded("tun", async () => {
    const os = inspectorFor(Deno.build.os);
    await os.before();
    const dev = await openTun({
      name: os.name,
      mtu: TUN_TEST_MTU,
      addresses: [{ address: TUN_TEST_ADDRESS, prefixLength: 32 }],
    });
    let seen: string;
    try {
      seen = await os.inspect(dev);
    } finally {
      await dev.close();
    }
    const gone = await waitFor(() => os.gone(dev.name), 5000);
    expect(gone, `${dev.name} is still there 5 s after close`);
    return `opened ${seen}; closed, gone (${os.goneHow})`;
  });
}

// ---- the command -----------------------------------------------------------------------------

/** Options of {@linkcode selfTest}. */
export interface SelfTestOptions {
  /** Run the TUN check (needs root / administrator). Default false. */
  tun?: boolean;
}

/** Builds the report from the checks' results. */
export function makeReport(checks: CheckResult[]): SelfTestReport {
  const count = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  const summary = { passed: count("passed"), failed: count("failed"), notRun: count("not run") };
  return {
    version: VERSION,
    os: Deno.build.os,
    arch: Deno.build.arch,
    checks,
    summary,
    ok: summary.failed === 0,
  };
}

/** Runs the checks: `ffi` always, `tun` with `options.tun` (else it is reported as not run). */
export async function selfTest(options: SelfTestOptions = {}): Promise<SelfTestReport> {
  const ffi = await runFfiCheck();
  const tun: CheckResult = options.tun ? await runTunCheck() : {
    name: "tun",
    status: "not run",
    detail: "not asked for: `sudo kconnect self-test --tun` opens and closes a TUN device",
  };
  return makeReport([ffi, tun]);
}

/**
 * Formats a report as text: one line per check, then the summary.
 *
 * @example
 * ```ts
 * import { formatSelfTest, makeReport } from "./self_test.ts";
 * const text = formatSelfTest(makeReport([{ name: "ffi", status: "passed", detail: "ok" }]));
 * if (!text.endsWith("self-test: ok (1 passed, 0 failed, 0 not run)")) throw new Error(text);
 * ```
 */
export function formatSelfTest(report: SelfTestReport): string {
  const lines = report.checks.map((c) => `${c.name.padEnd(5)}${c.status.padEnd(9)}${c.detail}`);
  const { passed, failed, notRun } = report.summary;
  lines.push(
    `self-test: ${report.ok ? "ok" : "FAILED"} ` +
      `(${passed} passed, ${failed} failed, ${notRun} not run)`,
  );
  return lines.join("\n");
}

/**
 * Registers `kconnect self-test [--tun] [--json]` on `program`.
 *
 * @example
 * ```ts
 * import { Command } from "commander";
 * import { registerSelfTest } from "./self_test.ts";
 * const program = new Command("kconnect");
 * registerSelfTest(program);
 * ```
 */
export function registerSelfTest(program: Command): void {
  program
    .command("self-test")
    .description(
      "check that this binary's native layer works here (FFI; with --tun a TUN open/close)",
    )
    .option("--tun", "also open and close a TUN device (needs root, or administrator on Windows)")
    .option("--json", "print as JSON")
    .action(async (opts: { tun?: boolean; json?: boolean }) => {
      const report = await selfTest({ tun: opts.tun });
      printLine(opts.json ? JSON.stringify(report, null, 2) : formatSelfTest(report));
      if (!report.ok) throw new ExitStatus(1);
    });
}
