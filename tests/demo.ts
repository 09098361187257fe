// deno-lint-ignore-file no-console
/**
 * The main job, end to end on one machine (`deno task demo`, as root; `bash scripts/demo.sh`
 * installs what it needs first): a test cluster made of network namespaces (an API server
 * stand-in, a "cluster" with pods, services, cluster DNS and the traffic manager, and a "laptop"
 * that can reach only the API server), then `kconnect up --dns resolv.conf` on the laptop,
 * programs on the laptop using the cluster's names (`curl http://web.default/`, `getent hosts
 * web`, redis and UDP by name), then `kconnect down`, and everything removed again.
 *
 * Every command is printed with its output, as on a terminal, and checked: the demo stops at
 * the first step that does not do what it should and exits 1. Whatever happens (a failed step,
 * Ctrl-C, SIGTERM) the namespaces, with kconnect's TUN inside, their `/etc/netns` entries, the
 * state directory and the scratch files are removed, and the demo checks that they are gone.
 *
 * The laptop namespace's `/etc/resolv.conf` is its own (`ip netns exec` bind-mounts
 * `/etc/netns/<ns>/resolv.conf` over it), so kconnect rewrites that file, never the host's.
 *
 * @module
 */
import { IPS, SERVICE_IPS, TestCluster, UPSTREAM_IPS } from "./cluster/cluster.ts";
import type { Netns } from "./_netns.ts";
import { kconnect, removeTestStateDir, startUp, testStateDir } from "./_up.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Where the demo's lines go. Default `console.log`. */
  print?: (line: string) => void;
  /**
   * Aborting it (Ctrl-C) stops the demo before its next command (a running command is
   * killed); everything is still removed, and `runDemo` rejects with {@linkcode DemoInterrupted}.
   */
  signal?: AbortSignal;
}

/** A step of the demo did not do what it should. */
export class DemoFailure extends Error {
  override name = "DemoFailure";
}

/** The demo was stopped through {@linkcode DemoOptions.signal}. */
export class DemoInterrupted extends Error {
  override name = "DemoInterrupted";
}

/** What a command is expected to do. */
interface Expect {
  /** Exit status 0 (default), or any other. */
  ok?: boolean;
  /** Its output (stdout and stderr) matches this. */
  out?: RegExp;
}

/** What the demo made, to check afterwards that it is all gone. */
interface Made {
  namespaces: string[];
  paths: string[];
}

const COMMAND_TIMEOUT_MS = 20_000;

/**
 * Runs the demo: prints each step, command and output; resolves when every step did what it
 * should and nothing is left behind, rejects with {@linkcode DemoFailure} (or
 * {@linkcode DemoInterrupted}) otherwise, after removing everything.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const print = options.print ?? ((line: string) => console.log(line));
  const made: Made = { namespaces: [], paths: [] };
  let failure: unknown = null;
  try {
    await demo(print, options.signal, made);
  } catch (err) {
    failure = err;
  }
  const left = await leftovers(made);
  if (failure === null && left.length === 0) {
    print(`nothing left behind: ${made.namespaces.join(", ")} and their files are gone`);
    return;
  }
  if (left.length) print(`✗ left behind: ${left.join(", ")}`);
  else if (made.namespaces.length) print("cleaned up: nothing left behind");
  throw failure ?? new DemoFailure(`left behind: ${left.join(", ")}`);
}

async function demo(
  print: (line: string) => void,
  signal: AbortSignal | undefined,
  made: Made,
): Promise<void> {
  let stepNo = 0;
  const step = (title: string) => {
    checkSignal(signal);
    print("");
    print(`== ${++stepNo}. ${title}`);
  };

  step("Starting the test cluster");
  print("network namespaces: a laptop that reaches only the API server; the API server stand-in;");
  print("the cluster with pods, services, cluster DNS (10.96.0.10) and kconnect's traffic manager");
  await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
  const laptop = cluster.laptop;
  // Disposed after `up` and before the cluster: the state directory goes even when `up` failed.
  await using _stateDir = { [Symbol.asyncDispose]: () => removeTestStateDir(laptop) };
  made.namespaces.push(laptop.name, cluster.apiserverNs.name, cluster.clusterNs.name);
  made.paths.push(
    ...made.namespaces.map((n) => `/etc/netns/${n}`),
    cluster.dir,
    testStateDir(laptop),
  );
  // `down` asks a daemon first: point it at one that does not exist, never the host's.
  const noDaemon = `${cluster.dir}/no-daemon.sock`;
  print(`API server ${cluster.apiUrl}; kubeconfig ${cluster.kubeconfig}`);
  print(
    `services in namespace default: web ${SERVICE_IPS.web}:80 (HTTP), redis ` +
      `${SERVICE_IPS.redis}:6379, echo ${SERVICE_IPS.echo}:7 (TCP and UDP), db (headless)`,
  );
  print(
    `commands below run in the laptop namespace (${laptop.name}); "kconnect" is ` +
      `deno run -A main.ts`,
  );

  const sh = (command: string, expect: Expect = {}) =>
    check(print, signal, command, expect, () => shell(laptop, command, signal));
  const kc = (args: string[], expect: Expect = {}) =>
    check(print, signal, `kconnect ${args.join(" ")}`, expect, () => kconnect(laptop, args));

  step("Before kconnect: the laptop knows no cluster names and reaches no cluster IPs");
  const resolvConf = await sh("cat /etc/resolv.conf", { out: /^nameserver /m });
  await sh("curl -sS -m 5 http://web.default/", { ok: false, out: /resolve host/ });
  await sh(`curl -sS -m 5 http://${SERVICE_IPS.web}/`, { ok: false });
  print("(the laptop has no route to the cluster's networks)");

  const upArgs = [
    "up",
    "--foreground",
    "--kubeconfig",
    cluster.kubeconfig,
    "--dns",
    "resolv.conf",
    "--state-dir",
    testStateDir(laptop),
  ];
  step("sudo kconnect up --dns resolv.conf (in the foreground, until kconnect down)");
  print(`$ kconnect ${upArgs.join(" ")}`);
  await using up = await startUp(laptop, upArgs.slice(1));
  print(up.out.text());
  if (up.err.text().trim()) print(up.err.text());
  await sh("cat /etc/resolv.conf", { out: /^search default\.svc\.cluster\.local /m });

  step("Cluster names on the laptop: any program, through the system resolver");
  const webName = new RegExp(
    `^${re(SERVICE_IPS.web)}\\s+web\\.default\\.svc\\.cluster\\.local$`,
    "m",
  );
  await sh("curl -sS -m 5 http://web.default/", { out: /^hello from web$/m });
  await sh("getent hosts web.default.svc.cluster.local", { out: webName });
  await sh("getent hosts web", { out: webName });
  await sh("curl -sS -m 5 http://web/", { out: /^hello from web$/m });
  await sh("redis-cli -h redis SET greeting 'hi from the laptop'", { out: /^OK$/m });
  await sh("redis-cli -h redis.default GET greeting", { out: /^hi from the laptop$/m });
  await sh("echo 'ping over UDP' | socat -t 2 - UDP:echo.default:7", {
    out: /^ping over UDP$/m,
  });
  const dbLine = (ip: string) => `(?=[\\s\\S]*^${re(ip)}\\s+db\\.default\\b)`;
  await sh("getent hosts db.default", {
    out: new RegExp(`^${dbLine(IPS.db0)}${dbLine(IPS.db1)}`, "m"),
  });
  print("(db is a headless service: its name has the IP of each of its pods)");
  await sh("getent hosts www.example.com", {
    out: new RegExp(
      `^(${re(UPSTREAM_IPS.www)}|${re(UPSTREAM_IPS.wwwV6)})\\s+www\\.example\\.com$`,
      "m",
    ),
  });
  print("(names outside the cluster still come from the laptop's own DNS server)");

  step("Pod IPs, and a closed port refused at once as on a real network");
  await sh(`curl -sS -m 5 http://${IPS.web}:8080/`, { out: /^hello from web$/m });
  await sh(`ncat -w 5 ${IPS.web} 9 </dev/null`, { ok: false, out: /Connection refused/ });

  step("sudo kconnect down");
  await kc(["down", "--state-dir", testStateDir(laptop), "--socket", noDaemon], {
    out: /^disconnected from context "test" \(kconnect up, pid \d+\)$/m,
  });
  const code = await up.stop();
  print(`(kconnect up exited with status ${code}; its last line: ${up.out.lines.at(-1)})`);
  if (code !== 0) throw new DemoFailure(`kconnect up exited with ${code}:\n${up.err.text()}`);
  await sh("cat /etc/resolv.conf", { out: new RegExp(`^${re(resolvConf)}$`) });
  print("(the same as before kconnect up)");
  await sh("getent hosts web.default.svc.cluster.local", { ok: false, out: /^$/ });
  print("(not found: cluster names went with kconnect)");
  await sh("ip link show kconnect0", { ok: false, out: /does not exist/ });
  await sh("ip route", { out: /^(?![\s\S]*kconnect0)/ });

  step("Removing the test cluster");
  await up[Symbol.asyncDispose]();
  await cluster[Symbol.asyncDispose]();
}

/** Runs one command, prints it and its output, and checks it against `expect`. */
async function check(
  print: (line: string) => void,
  signal: AbortSignal | undefined,
  command: string,
  expect: Expect,
  run: () => Promise<{ code: number; stdout: string; stderr: string }>,
): Promise<string> {
  checkSignal(signal);
  print(`$ ${command}`);
  const r = await run();
  checkSignal(signal);
  const out = (r.stdout + r.stderr).replace(/\n+$/, "");
  if (out) print(out);
  if (r.code !== 0) print(`(exit status ${r.code})`);
  const okWanted = expect.ok ?? true;
  if ((r.code === 0) !== okWanted || (expect.out && !expect.out.test(out))) {
    const wanted = [
      okWanted ? "exit status 0" : "a non-zero exit status",
      ...(expect.out ? [`output matching ${expect.out}`] : []),
    ].join(" and ");
    print(`✗ expected ${wanted}`);
    throw new DemoFailure(`\`${command}\`: expected ${wanted}; got status ${r.code}:\n${out}`);
  }
  return out;
}

/** Runs `command` with `sh -c` in `ns`, killed after a while or when `signal` aborts. */
function shell(ns: Netns, command: string, signal: AbortSignal | undefined) {
  const timeout = AbortSignal.timeout(COMMAND_TIMEOUT_MS);
  return ns.exec(["sh", "-c", command], {
    check: false,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DemoInterrupted("interrupted");
}

/** `s` as a regular expression that matches it literally. */
function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What the demo made that is still there. */
async function leftovers(made: Made): Promise<string[]> {
  const left: string[] = [];
  if (made.namespaces.length) {
    const list = await new Deno.Command("ip", { args: ["netns", "list"] }).output();
    const names = new TextDecoder().decode(list.stdout).split("\n").map((l) => l.split(" ")[0]);
    left.push(...made.namespaces.filter((n) => names.includes(n)).map((n) => `namespace ${n}`));
  }
  for (const path of made.paths) {
    try {
      await Deno.lstat(path);
      left.push(path);
    } catch { /* gone */ }
  }
  return left;
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("the demo needs root: it creates network namespaces and a TUN device");
    return 1;
  }
  const stop = new AbortController();
  // Exit status 128 + the signal's number, as a shell reports a command a signal ended.
  const signals: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
  let interrupted = 0;
  const handlers = signals.map(([s, code]) => {
    const h = () => {
      if (!stop.signal.aborted) console.log("\ninterrupted: removing everything the demo made…");
      interrupted ||= code;
      stop.abort();
    };
    Deno.addSignalListener(s, h);
    return [s, h] as const;
  });
  try {
    await runDemo({ signal: stop.signal });
    console.log("\ndemo finished: every step did what it should");
    return 0;
  } catch (err) {
    if (err instanceof DemoInterrupted || interrupted) return interrupted || 130;
    console.log(`\ndemo FAILED: ${err instanceof DemoFailure ? err.message : err}`);
    return 1;
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

if (import.meta.main) Deno.exit(await main());
