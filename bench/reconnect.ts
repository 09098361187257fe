// deno-lint-ignore-file no-console
/**
 * Reconnect and resume timing on the test cluster (tests/cluster), the durations
 * tests/reconnect_test.ts and tests/resume_test.ts only bound generously (they check that things
 * happen, not how fast, so a busy CI machine cannot fail them). `kconnect up` in the laptop
 * namespace, then, `--runs` times each:
 *
 * Resumption off (`--resume-grace 0`; flows end when the tunnel drops), with a long-lived TCP
 * flow through the tunnel (redis-cli SUBSCRIBE, confirmed by redis):
 *
 * 1. API server restart: seconds from stopping the API server (SIGTERM) until the open flow
 *    ends, and from starting it again until a new connection (redis PING) works;
 * 2. black hole: iptables drops the laptop ↔ API server traffic silently; seconds until kconnect
 *    logs `tunnel transport closed (keepalive-timeout)` (the heartbeat is every 3 s, the timeout
 *    6 s: about 9 s is the design), and from lifting the rules until a new connection works.
 *
 * Resumption on (the default), with a held connection (interactive redis-cli, one connection):
 *
 * 3. black hole of `--hole` seconds (default 20): seconds until kconnect logs that it holds the
 *    flows (`tunnel transport lost … holding …`), and from lifting the rules until the held
 *    connection answers a PING sent just before, until kconnect logs `tunnel resumed`, and until
 *    a new connection works;
 * 4. API server restart: from starting the API server again until the held connection answers
 *    a PING sent while it was down, and until a new connection works.
 *
 * Memory of detached sessions (resumption on, through the daemon so that `kconnect status --json`
 * answers; bench/_held_memory.ts), each run:
 *
 * 5. an idle redis connection held across a black hole, then
 * 6. a fast 256 MiB download (no rate limit) in flight when the path goes dark:
 *    the manager's `session … detached (…): holding N streams, B bytes` lines (it logs at info
 *    here), `status --json` `session.resume` (held streams / flows / bytes, retained bytes and
 *    the retain limit) once every session is detached on both sides, and VmRSS of the manager
 *    and of the daemon before, when all are detached, at most during the hole, and after.
 *    The hole lasts at least `--hole` seconds and until the manager too detached every session
 *    (its keepalive, 15 s + 10 s, notices a black hole later than the client's).
 *
 * Prints a table per mode (min / median / max per timing figure; memory figures per run);
 * asserts nothing. About two minutes with `--runs 1` (five with 3). `--only timing` or `--only memory` runs
 * one part. A kconnect without `--resume-grace` (before issue 14) gets the first table only.
 *
 *   sudo deno run -A --unstable-net bench/reconnect.ts [--runs 3] [--hole 20] [--only memory]
 *
 * @module
 */
import { TestCluster } from "../tests/cluster/cluster.ts";
import { startUp } from "../tests/_up.ts";
import { DENO_RUN, ROOT } from "../tests/_dataplane.ts";
import { blackHole } from "../tests/_outage.ts";
import { lineAfter, redisPing, RedisSession, sleep, Subscriber } from "../tests/_flows.ts";
import { type HeldCase, type HeldMemory, measureHeldMemory } from "./_held_memory.ts";

const arg = (name: string, d: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : d;
};
const RUNS = arg("--runs", 3);
const HOLE_S = arg("--hole", 20);
const LIMIT_S = 120;
const onlyAt = Deno.args.indexOf("--only");
const ONLY = onlyAt >= 0 ? Deno.args[onlyAt + 1] : null;
if (ONLY !== null && ONLY !== "timing" && ONLY !== "memory") {
  throw new Error(`--only ${ONLY}: expected timing or memory`);
}
const TIMING = ONLY !== "memory";
const T0 = performance.now();
/** A progress line, with the seconds since the start. */
const say = (line: string) =>
  console.log(`[${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${line}`);

/** Seconds from `t0` (a `performance.now()`) until `ok()` holds (polled every 50 ms). */
async function secondsSince(
  t0: number,
  ok: () => Promise<boolean>,
  what: string,
): Promise<number> {
  while (performance.now() - t0 < LIMIT_S * 1000) {
    if (await ok()) return (performance.now() - t0) / 1000;
    await sleep(50);
  }
  throw new Error(`${what} did not happen within ${LIMIT_S} s`);
}

/** Whether this kconnect has `up --resume-grace` (resumable sessions, issue 14). */
async function hasResumeGrace(): Promise<boolean> {
  const [deno, ...lead] = DENO_RUN;
  const out = await new Deno.Command(deno, {
    args: [...lead, "-A", `${ROOT}main.ts`, "up", "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).includes("--resume-grace");
}

const HOLDING = /tunnel transport lost .*holding/;
const RESUMED = /tunnel resumed/;

const off = {
  flowEnds: [] as number[],
  backAfterRestart: [] as number[],
  blackHoleNoticed: [] as number[],
  backAfterBlackHole: [] as number[],
};
const on = {
  holdNoticed: [] as number[],
  heldAnswersAfterHole: [] as number[],
  resumedLoggedAfterHole: [] as number[],
  newWorksAfterHole: [] as number[],
  heldAnswersAfterRestart: [] as number[],
  newWorksAfterRestart: [] as number[],
};

const resumable = await hasResumeGrace();
// The manager logs at info: its `session … detached …: holding N streams, B bytes` lines.
await using cluster = await TestCluster.start({
  k8sVersion: "1.33",
  managerEnv: { KCONNECT_LOG_LEVEL: "info" },
});
say("test cluster started");
const laptop = cluster.laptop;
const upArgs = ["--kubeconfig", cluster.kubeconfig, "--log-level", "info"];

if (TIMING) {
  await using up = await startUp(laptop, [
    ...upArgs,
    ...(resumable ? ["--resume-grace", "0"] : []),
  ]);
  await secondsSince(performance.now(), () => redisPing(laptop), "the first PING");

  for (let run = 0; run < RUNS; run++) {
    await using flow = await Subscriber.open(laptop);
    const t0 = performance.now();
    await cluster.stopApiServer();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const at = await Promise.race([
      flow.ended,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error("the open flow did not end")), LIMIT_S * 1000)
      ),
    ]);
    clearTimeout(timer);
    off.flowEnds.push((at - t0) / 1000);
    await cluster.startApiServer();
    off.backAfterRestart.push(
      await secondsSince(performance.now(), () => redisPing(laptop), "PING after restart"),
    );

    const mark = up.err.lines.length;
    {
      await using hole = await blackHole(laptop);
      await lineAfter(up.err, mark, /transport closed \(keepalive-timeout\)/, LIMIT_S * 1000);
      off.blackHoleNoticed.push((performance.now() - hole.since) / 1000);
      const lifted = await hole.lift();
      off.backAfterBlackHole.push(
        await secondsSince(lifted, () => redisPing(laptop), "PING after the black hole"),
      );
    }
    say(`resumption off: run ${run + 1}/${RUNS} done`);
  }
}

if (TIMING && resumable) {
  await using up = await startUp(laptop, upArgs);
  await secondsSince(performance.now(), () => redisPing(laptop), "the first PING");

  for (let run = 0; run < RUNS; run++) {
    await using held = await RedisSession.open(laptop);
    const mark = up.err.lines.length;
    {
      await using hole = await blackHole(laptop);
      await lineAfter(up.err, mark, HOLDING, LIMIT_S * 1000);
      on.holdNoticed.push((performance.now() - hole.since) / 1000);
      await sleep(Math.max(0, HOLE_S * 1000 - (performance.now() - hole.since)));
      await held.send("PING");
      const lifted = await hole.lift();
      const [answered, logged, fresh] = await Promise.all([
        held.reply(LIMIT_S * 1000).then(() => (performance.now() - lifted) / 1000),
        lineAfter(up.err, mark, RESUMED, LIMIT_S * 1000).then(() =>
          (performance.now() - lifted) / 1000
        ),
        secondsSince(lifted, () => redisPing(laptop), "a new connection after the black hole"),
      ]);
      on.heldAnswersAfterHole.push(answered);
      on.resumedLoggedAfterHole.push(logged);
      on.newWorksAfterHole.push(fresh);
    }

    await cluster.stopApiServer();
    await held.send("PING");
    await cluster.startApiServer();
    const started = performance.now();
    const [answered, fresh] = await Promise.all([
      held.reply(LIMIT_S * 1000).then(() => (performance.now() - started) / 1000),
      secondsSince(started, () => redisPing(laptop), "a new connection after the restart"),
    ]);
    on.heldAnswersAfterRestart.push(answered);
    on.newWorksAfterRestart.push(fresh);
    say(`resumption on: run ${run + 1}/${RUNS} done`);
  }
}

let memory: HeldMemory | null = null;
if (ONLY !== "timing" && resumable) {
  memory = await measureHeldMemory(cluster, {
    runs: RUNS,
    holeS: HOLE_S,
    progress: say,
  });
}

const fmt = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return `${s[0].toFixed(2)} / ${s[Math.floor(s.length / 2)].toFixed(2)} / ${
    s[s.length - 1].toFixed(2)
  }`;
};
if (TIMING) printTiming();
if (memory !== null) printMemory(memory);
else if (ONLY !== "timing" && !resumable) {
  console.log("\n(this kconnect has no --resume-grace: no memory figures)");
}

function printTiming() {
  console.log(
    `\n## Reconnecting, resumption off (${RUNS} runs; seconds, min / median / max)\n`,
  );
  console.log("| Event | Seconds |");
  console.log("| --- | --- |");
  console.log(`| open flow ends after the API server stops | ${fmt(off.flowEnds)} |`);
  console.log(`| new connection works after it starts again | ${fmt(off.backAfterRestart)} |`);
  console.log(`| black hole noticed (keepalive-timeout) | ${fmt(off.blackHoleNoticed)} |`);
  console.log(`| new connection works after it is lifted | ${fmt(off.backAfterBlackHole)} |`);
  if (resumable) {
    console.log(
      `\n## Resuming, resumption on (${RUNS} runs, ${HOLE_S} s black hole; seconds, min / median / max)\n`,
    );
    console.log("| Event | Seconds |");
    console.log("| --- | --- |");
    console.log(`| black hole noticed, flows held | ${fmt(on.holdNoticed)} |`);
    console.log(
      `| held connection answers after the black hole is lifted | ${
        fmt(on.heldAnswersAfterHole)
      } |`,
    );
    console.log(
      `| "tunnel resumed" logged after it is lifted | ${fmt(on.resumedLoggedAfterHole)} |`,
    );
    console.log(`| new connection works after it is lifted | ${fmt(on.newWorksAfterHole)} |`);
    console.log(
      `| held connection answers after the API server starts again | ${
        fmt(on.heldAnswersAfterRestart)
      } |`,
    );
    console.log(`| new connection works after it starts again | ${fmt(on.newWorksAfterRestart)} |`);
  } else {
    console.log("\n(this kconnect has no --resume-grace: no resumption figures)");
  }
}

function printMemory(m: HeldMemory) {
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const kib = (k: number) => Number.isFinite(k) ? (k / 1024).toFixed(1) : "?";
  const bytes = (b: number) => `${b} (${mib(b)} MiB)`;
  const sec = (s: number | null) => s === null ? "never" : s.toFixed(1);
  const runOf = new Map<HeldCase, number>();
  const seen = new Map<string, number>();
  for (const c of m.cases) {
    seen.set(c.label, (seen.get(c.label) ?? 0) + 1);
    runOf.set(c, seen.get(c.label)!);
  }
  console.log(
    `\n## Detached sessions: what is held (resumption on, through the daemon; black hole of at ` +
      `least ${HOLE_S} s and until every session is detached on both sides)\n`,
  );
  console.log(
    "| Flows open | Run | Hole (s) | Client detached (s into the hole: flows held, per session) " +
      "| Manager detached (s into the hole: reason, streams, bytes, per session) " +
      "| Manager holds, total | `status` held: streams / flows / bytes " +
      "| `status` retained / retain limit | Manager gave up | Resumed after lift (s) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const c of m.cases) {
    const client = c.clientDetached.map((d) => `${d.atS.toFixed(1)}: ${d.flows}`).join("; ");
    const mgr = c.managerDetached.map((d) =>
      `${d.atS.toFixed(1)}: ${d.reason}, ${d.streams}, ${bytes(d.bytes)}`
    ).join("; ");
    const total = c.managerDetached.reduce((n, d) => n + d.bytes, 0);
    const st = c.status;
    const held = st === null
      ? "no answer"
      : st.held === null
      ? `nothing held (state ${st.state})`
      : `${st.held.streams} / ${st.held.flows} / ${bytes(st.held.bytes)} (at ${
        st.atS.toFixed(1)
      } s, ${st.state})`;
    const retained = st === null ? "?" : `${bytes(st.retainedBytes)} / ${bytes(st.retainLimit)}`;
    console.log(
      `| ${c.label} | ${runOf.get(c)} | ${c.holeS.toFixed(1)} | ${client || "none"} | ${
        mgr || "none"
      } | ${bytes(total)} | ${held} | ${retained} | ${c.managerEnded.join("; ") || "no"} | ${
        sec(c.resumedS)
      } |`,
    );
  }
  console.log(
    `\n## RSS while detached (MiB, VmRSS; manager pid ${m.managerPid}, daemon pid ${m.clientPid})\n`,
  );
  console.log(
    "| Flows open | Run | Process | Before the hole | All detached | Most during the hole " +
      "| After (flows back) | VmHWM after |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const c of m.cases) {
    for (const [name, p] of [["manager", c.manager], ["kconnect (daemon)", c.client]] as const) {
      console.log(
        `| ${c.label} | ${runOf.get(c)} | ${name} | ${kib(p.before)} | ${kib(p.detached)} | ${
          kib(p.maxInHole)
        } | ${kib(p.after)} | ${kib(p.hwmAfter)} |`,
      );
    }
  }
  const downloads = m.cases.filter((c) => c.download !== undefined);
  if (downloads.length > 0) {
    console.log("\n## The download across the hole\n");
    console.log(
      "| Run | Bytes when the path went dark | Bytes when it was lifted " +
        "| Finished after the lift (s) | curl exit | Every byte right |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const c of downloads) {
      const d = c.download!;
      console.log(
        `| ${runOf.get(c)} | ${bytes(d.bytesAtHole)} | ${bytes(d.bytesAtLift)} | ${
          sec(d.doneS)
        } | ${d.code ?? "?"} | ${d.intact === null ? "?" : d.intact ? "yes" : "no"} |`,
      );
    }
  }
}
