/**
 * Long-lived flows from a test cluster's laptop through kconnect, to watch across an outage of
 * the tunnel (tests/resume_test.ts, tests/reconnect_test.ts, bench/reconnect.ts):
 *
 * - {@linkcode RedisSession}: interactive `redis-cli` on one connection to the redis service;
 *   `CLIENT ID` tells whether it is still the same connection on the server's side;
 * - {@linkcode Subscriber}: `redis-cli SUBSCRIBE`, which ends only when its connection does;
 * - {@linkcode UdpSession}: one UDP socket (`socat`) exchanging datagrams with the echo service
 *   that names the sender, so each answer says which socket the flow left the cluster from;
 * - {@linkcode Download}: `curl --limit-rate` writing a file, whose size shows progress.
 *
 * And the waits they need: {@linkcode secondsUntil}, {@linkcode within}, {@linkcode lineAfter}.
 * Durations given to these are liveness bounds, never timed assertions.
 *
 * @module
 */
import type { LineWatcher } from "./_lines.ts";
import { LineWatcher as Lines } from "./_lines.ts";
import { type Netns, stillRunning } from "./_netns.ts";
import { SERVICE_IPS, UDP_PEER_PORT } from "./cluster/topology.ts";

/** The redis service's address (port 6379). */
export const REDIS_HOST = SERVICE_IPS.redis;

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Seconds until `ok()` holds, asking every `everyMs` (default 100); throws after `limitS`
 * seconds naming `what`.
 */
export async function secondsUntil(
  ok: () => Promise<boolean> | boolean,
  limitS: number,
  what: string,
  everyMs = 100,
): Promise<number> {
  const t0 = performance.now();
  while ((performance.now() - t0) / 1000 < limitS) {
    if (await ok()) return (performance.now() - t0) / 1000;
    await sleep(everyMs);
  }
  throw new Error(`${what} did not happen within ${limitS} s`);
}

/** `p`, or an error naming `what` when it has not settled after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first line of `watcher` at index `from` or later matching `re` (only lines after a mark:
 * `const mark = up.err.lines.length; …; await lineAfter(up.err, mark, /…/, 30_000)`); throws
 * after `ms` with the lines seen since the mark.
 */
export async function lineAfter(
  watcher: LineWatcher,
  from: number,
  re: RegExp,
  ms: number,
): Promise<string> {
  const deadline = performance.now() + ms;
  for (;;) {
    const line = watcher.lines.slice(from).find((l) => re.test(l));
    if (line !== undefined) return line;
    if (performance.now() >= deadline) {
      throw new Error(
        `no line matching ${re} within ${ms} ms; since the mark:\n${
          watcher.lines.slice(from).join("\n")
        }`,
      );
    }
    await sleep(50);
  }
}

/** Whether a new connection to redis answers PING (`redis-cli PING`, 3 s at most). */
export async function redisPing(ns: Netns): Promise<boolean> {
  const r = await ns.exec(["timeout", "3", "redis-cli", "-h", REDIS_HOST, "PING"], {
    check: false,
  });
  return r.stdout.trim() === "PONG";
}

const encoder = new TextEncoder();

/**
 * Interactive `redis-cli` (stdin a pipe: one command per line, one reply line each) holding one
 * connection to redis. It reconnects by itself after an error, so a broken connection shows as
 * a line on its stderr (`Error: Server closed the connection`, `… Connection reset by peer`)
 * and as a new `CLIENT ID`.
 */
export class RedisSession implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly out: LineWatcher;
  readonly err: LineWatcher;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Index in `out.lines` of the next reply to hand out. */
  #next = 0;
  /** Lines of `err` already reported by {@linkcode reply}. */
  #errorsSeen = 0;
  #clientId = "";

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.out = new Lines(child.stdout);
    this.err = new Lines(child.stderr);
    this.#writer = child.stdin.getWriter();
  }

  /** The redis client id of the connection when it was opened (`CLIENT ID`). */
  get clientId(): string {
    return this.#clientId;
  }

  /**
   * Starts `redis-cli -h <host>` in `ns` and asks `CLIENT ID`, so the connection is open through
   * the tunnel when this resolves.
   */
  static async open(ns: Netns, host = REDIS_HOST, ms = 30_000): Promise<RedisSession> {
    const s = new RedisSession(
      ns.spawn(["redis-cli", "-h", host], { stdin: "piped", stdout: "piped", stderr: "piped" }),
    );
    try {
      const id = await s.command("CLIENT ID", ms);
      if (!/^\d+$/.test(id)) throw new Error(`redis-cli CLIENT ID answered ${JSON.stringify(id)}`);
      s.#clientId = id;
      return s;
    } catch (e) {
      await s[Symbol.asyncDispose]();
      throw new Error(`${(e as Error).message}; stderr: ${s.err.text()}`);
    }
  }

  /** Sends one command line (no wait for its reply). */
  async send(command: string): Promise<void> {
    await this.#writer.write(encoder.encode(`${command}\n`));
  }

  /**
   * The next reply line not read yet; throws after `ms`, when redis-cli exits, or as soon as it
   * reports an error on stderr (its connection broke: it swallows the command's reply then).
   */
  async reply(ms: number): Promise<string> {
    const deadline = performance.now() + ms;
    while (this.out.lines.length <= this.#next) {
      if (this.err.lines.length > this.#errorsSeen) {
        const news = this.err.lines.slice(this.#errorsSeen);
        this.#errorsSeen = this.err.lines.length;
        throw new Error(`redis-cli reported an error: ${news.join("\n")}`);
      }
      if (!(await stillRunning(this.child))) {
        throw new Error(`redis-cli exited before replying; stderr: ${this.err.text()}`);
      }
      if (performance.now() >= deadline) {
        throw new Error(`redis-cli did not reply within ${ms} ms; stderr: ${this.err.text()}`);
      }
      await sleep(20);
    }
    return this.out.lines[this.#next++];
  }

  /** Sends `command` and returns its reply line. */
  async command(command: string, ms: number): Promise<string> {
    await this.send(command);
    return await this.reply(ms);
  }

  /** Ends redis-cli (closes its stdin, then kills it if it lingers). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    const done = await within(this.child.status, 2000, "redis-cli's exit").then(
      () => true,
      () => false,
    );
    if (!done) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.child.status;
    }
    await Promise.all([this.out.done, this.err.done]);
  }
}

/**
 * `redis-cli SUBSCRIBE` on a channel nobody publishes to: a flow that only ends when its
 * connection does, open through the tunnel once redis confirmed the subscription.
 */
export class Subscriber implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly out: LineWatcher;
  readonly err: LineWatcher;
  /** Settles when redis-cli exits (its connection ended), with `performance.now()` then. */
  readonly ended: Promise<number>;

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.out = new Lines(child.stdout);
    this.err = new Lines(child.stderr);
    this.ended = child.status.then(() => performance.now());
  }

  /** Subscribes and waits for redis's confirmation (`subscribe`, the channel, `1`). */
  static async open(ns: Netns, host = REDIS_HOST, ms = 30_000): Promise<Subscriber> {
    const child = ns.spawn(["redis-cli", "-h", host, "SUBSCRIBE", "nothing"], {
      stdout: "piped",
      stderr: "piped",
    });
    const s = new Subscriber(child);
    try {
      await s.out.waitFor(/^1$/, ms);
      const head = s.out.lines.slice(0, 3).join(" ");
      if (head !== "subscribe nothing 1") throw new Error(`SUBSCRIBE printed ${head}`);
      return s;
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      throw new Error(`${(e as Error).message}\nstderr: ${s.err.text()}`);
    }
  }

  /** Ends it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
    await Promise.all([this.out.done, this.err.done]);
  }
}

/**
 * One UDP socket in the laptop (`socat - UDP:<echo service>:7007`, so one source port for its
 * whole life) exchanging datagrams with the echo service that names the sender: the answer to
 * `<tag>` is `<tag> from <address>:<port>`, the address and port the datagram left the cluster
 * from (the traffic manager's socket for that flow). socat exits if the socket gets an error
 * (e.g. an ICMP port unreachable), which a test then sees.
 */
export class UdpSession implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly out: LineWatcher;
  readonly err: LineWatcher;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #sent = 0;

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.out = new Lines(child.stdout);
    this.err = new Lines(child.stderr);
    this.#writer = child.stdin.getWriter();
  }

  /** Starts socat; nothing is sent yet. */
  static open(
    ns: Netns,
    host: string = SERVICE_IPS.echo,
    port: number = UDP_PEER_PORT,
  ): UdpSession {
    return new UdpSession(
      ns.spawn(["socat", "-", `UDP:${host}:${port}`], {
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }),
    );
  }

  /** Sends one datagram `<tag>\n` (tags: letters, digits, `-`, `_`). */
  async send(tag: string): Promise<void> {
    if (!/^[\w-]+$/.test(tag)) throw new TypeError(`Bad tag "${tag}"`);
    if (!(await stillRunning(this.child))) {
      throw new Error(`The UDP client (socat) exited; stderr: ${this.err.text()}`);
    }
    this.#sent++;
    await this.#writer.write(encoder.encode(`${tag}\n`));
  }

  /**
   * The sender address (`<ip>:<port>`) the echo saw for a datagram tagged `tag` (a RegExp:
   * any tag it matches), once its answer is here; throws after `ms` or when socat exits.
   */
  async answer(tag: string | RegExp, ms: number): Promise<{ tag: string; peer: string }> {
    const re = typeof tag === "string" ? new RegExp(`^(${tag}) from (\\S+)$`) : new RegExp(
      `^(${tag.source}) from (\\S+)$`,
    );
    const deadline = performance.now() + ms;
    for (;;) {
      for (const l of this.out.lines) {
        const m = re.exec(l);
        if (m) return { tag: m[1], peer: m[2] };
      }
      if (!(await stillRunning(this.child))) {
        throw new Error(`The UDP client (socat) exited; stderr: ${this.err.text()}`);
      }
      if (performance.now() >= deadline) {
        throw new Error(
          `No answer to a datagram ${re} within ${ms} ms; answers so far: ${
            JSON.stringify(this.out.lines)
          }; stderr: ${this.err.text()}`,
        );
      }
      await sleep(20);
    }
  }

  /** Sends `<tag>` and returns the sender address the echo saw. */
  async exchange(tag: string, ms: number): Promise<string> {
    await this.send(tag);
    return (await this.answer(tag, ms)).peer;
  }

  /**
   * Sends `<prefix>-1`, `<prefix>-2`, … every `everyMs` until one is answered (datagrams sent
   * while the tunnel cannot carry them may be lost), and returns the first answer; throws after
   * `ms`.
   */
  async exchangeUntilAnswered(
    prefix: string,
    ms: number,
    everyMs = 1000,
  ): Promise<{ tag: string; peer: string; sent: number }> {
    const deadline = performance.now() + ms;
    const re = new RegExp(`${prefix}-\\d+`);
    let n = 0;
    for (;;) {
      await this.send(`${prefix}-${++n}`);
      const left = deadline - performance.now();
      try {
        const a = await this.answer(re, Math.max(0, Math.min(everyMs, left)));
        return { ...a, sent: n };
      } catch (e) {
        if (performance.now() >= deadline || !(await stillRunning(this.child))) throw e;
      }
    }
  }

  /** Datagrams sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Ends socat. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
    await Promise.all([this.out.done, this.err.done]);
  }
}

/** `curl` downloading a URL into a file at a limited rate, in the background. */
export class Download implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly file: string;
  readonly err: LineWatcher;
  /** curl's exit code and stderr, when it exits. */
  readonly finished: Promise<{ code: number; stderr: string }>;

  private constructor(child: Deno.ChildProcess, file: string) {
    this.child = child;
    this.file = file;
    this.err = new Lines(child.stderr);
    this.finished = child.status.then(async (s) => {
      await this.err.done;
      return { code: s.code, stderr: this.err.text() };
    });
  }

  /**
   * Starts `curl -sS --fail --limit-rate <rate> -m <maxSeconds> -o <file> <url>` in `ns`.
   * `maxSeconds` is curl's own liveness bound (default 300).
   */
  static start(
    ns: Netns,
    url: string,
    file: string,
    options: { rate?: string; maxSeconds?: number } = {},
  ): Download {
    const child = ns.spawn([
      "curl",
      "-sS",
      "--fail",
      "--limit-rate",
      options.rate ?? "4M",
      "-m",
      String(options.maxSeconds ?? 300),
      "-o",
      file,
      url,
    ], { stderr: "piped" });
    return new Download(child, file);
  }

  /** Bytes written to the file so far. */
  async bytes(): Promise<number> {
    try {
      return (await Deno.stat(this.file)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      throw e;
    }
  }

  /** Waits until at least `n` bytes have arrived; throws after `ms` or if curl exits first. */
  async waitForBytes(n: number, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while ((await this.bytes()) < n) {
      if (!(await stillRunning(this.child))) {
        throw new Error(
          `curl exited after ${await this.bytes()} bytes (waiting for ${n}): ${this.err.text()}`,
        );
      }
      if (performance.now() >= deadline) {
        throw new Error(`curl has ${await this.bytes()} bytes after ${ms} ms, not ${n}`);
      }
      await sleep(50);
    }
  }

  /** The sha256 (hex) of what is in the file. */
  async sha256(): Promise<string> {
    const data = await Deno.readFile(this.file);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Stops curl and removes the file. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
    await this.err.done;
    await Deno.remove(this.file).catch(() => {});
  }
}
