// deno-lint-ignore-file no-console
/**
 * Reconnect timing on the test cluster (tests/cluster), the durations tests/reconnect_test.ts
 * only bounds generously (it checks that things happen, not how fast, so a busy CI machine
 * cannot fail it). `kconnect up` in the laptop namespace, a long-lived TCP flow through it
 * (redis-cli SUBSCRIBE, confirmed by redis), then, `--runs` times each:
 *
 * 1. API server restart: seconds from stopping the API server (SIGTERM) until the open flow
 *    ends, and from starting it again until a new connection (redis PING) works;
 * 2. black hole: iptables drops the laptop ↔ API server traffic silently; seconds until kconnect
 *    logs `tunnel transport closed (keepalive-timeout)` (the heartbeat is every 3 s, the timeout
 *    6 s: about 9 s is the design), and from lifting the rules until a new connection works
 *    (backoff 250 ms to 3 s).
 *
 * Prints a table (min / median / max per figure); asserts nothing. About two minutes.
 *
 *   sudo deno run -A --unstable-net bench/reconnect.ts [--runs 3]
 *
 * @module
 */
import { TestCluster } from "../tests/cluster/cluster.ts";
import type { Netns } from "../tests/_netns.ts";
import { LineWatcher } from "../tests/_lines.ts";
import { startUp } from "../tests/_up.ts";

const i = Deno.args.indexOf("--runs");
const RUNS = i >= 0 ? Number(Deno.args[i + 1]) : 3;
const LIMIT_S = 120;

async function ping(ns: Netns): Promise<boolean> {
  const r = await ns.exec(["timeout", "3", "redis-cli", "-h", "10.96.0.21", "PING"], {
    check: false,
  });
  return r.stdout.trim() === "PONG";
}

/** Seconds from now until `ok()` holds (polled every 50 ms); throws after LIMIT_S. */
async function secondsUntil(ok: () => Promise<boolean>, what: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < LIMIT_S * 1000) {
    if (await ok()) return (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen within ${LIMIT_S} s`);
}

/** A subscriber through the tunnel, once redis has confirmed it. */
async function openFlow(ns: Netns): Promise<Deno.ChildProcess> {
  const child = ns.spawn(["redis-cli", "-h", "10.96.0.21", "SUBSCRIBE", "nothing"], {
    stdout: "piped",
    stderr: "null",
  });
  await new LineWatcher(child.stdout).waitFor(/^1$/, 30_000);
  return child;
}

const results = {
  flowEnds: [] as number[],
  backAfterRestart: [] as number[],
  blackHoleNoticed: [] as number[],
  backAfterBlackHole: [] as number[],
};

await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
const laptop = cluster.laptop;
await using up = await startUp(laptop, [
  "--kubeconfig",
  cluster.kubeconfig,
  "--log-level",
  "info",
]);
await secondsUntil(() => ping(laptop), "the first PING");

for (let run = 0; run < RUNS; run++) {
  const flow = await openFlow(laptop);
  const ended = flow.status.then(() => performance.now());
  const t0 = performance.now();
  await cluster.stopApiServer();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const at = await Promise.race([
    ended,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error("the open flow did not end")), LIMIT_S * 1000)
    ),
  ]);
  clearTimeout(timer);
  results.flowEnds.push((at - t0) / 1000);
  await cluster.startApiServer();
  results.backAfterRestart.push(await secondsUntil(() => ping(laptop), "PING after restart"));

  const rules = [
    ["OUTPUT", "-d", "100.64.0.1", "-p", "tcp", "--dport", "6443", "-j", "DROP"],
    ["INPUT", "-s", "100.64.0.1", "-p", "tcp", "--sport", "6443", "-j", "DROP"],
  ];
  const mark = up.err.lines.length;
  for (const r of rules) await laptop.exec(["iptables", "-A", ...r]);
  try {
    results.blackHoleNoticed.push(
      await secondsUntil(
        () =>
          Promise.resolve(
            up.err.lines.slice(mark).some((l) => /transport closed \(keepalive-timeout\)/.test(l)),
          ),
        "noticing the black hole",
      ),
    );
  } finally {
    for (const r of rules) await laptop.exec(["iptables", "-D", ...r], { check: false });
  }
  results.backAfterBlackHole.push(await secondsUntil(() => ping(laptop), "PING after it"));
  console.log(`run ${run + 1}/${RUNS} done`);
}

const fmt = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return `${s[0].toFixed(2)} / ${s[Math.floor(s.length / 2)].toFixed(2)} / ${
    s[s.length - 1].toFixed(2)
  }`;
};
console.log(`\n## Reconnecting (${RUNS} runs; seconds, min / median / max)\n`);
console.log("| Event | Seconds |");
console.log("| --- | --- |");
console.log(`| open flow ends after the API server stops | ${fmt(results.flowEnds)} |`);
console.log(`| new connection works after it starts again | ${fmt(results.backAfterRestart)} |`);
console.log(`| black hole noticed (keepalive-timeout) | ${fmt(results.blackHoleNoticed)} |`);
console.log(`| new connection works after it is lifted | ${fmt(results.backAfterBlackHole)} |`);
