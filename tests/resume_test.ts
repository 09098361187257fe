/**
 * Resumable tunnel sessions (issue 14), end to end on the test cluster: when the tunnel between
 * laptop and traffic manager drops, open TCP connections and UDP flows through kconnect are
 * held (programs see a stall, never a reset) and go on with every byte, once and in order, when
 * it returns. With resumption off (`--resume-grace 0`) see reconnect_test.ts.
 *
 * - a 20 s black hole (packets silently dropped; only the keepalive notices): a redis
 *   connection answers a command sent during the outage exactly once, and goes on as the same
 *   server-side connection (`CLIENT ID`); a rate-limited 64 MiB download in flight arrives
 *   intact; a UDP flow goes on from the same socket in the cluster (the echo names the sender);
 * - every laptop ↔ API server connection broken (the API server restarting, then the laptop's
 *   connections killed, as on a network change): the same for redis and UDP, and a download
 *   through both;
 * - the manager replaced while the tunnel is down: the resume is refused, held flows end (a
 *   reset or EOF) once the tunnel is back, new ones work;
 * - through the daemon: `status --json` says `reconnecting` while flows are held, `connected`
 *   after.
 *
 * What the tests read from kconnect: `up --log-level info`'s stderr lines {@linkcode HOLDING},
 * {@linkcode RESUMED} and {@linkcode REFUSED} (the daemon's log file has the same), and `state`
 * of `kconnect status --json`.
 *
 * Durations are liveness bounds, generous for a busy 2-core machine (how long resuming takes is
 * measured by bench/reconnect.ts): each test fails when something never happens, not when it is
 * slow. The black hole lasts at least {@linkcode HOLE_S} seconds and until kconnect said it is
 * holding flows. Root only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connectedLaptop, E2E_TEST } from "./_connected.ts";
import { isRoot, type Netns, stillRunning } from "./_netns.ts";
import { blackHole, killApiConnections } from "./_outage.ts";
import {
  Download,
  lineAfter,
  redisPing,
  RedisSession,
  secondsUntil,
  sleep,
  Subscriber,
  UdpSession,
  within,
} from "./_flows.ts";
import type { LineWatcher } from "./_lines.ts";
import { TestCluster } from "./cluster/cluster.ts";
import { daemonPaths, kconnect } from "./_up.ts";

/** How long anything here may take before it counts as never happening, in seconds. */
const LIVENESS_S = 45;
/** The least time a black hole lasts, in seconds. */
const HOLE_S = 20;
/** Size of the download held across an outage, and curl's rate limit (bytes/s). */
const DOWNLOAD_BYTES = 64 << 20;
const DOWNLOAD_RATE = 4 << 20;

/** Logged (info) when the tunnel drops with flows held. */
const HOLDING = /tunnel transport lost .*holding/;
/** Logged (info) when held flows came back. */
const RESUMED = /tunnel resumed/;
/** Logged when the manager refused a resume (the held flows then end). */
const REFUSED = /resume refused/;

const ms = (s: number) => s * 1000;

/** Index of the first line at `from` or later matching `re`, or -1. */
function indexAfter(w: LineWatcher, from: number, re: RegExp): number {
  const i = w.lines.slice(from).findIndex((l) => re.test(l));
  return i < 0 ? -1 : from + i;
}

/** The flows a test holds across an outage, opened and checked working before it. */
async function openFlows(ns: Netns) {
  const redis = await RedisSession.open(ns);
  assert.equal(await redis.command("PING", ms(10)), "PONG");
  const udp = UdpSession.open(ns);
  const peer = await udp.exchange("before", ms(10));
  return { redis, udp, peer };
}

/** Starts the download and waits until it is well under way (so it is in flight in the outage). */
async function startDownload(
  cluster: TestCluster,
  ns: Netns,
  name: string,
): Promise<{ dl: Download; sha256: string }> {
  const blob = await cluster.writeWebFile(name, DOWNLOAD_BYTES);
  const dl = Download.start(ns, blob.url, `${cluster.dir}/${name}.down`, {
    rate: String(DOWNLOAD_RATE),
    maxSeconds: 600,
  });
  await dl.waitForBytes(2 << 20, ms(LIVENESS_S));
  return { dl, sha256: blob.sha256 };
}

/** Asserts the download ended well: exit 0 and every byte (the sha256). */
async function assertDownloaded(d: { dl: Download; sha256: string }): Promise<void> {
  const bound = ms(DOWNLOAD_BYTES / DOWNLOAD_RATE + LIVENESS_S);
  const { code, stderr } = await within(d.dl.finished, bound, "the download finishing");
  assert.equal(code, 0, `curl: ${stderr}`);
  assert.equal(await d.dl.bytes(), DOWNLOAD_BYTES);
  assert.equal(await d.dl.sha256(), d.sha256, "the downloaded file's sha256");
}

Deno.test({
  name:
    "flows held across a 20 s black hole go on: redis on the same connection, a download intact, UDP from the same socket",
  ...E2E_TEST,
  fn: async (t) => {
    await using connected = await connectedLaptop({ up: ["--log-level", "info"] });
    const { cluster, laptop, up } = connected;
    const { redis, udp, peer } = await openFlows(laptop);
    await using _redis = redis;
    await using _udp = udp;
    const download = await startDownload(cluster, laptop, "black-hole.bin");
    await using _dl = download.dl;

    const mark = up.err.lines.length;
    {
      await using hole = await blackHole(laptop);
      await lineAfter(up.err, mark, HOLDING, ms(LIVENESS_S));
      // Bytes and a datagram sent while the flows are held: the command must be run once.
      await redis.send("INCR held");
      await udp.send("during");
      await sleep(Math.max(0, ms(HOLE_S) - (performance.now() - hole.since)));
      await hole.lift();
    }

    await t.step(
      "redis: the command sent while held runs once, on the same connection",
      async () => {
        assert.equal(await redis.reply(ms(LIVENESS_S)), "1");
        assert.equal(await redis.command("PING", ms(10)), "PONG");
        assert.equal(await redis.command("CLIENT ID", ms(10)), redis.clientId);
        assert.equal(await redis.command("GET held", ms(10)), "1");
        assert.equal(redis.err.text(), "", "redis-cli saw no error");
      },
    );

    await t.step("UDP: the flow goes on from the same socket in the cluster", async () => {
      const after = await udp.exchangeUntilAnswered("after", ms(LIVENESS_S));
      assert.equal(after.peer, peer, "the echo saw the same sender before and after");
      for (let i = 1; i <= 3; i++) assert.equal(await udp.exchange(`again-${i}`, ms(10)), peer);
    });

    await t.step("the download in flight finishes intact", () => assertDownloaded(download));

    await t.step("up said it held the flows, then resumed them; nothing refused", async () => {
      await lineAfter(up.err, mark, RESUMED, ms(LIVENESS_S));
      const held = indexAfter(up.err, mark, HOLDING);
      assert.ok(indexAfter(up.err, held, RESUMED) > held, up.err.lines.slice(mark).join("\n"));
      assert.equal(indexAfter(up.err, mark, REFUSED), -1, up.err.lines.slice(mark).join("\n"));
      assert.ok(await stillRunning(up.child), "kconnect up is still running");
    });
  },
});

Deno.test({
  name:
    "flows held while every laptop ↔ API server connection breaks go on: an API server restart, then the connections killed",
  ...E2E_TEST,
  fn: async (t) => {
    await using connected = await connectedLaptop({ up: ["--log-level", "info"] });
    const { cluster, laptop, up } = connected;
    const { redis, udp, peer } = await openFlows(laptop);
    await using _redis = redis;
    await using _udp = udp;
    const download = await startDownload(cluster, laptop, "breaks.bin");
    await using _dl = download.dl;

    /** After an outage: held, resumed, and redis and UDP go on as before. */
    const checkResumed = async (mark: number, n: number) => {
      assert.equal(await redis.command(`INCR broken`, ms(LIVENESS_S)), String(n));
      assert.equal(await redis.command("CLIENT ID", ms(10)), redis.clientId);
      assert.equal(redis.err.text(), "", "redis-cli saw no error");
      const after = await udp.exchangeUntilAnswered(`after-${n}`, ms(LIVENESS_S));
      assert.equal(after.peer, peer, "the echo saw the same sender before and after");
      const held = indexAfter(up.err, mark, HOLDING);
      assert.ok(held >= 0, `no hold logged:\n${up.err.lines.slice(mark).join("\n")}`);
      await lineAfter(up.err, held, RESUMED, ms(LIVENESS_S));
      assert.equal(indexAfter(up.err, mark, REFUSED), -1, up.err.lines.slice(mark).join("\n"));
    };

    await t.step("the API server restarts (its connections close)", async () => {
      const mark = up.err.lines.length;
      await cluster.restartApiServer();
      await checkResumed(mark, 1);
    });

    await t.step("the laptop's connections to the API server are killed", async () => {
      const mark = up.err.lines.length;
      assert.ok(await killApiConnections(laptop) >= 1, "kconnect had connections to kill");
      await checkResumed(mark, 2);
    });

    await t.step("the download in flight through both finishes intact", async () => {
      await assertDownloaded(download);
      assert.ok(await stillRunning(up.child), "kconnect up is still running");
    });
  },
});

Deno.test({
  name:
    "a manager replaced while the tunnel is down refuses the resume: held flows end once it is back, new ones work",
  ...E2E_TEST,
  fn: async () => {
    await using connected = await connectedLaptop({ up: ["--log-level", "info"] });
    const { cluster, laptop, up } = connected;
    await using sub = await Subscriber.open(laptop);
    assert.ok(await redisPing(laptop));

    const mark = up.err.lines.length;
    let liftedAt: number;
    {
      await using hole = await blackHole(laptop);
      await lineAfter(up.err, mark, HOLDING, ms(LIVENESS_S));
      await cluster.restartManager();
      assert.ok(await stillRunning(sub.child), "the flow is held, not ended, while down");
      liftedAt = await hole.lift();
    }
    const endedAt = await within(sub.ended, ms(LIVENESS_S), "the held flow ending");
    // Reset, as by the far end's host (not an orderly end that looks like the server quitting).
    assert.match(sub.err.text(), /reset by peer/i, "redis-cli saw its connection reset");
    await lineAfter(up.err, mark, REFUSED, ms(LIVENESS_S));
    assert.ok(endedAt >= liftedAt, "the held flow ended only after the tunnel was back");
    assert.equal(indexAfter(up.err, mark, RESUMED), -1, up.err.lines.slice(mark).join("\n"));
    await secondsUntil(() => redisPing(laptop), LIVENESS_S, "a new redis connection working");
    assert.ok(await stillRunning(up.child), "kconnect up is still running");
  },
});

Deno.test({
  name:
    "through the daemon, status says reconnecting while flows are held and connected once they are back",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const { laptop } = cluster;
    const env = paths.env;
    const state = async () => {
      const st = await kconnect(laptop, ["status", "--json"], { env });
      return (JSON.parse(st.stdout) as { state: string }).state;
    };
    const log = async () => await Deno.readTextFile(paths.logFile).catch(() => "");
    try {
      const up = await kconnect(
        laptop,
        ["up", "--kubeconfig", cluster.kubeconfig, "--dns", "off"],
        {
          env,
        },
      );
      assert.equal(up.code, 0, up.stderr + up.stdout);
      assert.equal(await state(), "connected");
      await using redis = await RedisSession.open(laptop);
      const logged = (await log()).length;
      {
        await using hole = await blackHole(laptop);
        await secondsUntil(
          async () => HOLDING.test((await log()).slice(logged)),
          LIVENESS_S,
          "the hold",
        );
        assert.equal(await state(), "reconnecting");
        await hole.lift();
      }
      await secondsUntil(
        async () => (await state()) === "connected",
        LIVENESS_S,
        "connected again",
      );
      assert.match((await log()).slice(logged), RESUMED);
      assert.equal(await redis.command("CLIENT ID", ms(LIVENESS_S)), redis.clientId);
      assert.equal(redis.err.text(), "");
    } finally {
      await kconnect(laptop, ["down"], { env });
    }
  },
});
