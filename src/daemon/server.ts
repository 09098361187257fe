/**
 * The kconnect daemon: a long-lived root process that owns at most one {@linkcode ClusterSession}
 * and is driven over a Unix socket by `kconnect up`, `down` and `status` run as ordinary users.
 *
 * Access control, outermost first:
 *
 * - with a group (`kconnect service install`, `--group`), the socket's directory is
 *   `0750 root:<group>` and the socket `0660 root:<group>`: only root and the group's members can
 *   connect at all — the kernel checks this on `connect()`; with no group (what
 *   `sudo kconnect up` starts by default) anyone can connect, and only root and the uids the
 *   daemon was started with (the user who ran sudo) get past the uid proof (`access.ts`);
 * - each connection proves its uid with a file in the sticky `auth/` directory (see `auth.ts`),
 *   and is refused, with how to get access, unless {@linkcode decideAccess} lets it in;
 * - a session for a non-root user gets its credentials by running `kconnect credentials` *as
 *   that user* (`as_user.ts`): the daemon never reads a user's kubeconfig or runs a user's exec
 *   plugin as root, and refreshes the token the same way before it expires or after a 401.
 *   Root's requests (`sudo kconnect up`) load the kubeconfig in-process, as the foreground `up`
 *   does (including `SUDO_USER`'s home).
 *
 * Membership of the group (or being an allowed uid) is a grant to change this machine's routes
 * and resolver settings the way `up` does (including `--also-proxy` prefixes and
 * `--allow-route-conflicts`): treat it like membership of a group that may run
 * `sudo kconnect up`. Anyone let in may disconnect or switch the session, whoever started it;
 * `status` shows the uid that did. One request per connection; `up` and `down` run one at a
 * time.
 *
 * @module
 */
import { type ClusterAccess, loadKubeconfig } from "../k8s/access.ts";
import { accessFromMaterial } from "../k8s/material.ts";
import { Journal } from "../journal/journal.ts";
import { removeUpRecord, runningUp, writeUpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../journal/undo.ts";
import { ClusterSession, sessionOptions } from "../connect/session.ts";
import { checkSettings, resolveSettings } from "../config/config.ts";
import type { Progress } from "../cli/progress.ts";
import { logger } from "../log.ts";
import { VERSION } from "../version.ts";
import { checkIdentity, newNonce, type Peer } from "./auth.ts";
import { fetchMaterialAs } from "./as_user.ts";
import { authDirOf, runDirOf } from "./paths.ts";
import { type AccessPolicy, decideAccess, describeAccess, socketModes } from "./access.ts";
import {
  type DownResult,
  encodeLine,
  type ErrorCode,
  type Hello,
  LineReader,
  parseRequest,
  PROTOCOL_VERSION,
  type Request,
  type Response,
  type UpRequest,
  type UpResult,
} from "./protocol.ts";
import { type DaemonInfo, STATUS_SCHEMA, type StatusReport } from "./status.ts";

const log = logger("daemon");

/** Options of {@linkcode Daemon.start}. */
export interface DaemonOptions {
  /** Socket path; its directory becomes the daemon's (owners and modes: `socketModes()`). */
  socket: string;
  /** Who may use the daemon. */
  access: AccessPolicy;
  /** Where the journal and pid file live. */
  stateDir: string;
  /** The log file (reported by status), or null for stderr. */
  logFile: string | null;
  /** Exit once no session is left after a request (for a daemon `up` started itself). */
  exitWhenIdle?: boolean;
  /** Milliseconds a client gets to send its request after `hello`. Default 10 s. */
  requestTimeoutMs?: number;
}

/** A failure with a protocol error code. */
class RequestError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

async function prepareDir(dir: string, mode: number, gid: number, shared: boolean): Promise<void> {
  let st: Deno.FileInfo | null = null;
  try {
    st = await Deno.lstat(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (st === null) {
    const parent = runDirOf(dir);
    await Deno.mkdir(parent, { recursive: true, mode: 0o755 });
    await Deno.mkdir(dir, { mode: 0o700 });
  } else {
    if (st.isSymlink || !st.isDirectory) {
      throw new Error(`Cannot use ${dir} for the daemon: it is not a directory`);
    }
    const m = st.mode ?? 0;
    if (!shared && (m & 0o1002) !== 0) {
      throw new Error(
        `Cannot use ${dir} for the daemon's socket: it is shared (mode ${
          (m & 0o7777).toString(8)
        }); give the socket a directory of its own`,
      );
    }
  }
  await Deno.chown(dir, 0, gid);
  await Deno.chmod(dir, mode);
}

async function socketAnswers(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** The running daemon. */
export class Daemon implements AsyncDisposable {
  readonly #o: DaemonOptions;
  readonly #listener: Deno.Listener;
  readonly #startedAt = new Date();
  readonly #authDir: string;
  readonly #conns = new Set<Deno.Conn>();
  #session: ClusterSession | null = null;
  #owner: number | null = null;
  #connecting = false;
  /** Whether an up or down came in yet: only then may an idle daemon exit (not on probes, status). */
  #served = false;
  #lastError: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | null = null;
  #resolveDone!: () => void;
  /** Resolves when the daemon has stopped (by {@linkcode close} or going idle). */
  readonly done: Promise<void> = new Promise((r) => this.#resolveDone = r);

  private constructor(o: DaemonOptions, listener: Deno.Listener) {
    this.#o = o;
    this.#listener = listener;
    this.#authDir = authDirOf(o.socket);
  }

  /**
   * Prepares the socket directory, the auth directory and the socket, and starts serving.
   *
   * @throws {Error} when another daemon answers on the socket, or a path is unusable.
   */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const modes = socketModes(o.access);
    const runDir = runDirOf(o.socket);
    await prepareDir(runDir, modes.runDir, modes.gid, false);
    const authDir = authDirOf(o.socket);
    await prepareDir(authDir, modes.authDir, modes.gid, true);
    for await (const e of Deno.readDir(authDir)) {
      await Deno.remove(`${authDir}/${e.name}`, { recursive: true }).catch(() => {});
    }
    try {
      await Deno.lstat(o.socket);
      if (await socketAnswers(o.socket)) {
        throw new Error(`Another kconnect daemon is already listening on ${o.socket}`);
      }
      await Deno.remove(o.socket);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const listener = Deno.listen({ transport: "unix", path: o.socket });
    try {
      await Deno.chown(o.socket, 0, modes.gid);
      await Deno.chmod(o.socket, modes.socket);
    } catch (err) {
      listener.close();
      throw err;
    }
    const d = new Daemon(o, listener);
    d.#acceptLoop();
    // Proof files a client made and never got checked (it crashed, or a member keeps making
    // them) go after a minute, so nobody fills /run through the auth directory.
    const sweeper = setInterval(() => sweepAuthDir(authDir, 60_000), 30_000);
    Deno.unrefTimer(sweeper);
    d.#sweeper = sweeper;
    log.info("listening", {
      socket: o.socket,
      access: describeAccess(o.access),
      pid: Deno.pid,
      version: VERSION,
    });
    return d;
  }

  #sweeper: ReturnType<typeof setInterval> | undefined;

  async #acceptLoop(): Promise<void> {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing === null) log.error(`accepting a connection: ${(err as Error).message}`);
        return;
      }
      this.#conns.add(conn);
      this.#serve(conn).catch((err) => log.warn(`serving a client: ${err.message}`)).finally(() => {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
        this.#maybeIdleExit();
      });
    }
  }

  #maybeIdleExit(): void {
    if (!this.#o.exitWhenIdle || this.#closing !== null) return;
    if (this.#served && this.#session === null && !this.#connecting && this.#conns.size === 0) {
      log.info("no session left: exiting (--exit-when-idle)");
      this.close();
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const writer = conn.writable.getWriter();
    let chain = Promise.resolve();
    let gone = false;
    const send = (m: Hello | Response): Promise<void> =>
      chain = chain.then(() => gone ? undefined : writer.write(encodeLine(m))).catch(() => {
        gone = true;
      });
    const nonce = newNonce();
    log.debug("client connected", { clients: this.#conns.size });
    await send({
      type: "hello",
      v: PROTOCOL_VERSION,
      version: VERSION,
      pid: Deno.pid,
      nonce,
      authDir: this.#authDir,
      logFile: this.#o.logFile,
    });
    const reader = new LineReader(conn.readable);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const line = await Promise.race([
      reader.next(),
      new Promise<null>((r) =>
        timer = setTimeout(() => r(null), this.#o.requestTimeoutMs ?? 10_000)
      ),
    ]).catch(() => null).finally(() => clearTimeout(timer));
    if (line === null) {
      log.debug("client sent no request");
      return;
    }
    let req: Request;
    let peer: Peer;
    try {
      try {
        req = parseRequest(line);
      } catch (err) {
        throw new RequestError("bad-request", (err as Error).message);
      }
      if (req.auth !== nonce) throw new RequestError("unauthorized", "wrong nonce");
      try {
        peer = await checkIdentity(this.#authDir, nonce);
      } catch (err) {
        throw new RequestError(
          "unauthorized",
          `cannot prove who you are: ${(err as Error).message}`,
        );
      }
      const access = decideAccess(this.#o.access, peer.uid);
      if (!access.allowed) throw new RequestError("forbidden", access.message);
      log.info(`request ${req.type}`, { uid: peer.uid, gid: peer.gid });
      let result: unknown;
      switch (req.type) {
        case "status":
          result = this.report();
          break;
        case "down":
          this.#served = true;
          result = await this.#exclusive(() => this.#down(peer));
          break;
        case "up":
          this.#served = true;
          result = await this.#exclusive(() => this.#up(req as UpRequest, peer, send));
          break;
      }
      await send({ type: "result", result });
    } catch (err) {
      const code = err instanceof RequestError ? err.code : "failed";
      const message = describe(err);
      if (code !== "failed") log.warn(`refused a request: ${message}`);
      await send({ type: "error", code, message });
    }
    await chain;
    await writer.close().catch(() => {});
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #accessFor(req: UpRequest, peer: Peer): Promise<ClusterAccess> {
    if (peer.uid === 0) {
      return await loadKubeconfig({
        kubeconfig: req.kubeconfig ?? undefined,
        context: req.context ?? undefined,
        home: req.env.HOME,
      });
    }
    const who = { uid: peer.uid, gid: peer.gid, env: req.env, cwd: req.cwd };
    const first = await fetchMaterialAs(who, { kubeconfig: req.kubeconfig, context: req.context });
    // Refreshes keep to the context first resolved, even if the file's current-context changes.
    const again = () =>
      fetchMaterialAs(who, { kubeconfig: req.kubeconfig, context: first.context });
    return accessFromMaterial(first, { refresh: again });
  }

  async #up(req: UpRequest, peer: Peer, send: (m: Response) => Promise<void>): Promise<UpResult> {
    const progress: Progress = {
      done: (name, detail) =>
        void send({ type: "progress", event: { kind: "done", name, detail } }),
      detail: (text) => void send({ type: "progress", event: { kind: "detail", text } }),
      warn: (text) => void send({ type: "progress", event: { kind: "warn", text } }),
    };
    if (this.#session !== null) {
      const s = this.#session.status();
      if (!req.switch) {
        throw new RequestError(
          "already-connected",
          `kconnect is already connected (context "${s.context}", since ${s.startedAt}): run kconnect down first, or kconnect up --switch`,
        );
      }
      await this.#disconnect(`switching from context "${s.context}"`);
      progress.done("disconnected", `context "${s.context}"`);
    }
    const dir = this.#o.stateDir;
    const fg = await runningUp(dir);
    if (fg !== null) {
      throw new RequestError(
        "already-connected",
        `a foreground kconnect up is connected (context "${fg.context}", pid ${fg.pid}): stop it first (kconnect down)`,
      );
    }
    this.#connecting = true;
    try {
      const journal = await Journal.open(dir);
      for (const done of await undoLeftovers(journal)) {
        progress.warn(`cleaned up after an earlier run that did not exit cleanly: ${done}`);
      }
      const access = await this.#accessFor(req, peer);
      progress.done(
        "kubeconfig",
        `context "${access.context}", user "${access.userName}" (${access.source}${
          peer.uid === 0 ? "" : `, credentials as uid ${peer.uid}`
        })`,
      );
      const settings = checkSettings(
        resolveSettings(req.flags, req.config, access.context),
        "request",
      );
      await writeUpRecord(dir, access.context, true);
      let session: ClusterSession;
      try {
        session = await ClusterSession.start(sessionOptions(settings, access, journal), progress);
      } catch (err) {
        await removeUpRecord(dir);
        throw err;
      }
      this.#session = session;
      this.#owner = peer.uid;
      this.#lastError = null;
      log.info("connected", { context: access.context, uid: peer.uid });
      session.done.then((why) => {
        if (this.#session !== session) return;
        log.warn(`session ended: ${why}`);
        // Queued behind e.g. a switch: by then a new session may be current; leave that one be.
        this.#exclusive(() =>
          this.#session === session ? this.#disconnect(why) : Promise.resolve(null)
        )
          .then(() => {
            this.#lastError = why;
            this.#maybeIdleExit();
          });
      });
      return { context: access.context, status: this.report() };
    } catch (err) {
      this.#lastError = describe(err);
      log.warn(`up failed: ${this.#lastError}`);
      throw err;
    } finally {
      this.#connecting = false;
    }
  }

  async #disconnect(why: string): Promise<string | null> {
    const s = this.#session;
    if (s === null) return null;
    const context = s.status().context;
    this.#session = null;
    this.#owner = null;
    log.info(`disconnecting: ${why}`, { context });
    await s.close().catch((e) => log.warn(`closing the session: ${e.message}`));
    await removeUpRecord(this.#o.stateDir);
    return context;
  }

  async #down(peer: Peer): Promise<DownResult & { undone: string[] }> {
    const disconnected = await this.#disconnect(`kconnect down by uid ${peer.uid}`);
    const undone = await undoLeftovers(await Journal.open(this.#o.stateDir));
    return { disconnected, undone };
  }

  /** The daemon's own facts. */
  info(): DaemonInfo {
    return {
      pid: Deno.pid,
      version: VERSION,
      socket: this.#o.socket,
      logFile: this.#o.logFile,
      stateDir: this.#o.stateDir,
      access: {
        group: this.#o.access.group,
        gid: this.#o.access.gid,
        uids: [...this.#o.access.uids],
      },
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
    };
  }

  /** The status report. */
  report(): StatusReport {
    const s = this.#session?.status() ?? null;
    return {
      schema: STATUS_SCHEMA,
      state: s !== null ? s.state : this.#connecting ? "connecting" : "disconnected",
      daemon: this.info(),
      ownerUid: this.#owner,
      session: s,
      lastError: this.#lastError,
      message: s === null ? (this.#connecting ? "connecting" : "not connected") : null,
    };
  }

  /** Disconnects, stops listening and removes the socket. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#sweeper);
      try {
        this.#listener.close();
      } catch { /* closed */ }
      await this.#exclusive(() => this.#disconnect("the daemon is stopping"));
      for (const c of this.#conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Deno.remove(this.#o.socket).catch(() => {});
      log.info("stopped");
      this.#resolveDone();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let m = err.message;
  for (let c = err.cause; c instanceof Error; c = c.cause) {
    if (!m.includes(c.message)) m += `: ${c.message}`;
  }
  return m;
}

/** Removes entries of the auth directory older than `maxAgeMs`. */
async function sweepAuthDir(dir: string, maxAgeMs: number): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      const st = await Deno.lstat(path).catch(() => null);
      // ctime, which nobody can set (touch -d sets mtime and atime only).
      const changed = st?.ctime ?? st?.mtime;
      if (changed && Date.now() - changed.getTime() > maxAgeMs) {
        await Deno.remove(path, { recursive: true }).catch(() => {});
      }
    }
  } catch { /* the directory is gone: the daemon is stopping */ }
}
