/**
 * `runAsToken()` driven against the fake Windows of `windows_run_as_fake.ts`: what the child is
 * given (command line, environment block, directory, stdin, inherited handles, its job), what
 * comes back, and that every path (success, each failing call, too much output, timeout, abort)
 * ends the child and everything it started when it must and closes every handle, also when a
 * grandchild holds the pipes open.
 */
import assert from "node:assert/strict";
import { runAsToken, type RunAsTokenOptions, Win32CallError } from "./windows_run_as.ts";
import {
  type FakeProcess,
  FakeWindowsRunAs,
  type FakeWindowsRunAsOptions,
} from "./windows_run_as_fake.ts";
import {
  CREATE_NO_WINDOW,
  CREATE_UNICODE_ENVIRONMENT,
  EXTENDED_STARTUPINFO_PRESENT,
  JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
  JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
  PRIMARY_TOKEN_ACCESS,
  PROC_THREAD_ATTRIBUTE_JOB_LIST,
  RunAsError,
  SECURITY_IMPERSONATION,
  TOKEN_PRIMARY,
} from "./windows_run_as_symbols.ts";
import { openWindowsRunAs } from "./windows_run_as.ts";

const PROGRAM = "C:\\Program Files\\kconnect\\kconnect.exe";
const enc = new TextEncoder();
const dec = new TextDecoder();

function options(over: Partial<RunAsTokenOptions> = {}): RunAsTokenOptions {
  return {
    program: PROGRAM,
    args: ["credentials", "--json", "--env-stdin", "--cwd", "C:\\Users\\Jo Doe\\work"],
    env: { SystemRoot: "C:\\Windows", PATH: "C:\\Windows\\System32", APPDATA: "C:\\A" },
    cwd: "C:\\Windows\\System32",
    stdin: enc.encode('{"KUBECONFIG":"C:\\\\Users\\\\jo\\\\.kube\\\\config"}'),
    maxOutput: 1 << 20,
    timeoutMs: 10_000,
    ...over,
  };
}

function utf16le(s: string): Uint8Array {
  return new Uint8Array([...s].flatMap((c) => [c.charCodeAt(0) & 0xff, c.charCodeAt(0) >> 8]));
}

/** Runs against a fresh fake; returns the fake and the result or the error. */
async function run(
  fakeOptions: FakeWindowsRunAsOptions,
  over: Partial<RunAsTokenOptions> = {},
): Promise<
  { fake: FakeWindowsRunAs; result?: Awaited<ReturnType<typeof runAsToken>>; error?: unknown }
> {
  const fake = new FakeWindowsRunAs(fakeOptions);
  const token = fake.userToken();
  try {
    const result = await runAsToken(fake, token, options(over));
    return { fake, result };
  } catch (error) {
    return { fake, error };
  }
}

function assertClean(fake: FakeWindowsRunAs): void {
  assert.deepEqual(fake.leaked(), [], "every handle the runner made is closed");
  assert.equal(fake.openAttributeLists, 0, "the attribute list is deleted");
  assert.deepEqual(fake.violations, []);
  for (const j of fake.jobs) assert.equal(j.openHandles, 0, `job ${j.id} is closed`);
  assert.deepEqual(fake.processes.filter((p) => p.alive).map((p) => p.name), [], "none runs on");
}

/** A child that starts a grandchild holding its stdin, stdout and stderr, then hangs. */
function withGrandchild(
  then: "hang" | { stdout?: string; code?: number } = "hang",
): FakeWindowsRunAsOptions & { grandchild: () => FakeProcess } {
  let g: FakeProcess | undefined;
  return {
    program: (_stdin, _launch, child) => {
      g = child.spawn();
      return then;
    },
    grandchild: () => g!,
  };
}

/** Resolves after `ms`. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("runAsToken() gives the child the exact command line, environment, directory and stdin", async () => {
  let seen: Uint8Array | null = null;
  const { fake, result, error } = await run({
    program: (stdin) => {
      seen = stdin;
      return { stdout: '{"token":"t"}\n', stderr: "warning: x\n", code: 0 };
    },
  });
  assert.equal(error, undefined);
  assert.equal(fake.launches.length, 1);
  const l = fake.launches[0];
  assert.equal(l.application, PROGRAM);
  assert.equal(
    l.commandLine,
    `"${PROGRAM}" credentials --json --env-stdin --cwd "C:\\Users\\Jo Doe\\work"`,
  );
  assert.deepEqual(
    l.environment,
    utf16le("APPDATA=C:\\A\0PATH=C:\\Windows\\System32\0SystemRoot=C:\\Windows\0\0"),
  );
  assert.equal(l.cwd, "C:\\Windows\\System32");
  assert.equal(l.desktop, "", "the token's own window station, not the daemon's");
  assert.equal(
    l.flags,
    CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW | EXTENDED_STARTUPINFO_PRESENT,
  );
  assert.deepEqual(seen, options().stdin);
  assert.deepEqual(fake.duplications, [
    { access: PRIMARY_TOKEN_ACCESS, level: SECURITY_IMPERSONATION, type: TOKEN_PRIMARY },
  ]);
  assert.equal(PRIMARY_TOKEN_ACCESS, 0x18b);
  assert.equal(result!.code, 0);
  assert.equal(dec.decode(result!.stdout), '{"token":"t"}\n');
  assert.equal(dec.decode(result!.stderr), "warning: x\n");
  assertClean(fake);
});

Deno.test("runAsToken() starts the child inside a kill-on-close job (JOB_LIST: in it from its start)", async () => {
  const { fake, result, error } = await run({ program: () => ({ stdout: "ok" }) });
  assert.equal(error, undefined);
  assert.equal(dec.decode(result!.stdout), "ok");
  assert.equal(fake.jobs.length, 1);
  const job = fake.jobs[0];
  assert.equal(
    job.limitFlags,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
  );
  const l = fake.launches[0];
  assert.equal(l.jobList?.length, 1, "one job in PROC_THREAD_ATTRIBUTE_JOB_LIST");
  assert.deepEqual(l.process.jobsAtStart, [job.id], "in the job before its first instruction");
  assert.deepEqual(job.processes, [l.process]);
  assert.deepEqual(l.inherited, l.stdio, "the job handle is not inherited");
  assert.ok(!l.inheritableAtLaunch.includes(l.jobList![0]));
  // The job is set up before the child starts and ended and closed after it exited.
  const at = (c: string) => fake.calls.indexOf(c);
  assert.ok(at("CreateJobObjectW") >= 0);
  assert.ok(at("CreateJobObjectW") < at("SetInformationJobObject 9"));
  assert.ok(at("SetInformationJobObject 9") < at("CreateProcessAsUserW"));
  assert.ok(at("CreateProcessAsUserW") < at("TerminateJobObject 1"));
  assert.ok(at("TerminateJobObject 1") < at("CloseHandle job"));
  assert.ok(!fake.calls.some((c) => c.startsWith("TerminateProcess")));
  assertClean(fake);
});

Deno.test("runAsToken() ends a grandchild left running when the child exits; the child's output is whole", async () => {
  const opts = withGrandchild({ stdout: "x".repeat(3000), code: 0 });
  const t0 = performance.now();
  const { fake, result, error } = await run({ ...opts, pipeCapacity: 256 });
  assert.equal(error, undefined);
  assert.ok(performance.now() - t0 < 1000, "not held until the timeout by the grandchild");
  assert.equal(result!.code, 0, "the child's own exit code");
  assert.equal(dec.decode(result!.stdout), "x".repeat(3000));
  const g = opts.grandchild();
  assert.equal(g.alive, false);
  assert.equal(g.endedBy, "TerminateJobObject");
  assert.deepEqual(g.jobsAtStart, [fake.jobs[0].id], "the grandchild was in the child's job");
  assert.equal(fake.launches[0].terminated, false, "the child exited by itself");
  assertClean(fake);
});

Deno.test("runAsToken() with a grandchild holding the pipes: timeout, overrun and abort end the call at once, every handle closed", async () => {
  // With TerminateProcess alone the grandchild would keep stdout (and stdin) open: the reads
  // would not end and the call would wait out the kill grace with the read ends still open.
  const timeout = withGrandchild();
  let t0 = performance.now();
  const a = await run(
    { ...timeout, readsStdin: false, pipeCapacity: 16 },
    { timeoutMs: 50, stdin: new Uint8Array(10_000) }, // the stdin write blocks too
  );
  assert.match((a.error as Error).message, /did not finish within 50 ms/);
  assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`);
  assert.equal(timeout.grandchild().endedBy, "TerminateJobObject");
  assert.equal(a.fake.launches[0].exitCode, 1);
  assertClean(a.fake);

  const overrun = withGrandchild({ stdout: "x".repeat(5000) });
  t0 = performance.now();
  const b = await run({ ...overrun, pipeCapacity: 64 }, { maxOutput: 100 });
  assert.match((b.error as Error).message, /printed more than 100 bytes on stdout/);
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(overrun.grandchild().endedBy, "TerminateJobObject");
  assertClean(b.fake);

  const abort = withGrandchild();
  const fake = new FakeWindowsRunAs(abort);
  const controller = new AbortController();
  const reason = new Error("client went away");
  const p = runAsToken(fake, fake.userToken(), options({ signal: controller.signal }));
  await sleep(20);
  t0 = performance.now();
  controller.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(abort.grandchild().endedBy, "TerminateJobObject");
  assertClean(fake);
});

Deno.test("runAsToken() when TerminateJobObject fails: the child is terminated and closing the job ends the rest", async () => {
  const opts = withGrandchild();
  const t0 = performance.now();
  const { fake, error } = await run(
    { ...opts, failures: { TerminateJobObject: RunAsError.ERROR_ACCESS_DENIED } },
    { timeoutMs: 50 },
  );
  assert.match((error as Error).message, /did not finish within 50 ms/);
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(fake.launches[0].process.endedBy, "TerminateProcess");
  assert.equal(opts.grandchild().endedBy, "job closed", "KILL_ON_JOB_CLOSE");
  assertClean(fake);
});

Deno.test("the fake shows the gap the job closes: outside a job, TerminateProcess leaves the grandchild holding stdout", async () => {
  const opts = withGrandchild();
  const fake = new FakeWindowsRunAs({
    ...opts,
    failures: { TerminateJobObject: RunAsError.ERROR_ACCESS_DENIED },
  });
  // A runner without the job list, as before the job: the child starts outside it.
  const symbols = {
    advapi32: fake.advapi32,
    kernel32: {
      ...fake.kernel32,
      UpdateProcThreadAttribute: (
        ...a: Parameters<typeof fake.kernel32.UpdateProcThreadAttribute>
      ) =>
        a[2] === BigInt(PROC_THREAD_ATTRIBUTE_JOB_LIST) ? 1 : fake.kernel32
          .UpdateProcThreadAttribute(...a),
    },
  };
  const t0 = performance.now();
  const e = await runAsToken(symbols, fake.userToken(), options({ timeoutMs: 50 })).catch((
    e,
  ) => e);
  assert.match((e as Error).message, /did not finish within 50 ms/);
  assert.ok(performance.now() - t0 >= 2000, "the call waited out the kill grace");
  assert.deepEqual(fake.violations, ["the child started outside a job"]);
  const g = opts.grandchild();
  assert.equal(fake.launches[0].process.endedBy, "TerminateProcess");
  assert.equal(g.alive, true, "not in the job: closing the job did not end it");
  assert.ok(g.holds.some((h) => h.endsWith("write")));
  assert.deepEqual(
    fake.leaked().map((h) => h.replace(/ 0x.*/, "")),
    ["pipe2 read", "pipe3 read"],
    "the stdout and stderr read ends are still open",
  );
  g.exit();
  await sleep(0);
  assert.deepEqual(fake.leaked(), [], "closed once the grandchild let go of it");
});

Deno.test("runAsToken() lets the child inherit only its three pipe ends, through the handle list", async () => {
  const fake = new FakeWindowsRunAs({ program: () => ({ code: 3 }) });
  fake.strayInheritable(); // something else of the daemon's that is inheritable
  const result = await runAsToken(fake, fake.userToken(), options());
  assert.equal(result.code, 3);
  const l = fake.launches[0];
  assert.equal(l.inheritHandles, true);
  assert.deepEqual(l.handleList, l.stdio, "the list names stdin, stdout, stderr");
  assert.deepEqual(l.inherited, l.stdio, "the stray handle did not reach the child");
  assert.equal(l.inheritableAtLaunch.length, 4, "the three child ends and the stray one");
  for (const h of l.stdio) assert.ok(l.inheritableAtLaunch.includes(h));
  assertClean(fake);
});

Deno.test("runAsToken() returns large outputs whole and feeds a large stdin (pipes smaller than both)", async () => {
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const { fake, result, error } = await run(
    {
      pipeCapacity: 1000,
      program: (stdin) => ({ stdout: stdin, stderr: stdin.subarray(0, 70_000), code: 0 }),
    },
    { stdin: big },
  );
  assert.equal(error, undefined);
  assert.deepEqual(result!.stdout, big);
  assert.deepEqual(result!.stderr, big.subarray(0, 70_000));
  assertClean(fake);
});

Deno.test("runAsToken() with exactly maxOutput bytes succeeds; one more terminates the child", async () => {
  const ok = await run({ program: () => ({ stdout: "x".repeat(100) }) }, { maxOutput: 100 });
  assert.equal(ok.error, undefined);
  assert.equal(ok.result!.stdout.length, 100);
  assertClean(ok.fake);

  const over = await run(
    { pipeCapacity: 64, program: () => ({ stdout: "x".repeat(5000), code: 0 }) },
    { maxOutput: 100 },
  );
  assert.ok(over.error instanceof Error);
  assert.match(over.error.message, /printed more than 100 bytes on stdout and was terminated/);
  assert.equal(over.fake.launches[0].terminated, true);
  assertClean(over.fake);

  const stderr = await run({ program: () => ({ stderr: "e".repeat(101) }) }, { maxOutput: 100 });
  assert.match((stderr.error as Error).message, /on stderr/);
  assertClean(stderr.fake);
});

Deno.test("runAsToken() terminates a child that outlives timeoutMs", async () => {
  const { fake, error } = await run({ program: () => "hang" }, { timeoutMs: 50 });
  assert.ok(error instanceof Error);
  assert.equal(
    error.message,
    `${PROGRAM} did not finish within 50 ms and was terminated`,
  );
  assert.equal(fake.launches[0].terminated, true);
  assert.ok(fake.calls.includes("TerminateJobObject 1"));
  assert.equal(fake.launches[0].process.endedBy, "TerminateJobObject");
  assertClean(fake);
});

Deno.test("runAsToken() terminates a child that never reads its stdin nor exits (timeout)", async () => {
  const { fake, error } = await run(
    { readsStdin: false, pipeCapacity: 16, program: () => "hang" },
    { timeoutMs: 50, stdin: new Uint8Array(10_000) },
  );
  assert.match((error as Error).message, /did not finish within 50 ms/);
  assertClean(fake);
});

Deno.test("runAsToken() is fine when the child exits without reading stdin", async () => {
  const { fake, result, error } = await run(
    { readsStdin: false, pipeCapacity: 16, program: () => ({ stderr: "bad usage", code: 2 }) },
    { stdin: new Uint8Array(10_000) },
  );
  assert.equal(error, undefined);
  assert.equal(result!.code, 2);
  assert.equal(dec.decode(result!.stderr), "bad usage");
  assertClean(fake);
});

Deno.test("runAsToken() terminates the child when the signal aborts, and rejects with its reason", async () => {
  const fake = new FakeWindowsRunAs({ program: () => "hang" });
  const controller = new AbortController();
  const reason = new Error("client went away");
  const p = runAsToken(fake, fake.userToken(), options({ signal: controller.signal }));
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(fake.launches[0].terminated, true);
  assertClean(fake);

  const before = new FakeWindowsRunAs();
  await assert.rejects(
    runAsToken(before, before.userToken(), options({ signal: AbortSignal.abort() })),
  );
  assert.deepEqual(before.calls, [], "an aborted signal: nothing is called");
});

Deno.test("runAsToken() with an impersonation token given as primary fails naming CreateProcessAsUserW and 1314", async () => {
  // The fake answers as Windows would when the token was not duplicated into a primary one.
  const fake = new FakeWindowsRunAs();
  const symbols = {
    kernel32: fake.kernel32,
    advapi32: {
      ...fake.advapi32,
      DuplicateTokenEx: (
        ...a: Parameters<typeof fake.advapi32.DuplicateTokenEx>
      ) => fake.advapi32.DuplicateTokenEx(a[0], a[1], a[2], a[3], 2, /* TokenImpersonation */ a[5]),
    },
  };
  const e = await runAsToken(symbols, fake.userToken(), options()).catch((e) => e);
  assert.ok(e instanceof Win32CallError);
  assert.equal(e.call, "CreateProcessAsUserW");
  assert.equal(e.code, RunAsError.ERROR_PRIVILEGE_NOT_HELD);
  assert.equal(
    e.message,
    `Cannot run ${PROGRAM} as the client's user: CreateProcessAsUserW failed: ERROR_PRIVILEGE_NOT_HELD (1314)`,
  );
  assert.equal(fake.launches.length, 0);
  assertClean(fake);
});

Deno.test("runAsToken() closes every handle when any setup call fails, and names it", async () => {
  const cases: [string, number][] = [
    ["DuplicateTokenEx", RunAsError.ERROR_ACCESS_DENIED],
    ["CreateJobObjectW", RunAsError.ERROR_ACCESS_DENIED],
    ["SetInformationJobObject", RunAsError.ERROR_INVALID_PARAMETER],
    ["CreatePipe#1", RunAsError.ERROR_NOT_ENOUGH_MEMORY],
    ["CreatePipe#2", RunAsError.ERROR_NOT_ENOUGH_MEMORY],
    ["CreatePipe#3", RunAsError.ERROR_NOT_ENOUGH_MEMORY],
    ["SetHandleInformation#3", RunAsError.ERROR_INVALID_HANDLE],
    ["InitializeProcThreadAttributeList#2", RunAsError.ERROR_INVALID_PARAMETER],
    ["UpdateProcThreadAttribute#1", RunAsError.ERROR_INVALID_PARAMETER],
    ["UpdateProcThreadAttribute#2", RunAsError.ERROR_INVALID_PARAMETER],
    ["CreateProcessAsUserW", RunAsError.ERROR_FILE_NOT_FOUND],
    ["CreateProcessAsUserW", RunAsError.ERROR_DIRECTORY],
  ];
  for (const [call, code] of cases) {
    const { fake, error } = await run({ failures: { [call]: code } });
    assert.ok(error instanceof Win32CallError, call);
    assert.equal(error.call, call.replace(/#\d+$/, ""));
    assert.equal(error.code, code);
    assert.match(error.message, new RegExp(`${error.call} failed: \\w+ \\(${code}\\)$`));
    assert.equal(fake.launches.length, 0);
    assertClean(fake);
    if (call !== "DuplicateTokenEx" && call !== "CreateJobObjectW") {
      assert.equal(fake.jobs.length, 1);
      assert.ok(fake.calls.includes("CloseHandle job"), `${call}: the job is closed`);
    }
  }
});

Deno.test("runAsToken() refuses options Windows could not take before making any handle", async () => {
  const bad: Partial<RunAsTokenOptions>[] = [
    { program: "kconnect.exe" },
    { cwd: "relative\\dir" },
    { env: { "A=B": "x" } },
    { env: { Path: "a", PATH: "b" } },
    { args: ["nul\0"] },
    { maxOutput: -1 },
    { timeoutMs: 0 },
  ];
  for (const over of bad) {
    const { fake, error } = await run({}, over);
    assert.ok(error instanceof TypeError || error instanceof RangeError, JSON.stringify(over));
    assert.deepEqual(fake.calls, []);
  }
});

Deno.test("runAsToken() reads no worker-thread last error: a pipe at end of file is not an error", async () => {
  // The fake keeps worker-thread errors (ERROR_BROKEN_PIPE at every end of file) away from
  // GetLastError, as Windows does; a result still comes back and nothing else is blamed.
  const { fake, result } = await run({ program: () => ({ stdout: "ok" }) });
  assert.equal(dec.decode(result!.stdout), "ok");
  assert.equal(fake.workerLastError, RunAsError.ERROR_BROKEN_PIPE);
  assertClean(fake);
});

Deno.test("openWindowsRunAs() says it needs Windows elsewhere", () => {
  if (Deno.build.os === "windows") return;
  assert.throws(() => openWindowsRunAs(), /needs Windows; this is /);
});
