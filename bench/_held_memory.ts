/**
 * Memory of detached sessions (bench/reconnect.ts `--only memory`): what the traffic manager and
 * the laptop's kconnect hold while the tunnel is black-holed, read three ways:
 *
 * - the manager's log (at level info): `session … detached (…): holding N streams, B bytes, …`,
 *   one line per session (kept plus buffered bytes, `src/tunnel/registry.ts`), and `session …
 *   ended: …` when it gives one up;
 * - `kconnect status --json` through the daemon (the foreground `up` has no status socket):
 *   `session.resume.held` (streams, flows, bytes of the detached sessions) and `retainedBytes`
 *   / `retainLimit`, and the daemon's log lines `tunnel transport lost …; holding N flows`;
 * - VmRSS (and VmHWM) in `/proc/<pid>/status` of the manager process and of the daemon (the
 *   process that runs the connection: TUN, stack, sessions).
 *
 * Each case: flows open, RSS sampled, black hole (tests/_outage.ts) for at least `holeS` seconds
 * and until every session the client held was also detached on the manager (at most
 * {@linkcode MAX_HOLE_S}), RSS sampled every 250 ms meanwhile and the status asked once all are
 * detached; lifted; RSS again once the flows are back (the download finished). Measures only.
 *
 * @module
 */
import type { TestCluster } from "../tests/cluster/cluster.ts";
import { blackHole } from "../tests/_outage.ts";
import { daemonPaths, kconnect } from "../tests/_up.ts";
import { Download, RedisSession, sleep, within } from "../tests/_flows.ts";

/** The longest a black hole here lasts, seconds (the manager's keepalive notices within ~25 s). */
export const MAX_HOLE_S = 60;
/** Size of the download in flight in the second case. */
export const DOWNLOAD_BYTES = 256 << 20;
/** Bytes the download has before the path goes dark (well under way, windows open). */
const DOWNLOAD_HEAD = 24 << 20;
/** curl's `--limit-rate` for it: far above what the path carries, i.e. none. */
const DOWNLOAD_RATE = "4G";

/** VmRSS and VmHWM of a process, KiB. */
export interface Mem {
  rss: number;
  hwm: number;
}

/** Reads VmRSS and VmHWM from `/proc/<pid>/status`; null when the process is gone. */
export async function memOf(pid: number): Promise<Mem | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

/**
 * The deno process behind `pid`: `ip netns exec` replaces itself with the command, but should
 * `pid` still be a wrapper (`ip`, `sh`), its only child.
 */
async function denoPid(pid: number): Promise<number> {
  for (let hops = 0; hops < 3; hops++) {
    const exe = await Deno.readLink(`/proc/${pid}/exe`).catch(() => "");
    if (/deno/.test(exe.split("/").pop() ?? "")) return pid;
    const children = (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => ""))
      .trim().split(/\s+/).filter((s) => s !== "");
    if (children.length !== 1) return pid;
    pid = Number(children[0]);
  }
  return pid;
}

/** RSS of one process at the points of a case, KiB. */
export interface RssPhases {
  before: number;
  /** When every session was detached on both sides (or at the end of the hole). */
  detached: number;
  /** The most seen from the start of the black hole until it was lifted. */
  maxInHole: number;
  /** Once the flows were back (the download finished). */
  after: number;
  /** VmHWM then: the peak over the process's life so far. */
  hwmAfter: number;
}

/** A manager log line `session … detached (…): holding N streams, B bytes, …`. */
export interface ManagerDetach {
  id: string;
  reason: string;
  streams: number;
  bytes: number;
  /** Seconds from the start of the black hole until the line was seen (past `holeS`: after). */
  atS: number;
}

/** What one case measured. */
export interface HeldCase {
  label: string;
  holeS: number;
  /** The client's `tunnel transport lost (…); holding N flows` lines, seconds into the hole. */
  clientDetached: { reason: string; flows: number; atS: number }[];
  managerDetached: ManagerDetach[];
  /** Manager lines `session … ended: …` (given up: grace over, cap) during the case. */
  managerEnded: string[];
  /** `status --json` `session.resume` once all were detached (null: not asked or no answer). */
  status: {
    state: string;
    atS: number;
    held: { streams: number; flows: number; bytes: number; secondsLeft: number } | null;
    retainedBytes: number;
    retainLimit: number;
  } | null;
  /** Seconds from lifting until the client logged every session resumed (null: not all). */
  resumedS: number | null;
  manager: RssPhases;
  client: RssPhases;
  download?: {
    bytesAtHole: number;
    bytesAtLift: number;
    /** Seconds from lifting until curl exited, its exit code, and whether every byte is right. */
    doneS: number | null;
    code: number | null;
    intact: boolean | null;
  };
}

/** What {@linkcode measureHeldMemory} returns. */
export interface HeldMemory {
  cases: HeldCase[];
  managerPid: number;
  clientPid: number;
}

const MGR_DETACHED = /session (\S+) detached \((.*)\): holding (\d+) streams, (\d+) bytes/;
const MGR_ENDED = /session (\S+) ended: .*/;
const CLIENT_HOLDING = /tunnel transport lost \((.*)\); holding (\d+) flows/;
const CLIENT_RESUMED = /tunnel resumed after/;

/**
 * Runs the cases through a daemon-run `kconnect up` in `cluster.laptop`: an idle redis
 * connection held, then a fast 256 MiB download in flight. `runs` times each; `progress` gets a
 * line per case. The manager must log at level info (`KCONNECT_LOG_LEVEL=info`).
 */
export async function measureHeldMemory(
  cluster: TestCluster,
  o: { runs: number; holeS: number; progress: (line: string) => void },
): Promise<HeldMemory> {
  const laptop = cluster.laptop;
  await using paths = await daemonPaths();
  const env = paths.env;
  const readLog = () => Deno.readTextFile(paths.logFile).catch(() => "");
  const status = async () => {
    const st = await kconnect(laptop, ["status", "--json"], { env, timeoutMs: 20_000 });
    try {
      return JSON.parse(st.stdout) as {
        state: string;
        daemon: { pid: number } | null;
        session: { resume?: NonNullable<HeldCase["status"]> & { held: unknown } } | null;
      };
    } catch {
      return null;
    }
  };

  const up = await kconnect(
    laptop,
    ["up", "--kubeconfig", cluster.kubeconfig, "--dns", "off"],
    { env, timeoutMs: 90_000 },
  );
  if (up.code !== 0) throw new Error(`kconnect up (daemon) failed: ${up.stderr}${up.stdout}`);
  o.progress("memory: connected through the daemon");
  const first = await status();
  const daemonPid = first?.daemon?.pid;
  if (daemonPid === undefined) throw new Error(`no daemon pid in status: ${JSON.stringify(first)}`);
  const clientPid = await denoPid(daemonPid);
  const managerChild = cluster.managerProcess;
  if (managerChild === null) throw new Error("the test cluster runs no manager");
  const managerPid = await denoPid(managerChild.pid);

  const rss = async (pid: number) => (await memOf(pid))?.rss ?? NaN;
  const phase = (): RssPhases => ({
    before: NaN,
    detached: NaN,
    maxInHole: 0,
    after: NaN,
    hwmAfter: NaN,
  });
  const cases: HeldCase[] = [];
  try {
    /**
     * One black hole over the flows open now (`during` runs when it starts and just before it is
     * lifted); `back` waits until they are back.
     */
    const holeCase = async (
      label: string,
      during: { onHole?: () => Promise<void>; onLift?: () => Promise<void> },
      back: (c: HeldCase, lifted: number) => Promise<void>,
    ): Promise<HeldCase> => {
      const logMark = (await readLog()).length;
      const mgrMark = cluster.managerErrors.lines.length;
      const c: HeldCase = {
        label,
        holeS: 0,
        clientDetached: [],
        managerDetached: [],
        managerEnded: [],
        status: null,
        resumedS: null,
        manager: { ...phase(), before: await rss(managerPid) },
        client: { ...phase(), before: await rss(clientPid) },
      };
      const scan = async (since: number) => {
        const now = (performance.now() - since) / 1000;
        const holding = (await readLog()).slice(logMark).split("\n")
          .filter((l) => CLIENT_HOLDING.test(l));
        for (const l of holding.slice(c.clientDetached.length)) {
          const m = CLIENT_HOLDING.exec(l)!;
          c.clientDetached.push({ reason: m[1], flows: Number(m[2]), atS: now });
        }
        const mgr = cluster.managerErrors.lines.slice(mgrMark);
        const detaches = mgr.filter((l) => MGR_DETACHED.test(l));
        for (const l of detaches.slice(c.managerDetached.length)) {
          const m = MGR_DETACHED.exec(l)!;
          c.managerDetached.push({
            id: m[1],
            reason: m[2],
            streams: Number(m[3]),
            bytes: Number(m[4]),
            atS: now,
          });
        }
        // Only this case's sessions (not, say, an earlier up's expiring).
        const ids = new Set(c.managerDetached.map((d) => d.id));
        c.managerEnded = mgr.map((l) => MGR_ENDED.exec(l))
          .filter((m) => m !== null && ids.has(m[1])).map((m) => m![0]);
      };
      const sampleMax = async () => {
        const [m, k] = [await rss(managerPid), await rss(clientPid)];
        c.manager.maxInHole = Math.max(c.manager.maxInHole, m || 0);
        c.client.maxInHole = Math.max(c.client.maxInHole, k || 0);
        return [m, k];
      };

      let lifted: number;
      let since: number;
      {
        await using hole = await blackHole(laptop);
        since = hole.since;
        await during.onHole?.();
        let allDetachedAt: number | null = null;
        let statusTask: Promise<void> | null = null;
        for (;;) {
          const t = (performance.now() - hole.since) / 1000;
          const [m, k] = await sampleMax();
          await scan(hole.since);
          const all = c.clientDetached.length > 0 &&
            c.managerDetached.length >= c.clientDetached.length;
          if (all && allDetachedAt === null) {
            allDetachedAt = t;
            c.manager.detached = m;
            c.client.detached = k;
            statusTask = status().then((s) => {
              const r = s?.session?.resume;
              if (s && r) {
                c.status = {
                  state: s.state,
                  atS: (performance.now() - hole.since) / 1000,
                  held: r.held as NonNullable<HeldCase["status"]>["held"],
                  retainedBytes: r.retainedBytes,
                  retainLimit: r.retainLimit,
                };
              }
            });
          }
          // Enough: the least duration, every session detached on both sides and a few
          // seconds of samples since, and the status answered; or the longest a hole lasts.
          const enough = t >= o.holeS && allDetachedAt !== null && t >= allDetachedAt + 3;
          if ((enough && statusTask !== null) || t >= MAX_HOLE_S) break;
          await sleep(250);
        }
        await statusTask;
        if (allDetachedAt === null) {
          c.manager.detached = await rss(managerPid);
          c.client.detached = await rss(clientPid);
        }
        await sampleMax();
        await during.onLift?.();
        lifted = await hole.lift();
        c.holeS = (lifted - hole.since) / 1000;
      }
      // Back: every session the client held logged resumed (the manager's lines stay counted).
      const deadline = lifted + MAX_HOLE_S * 1000;
      while (performance.now() < deadline) {
        const resumed = (await readLog()).slice(logMark).split("\n")
          .filter((l) => CLIENT_RESUMED.test(l)).length;
        if (resumed >= Math.max(1, c.clientDetached.length)) {
          c.resumedS = (performance.now() - lifted) / 1000;
          break;
        }
        await sleep(100);
      }
      await back(c, lifted);
      for (const [p, pid] of [[c.manager, managerPid], [c.client, clientPid]] as const) {
        const mem = await memOf(pid);
        p.after = mem?.rss ?? NaN;
        p.hwmAfter = mem?.hwm ?? NaN;
      }
      await scan(since); // late manager lines (a detach seen only on the takeover)
      return c;
    };

    for (let run = 0; run < o.runs; run++) {
      {
        await using redis = await RedisSession.open(laptop);
        o.progress("memory: idle redis connection open, black hole next");
        await redis.command("PING", 10_000);
        await sleep(1000);
        const c = await holeCase("idle redis connection", {}, async () => {
          // The held connection answers again: the flow is back.
          await redis.command("PING", MAX_HOLE_S * 1000).catch(() => "");
          await sleep(2000);
        });
        cases.push(c);
        o.progress(`memory: idle redis, run ${run + 1}/${o.runs} done`);
      }
      {
        const name = `held-${run}.bin`;
        const blob = await cluster.writeWebFile(name, DOWNLOAD_BYTES, run + 1);
        const file = `${cluster.dir}/${name}.down`;
        await using dl = Download.start(laptop, blob.url, file, {
          rate: DOWNLOAD_RATE,
          maxSeconds: 600,
        });
        o.progress("memory: download file written");
        await dl.waitForBytes(DOWNLOAD_HEAD, 60_000);
        o.progress("memory: download under way, black hole next");
        const d = {
          bytesAtHole: 0,
          bytesAtLift: 0,
          doneS: null as number | null,
          code: null as number | null,
          intact: null as boolean | null,
        };
        const c = await holeCase("256 MiB download in flight", {
          onHole: async () => void (d.bytesAtHole = await dl.bytes()),
          onLift: async () => void (d.bytesAtLift = await dl.bytes()),
        }, async (_c, lifted) => {
          // (within: no timer left behind to keep the bench running once it is done)
          const end = await within(dl.finished, 180_000, "the download").catch(() => null);
          if (end !== null) {
            d.doneS = (performance.now() - lifted) / 1000;
            d.code = end.code;
            d.intact = end.code === 0 && (await dl.bytes()) === DOWNLOAD_BYTES &&
              (await dl.sha256()) === blob.sha256;
          }
          await sleep(2000);
        });
        c.download = d;
        cases.push(c);
        await Deno.remove(blob.path).catch(() => {});
        o.progress(`memory: download in flight, run ${run + 1}/${o.runs} done`);
      }
    }
  } finally {
    await kconnect(laptop, ["down"], { env, timeoutMs: 60_000 });
    o.progress("memory: disconnected");
    // The daemon exits once disconnected; should it linger, it is ours to end.
    for (let i = 0; i < 50 && (await memOf(clientPid)) !== null; i++) await sleep(100);
    if ((await memOf(clientPid)) !== null) {
      try {
        Deno.kill(clientPid, "SIGTERM");
      } catch { /* gone */ }
    }
  }
  return { cases, managerPid, clientPid };
}
