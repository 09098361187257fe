/**
 * The kconnect daemon: a long-lived root process that owns at most one {@linkcode UpConnection}
 * and is driven over a Unix socket by `kconnect up`, `down` and `status` run as ordinary users.
 *
 * Access control, outermost first:
 *
 * - with a group (`kconnect service install`, `--group`), the socket's directory is
 *   `0750 root:<group>` and the socket `0660 root:<group>`: only root and the group's members can
 *   connect at all — the kernel checks this on `connect()`; with no group (what
 *   `sudo kconnect up` starts by default) anyone can connect, and only root and the uids the
 *   daemon was started with (the user who ran sudo) get past the uid proof (`access.ts`);
 * - the daemon learns each connection's uid and gid from the kernel (`SO_PEERCRED`, see
 *   `peercred.ts`; where that is not available, from a proof file in the sticky `auth/`
 *   directory, see `auth.ts`), and refuses it, with how to get access, unless
 *   {@linkcode decideAccess} lets it in;
 * - a session for a non-root user gets its credentials by running `kconnect credentials` *as
 *   that user* (`src/k8s/as_user.ts`): the daemon never reads a user's kubeconfig or runs a
 *   user's exec plugin as root, and refreshes the token the same way before it expires or after
 *   a 401.
 *   The same holds for root's requests made under sudo (`sudo kconnect up`: the request's
 *   environment has the `SUDO_UID` of the user who ran sudo): the credentials are fetched as
 *   that user. Only root's own requests load the kubeconfig in-process;
 * - the socket's directory, the auth directory and the state directory must be root's alone:
 *   every directory leading to them is one no other user can change (`src/host/safe_path.ts`),
 *   so no `--socket` or `--state-dir` can make root chown, chmod or write through another
 *   user's link.
 *
 * On Windows the control channel is the named pipe `\\.\pipe\kconnect` (`windows_pipe.ts`)
 * with the same guarantees: its DACL lets in only SYSTEM, Administrators and the group's SID (the
 * kernel checks it on open), the daemon's first instance refuses a name someone already holds,
 * the client is known from its token (impersonated for one `OpenThreadToken`), and a member's
 * credentials come from `kconnect credentials` run with that token (`src/k8s/as_user_windows.ts`).
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
import { socketAnswers } from "./client.ts";
import { type ClusterAccess, loadKubeconfig } from "../k8s/access.ts";
import { accessFromMaterial } from "../k8s/material.ts";
import { Journal } from "../journal/journal.ts";
import { removeUpRecord, runningUp, writeUpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../connect/leftovers.ts";
import { UpConnection, upConnectionOptions } from "../connect/up_connection.ts";
import { checkSettings, resolveSettings } from "../config/config.ts";
import { logger, type Progress } from "../log.ts";
import { VERSION } from "../version.ts";
import { checkIdentity, isNonce, newNonce, type Peer } from "./auth.ts";
import { fetchMaterialAs, type FetchOptions } from "../k8s/as_user.ts";
import { fetchMaterialAsToken, realTokenRunner, type TokenRunAs } from "../k8s/as_user_windows.ts";
import type { CredentialMaterial } from "../k8s/material.ts";
import { authDirOf, runDirOf } from "./paths.ts";
import { PeerCredListener, peerCredSupported, PeerCredUnavailableError } from "./peercred.ts";
import { ensureTrustedDir } from "../host/safe_path.ts";
import {
  type AccessPolicy,
  decideAccess,
  decideWindowsAccess,
  describeAccess,
  socketModes,
} from "./access.ts";
import { isPipeName, openPipeNative, type PipeNative, SID_SYSTEM } from "./windows_pipe_native.ts";
import { PipeListener, type WindowsPeer } from "./windows_pipe.ts";
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
  /** Milliseconds between sweeps of the auth directory. Default 30 s. */
  authSweepMs?: number;
  /**
   * How clients are identified: `kernel` (SO_PEERCRED, Linux) or `file` (the proof file).
   * Default `kernel` where supported.
   */
  identify?: "kernel" | "file";
  /**
   * Windows named pipe (`socket` is `\\.\pipe\…`): the native functions. Default the real
   * kernel32 and advapi32; tests pass a fake.
   */
  pipeNative?: PipeNative;
  /**
   * Windows: fetches a client's credentials with its token (default `kconnect credentials` run
   * through `CreateProcessAsUserW`, `src/k8s/as_user_windows.ts`); tests pass their own.
   */
  windowsCredentials?: (who: TokenRunAs, o: FetchOptions) => Promise<CredentialMaterial>;
}

/**
 * Who sent a request, as the kernel told: a Unix uid and gid, or a Windows token's user and
 * groups (with `take`, which hands the token to the caller, who then closes it).
 */
type Client =
  | ({ kind: "unix" } & Peer)
  | ({ kind: "windows"; take(): Deno.PointerValue } & WindowsPeer);

/** `uid 1000`, or the Windows user's SID. */
function who(c: Client): string {
  return c.kind === "unix" ? `uid ${c.uid}` : c.sid;
}

/** A client connection: its streams, and who it is when the kernel tells. */
interface ControlConn {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Who the client is, from the kernel (SO_PEERCRED, or the pipe client's token: called once
   * the request was read), or null: then the client proves its uid by file.
   */
  identify(): Client | null;
  close(): void;
}

/** Where connections come from. */
interface ControlListener {
  /** The next connection, or null once closed. */
  accept(): Promise<ControlConn | null>;
  close(): void;
}

/** Listens on `path`: with kernel peer credentials, or Deno's own listener (file proof). */
function listenControl(
  path: string,
  identify: "kernel" | "file",
): { listener: ControlListener; identify: "kernel" | "file" } {
  if (identify === "kernel") {
    try {
      return { listener: peerCredListener(path), identify };
    } catch (err) {
      if (!(err instanceof PeerCredUnavailableError)) throw err;
      log.warn(`no kernel peer credentials (${err.message}): clients prove their uid by file`);
    }
  }
  return { listener: denoListener(path), identify: "file" };
}

function peerCredListener(path: string): ControlListener {
  const l = PeerCredListener.listen(path);
  return {
    async accept() {
      const c = await l.accept();
      return c === null ? null : {
        readable: c.readable,
        writable: c.writable,
        identify: () => ({ kind: "unix", uid: c.peer.uid, gid: c.peer.gid }),
        close: () => c.close(),
      };
    },
    close: () => l.close(),
  };
}

function denoListener(path: string): ControlListener {
  const l = Deno.listen({ transport: "unix", path });
  return {
    async accept() {
      let c: Deno.Conn;
      try {
        c = await l.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return null;
        }
        throw err;
      }
      return {
        readable: c.readable,
        writable: c.writable,
        identify: () => null,
        close: () => {
          try {
            c.close();
          } catch { /* closed */ }
        },
      };
    },
    close: () => {
      try {
        l.close();
      } catch { /* closed */ }
    },
  };
}

/** Listens on a Windows named pipe whose DACL lets in SYSTEM, Administrators and `access`'s groups. */
function pipeListener(native: PipeNative, name: string, access: AccessPolicy): ControlListener {
  const l = PipeListener.listen(native, name, { allowed: access.sids ?? [] });
  return {
    async accept() {
      const c = await l.accept();
      if (c === null) return null;
      return {
        readable: c.readable,
        writable: c.writable,
        identify: () => ({ kind: "windows", ...c.identify(), take: () => c.takeToken() }),
        close: () => void c.close(),
      };
    },
    close: () => void l.close(),
  };
}

/** A failure with a protocol error code. */
class RequestError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The running daemon. */
export class Daemon implements AsyncDisposable {
  readonly #o: DaemonOptions;
  readonly #listener: ControlListener;
  readonly #startedAt = new Date();
  readonly #authDir: string;
  readonly #conns = new Set<ControlConn>();
  /** Nonces sent in `hello` whose request has not been handled yet (their proof files stay). */
  readonly #outstanding = new Set<string>();
  #connected: UpConnection | null = null;
  #owner: Client | null = null;
  /** A Windows session's user token (for refreshing its credentials), closed on disconnect. */
  #ownerToken: (() => void) | null = null;
  /** The token of the `up` under way, until its session starts (then it is `#ownerToken`). */
  #pendingToken: (() => void) | null = null;
  /** Whether the control channel is a Windows named pipe (no directories, no proof files). */
  readonly #pipe: boolean;
  #connecting = false;
  /** Whether an up or down came in yet: only then may an idle daemon exit (not on probes, status). */
  #served = false;
  #lastError: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | null = null;
  #resolveDone!: () => void;
  /** Resolves when the daemon has stopped (by {@linkcode close} or going idle). */
  readonly done: Promise<void> = new Promise((r) => this.#resolveDone = r);

  private constructor(o: DaemonOptions, listener: ControlListener) {
    this.#o = o;
    this.#listener = listener;
    this.#authDir = authDirOf(o.socket);
    this.#pipe = isPipeName(o.socket);
  }

  /**
   * Prepares the socket directory, the auth directory and the socket, and starts serving.
   *
   * @throws {Error} when another daemon answers on the socket, or a path is unusable.
   */
  static async start(o: DaemonOptions): Promise<Daemon> {
    if (isPipeName(o.socket)) {
      // Windows: the pipe's DACL and first-instance flag do what the directory modes do here.
      const native = o.pipeNative ?? openPipeNative();
      const listener = pipeListener(native, o.socket, o.access);
      const d = new Daemon({ ...o, pipeNative: native }, listener);
      d.#acceptLoop();
      log.info("listening", {
        pipe: o.socket,
        access: describeAccess(o.access),
        identify: "pipe client token",
        pid: Deno.pid,
        version: VERSION,
      });
      return d;
    }
    const modes = socketModes(o.access);
    const runDir = runDirOf(o.socket);
    // Every directory on the way must be root's: nobody may swap a component for a link to
    // somewhere else between the checks and the chown/chmod below.
    await ensureTrustedDir(runDir, {
      mode: modes.runDir,
      gid: modes.gid,
      what: "the daemon's socket",
      sharedHint: "give the socket a directory of its own",
    });
    const authDir = authDirOf(o.socket);
    await ensureTrustedDir(authDir, {
      mode: modes.authDir,
      gid: modes.gid,
      shared: true,
      what: "the daemon's auth directory",
    });
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
    const { listener, identify } = listenControl(
      o.socket,
      o.identify ?? (peerCredSupported() ? "kernel" : "file"),
    );
    try {
      await Deno.chown(o.socket, 0, modes.gid);
      await Deno.chmod(o.socket, modes.socket);
    } catch (err) {
      listener.close();
      throw err;
    }
    const d = new Daemon(o, listener);
    d.#acceptLoop();
    // Proof files that no connection waits for (a client crashed, or a member keeps making them)
    // are removed, so nobody fills /run through the auth directory.
    const sweeper = setInterval(
      () => sweepAuthDir(authDir, d.#outstanding),
      o.authSweepMs ?? 30_000,
    );
    Deno.unrefTimer(sweeper);
    d.#sweeper = sweeper;
    log.info("listening", {
      socket: o.socket,
      access: describeAccess(o.access),
      identify: identify === "kernel" ? "SO_PEERCRED" : "proof file",
      pid: Deno.pid,
      version: VERSION,
    });
    return d;
  }

  #sweeper: ReturnType<typeof setInterval> | undefined;

  async #acceptLoop(): Promise<void> {
    while (true) {
      let conn: ControlConn | null;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing === null) log.error(`accepting a connection: ${(err as Error).message}`);
        return;
      }
      if (conn === null) return;
      this.#conns.add(conn);
      const c = conn;
      this.#serve(c).catch((err) => log.warn(`serving a client: ${err.message}`)).finally(() => {
        this.#conns.delete(c);
        c.close();
        this.#maybeIdleExit();
      });
    }
  }

  #maybeIdleExit(): void {
    if (!this.#o.exitWhenIdle || this.#closing !== null) return;
    if (this.#served && this.#connected === null && !this.#connecting && this.#conns.size === 0) {
      log.info("no session left: exiting (--exit-when-idle)");
      this.close();
    }
  }

  async #serve(conn: ControlConn): Promise<void> {
    const writer = conn.writable.getWriter();
    let chain = Promise.resolve();
    let gone = false;
    const send = (m: Hello | Response): Promise<void> =>
      chain = chain.then(() => gone ? undefined : writer.write(encodeLine(m))).catch(() => {
        gone = true;
      });
    const nonce = newNonce();
    this.#outstanding.add(nonce);
    log.debug("client connected", { clients: this.#conns.size });
    try {
      await this.#handle(conn, nonce, send);
    } finally {
      this.#outstanding.delete(nonce);
      // The client's proof file, if it made one (a daemon with the kernel's answer ignores it).
      await Deno.remove(`${this.#authDir}/${nonce}`).catch(() => {});
    }
    await chain;
    await writer.close().catch(() => {});
  }

  async #handle(
    conn: ControlConn,
    nonce: string,
    send: (m: Hello | Response) => Promise<void>,
  ): Promise<void> {
    await send({
      type: "hello",
      v: PROTOCOL_VERSION,
      version: VERSION,
      pid: Deno.pid,
      nonce,
      authDir: this.#pipe ? "" : this.#authDir,
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
    let client: Client;
    try {
      try {
        req = parseRequest(line);
      } catch (err) {
        throw new RequestError("bad-request", (err as Error).message);
      }
      if (req.auth !== nonce) throw new RequestError("unauthorized", "wrong nonce");
      let known: Client | null;
      try {
        known = conn.identify();
      } catch (err) {
        throw new RequestError(
          "unauthorized",
          `cannot tell who you are: ${(err as Error).message}`,
        );
      }
      if (known !== null) {
        client = known;
      } else {
        try {
          client = { kind: "unix", ...await checkIdentity(this.#authDir, nonce) };
        } catch (err) {
          throw new RequestError(
            "unauthorized",
            `cannot prove who you are: ${(err as Error).message}`,
          );
        }
      }
      const access = client.kind === "unix"
        ? decideAccess(this.#o.access, client.uid)
        : decideWindowsAccess(this.#o.access, client);
      if (!access.allowed) throw new RequestError("forbidden", access.message);
      log.info(
        `request ${req.type}`,
        client.kind === "unix" ? { uid: client.uid, gid: client.gid } : { sid: client.sid },
      );
      const peer = client;
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
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Credentials for a request. A non-root client's come from `kconnect credentials` run as that
   * client; so do those of root's request made under sudo (its environment has the `SUDO_UID` of
   * the user who ran sudo: `loadKubeconfig` sees to that); only root's own are read here.
   */
  async #accessFor(req: UpRequest, peer: Client): Promise<ClusterAccess> {
    if (peer.kind === "windows") return await this.#windowsAccessFor(req, peer);
    if (peer.uid === 0) {
      return await loadKubeconfig({
        kubeconfig: req.kubeconfig ?? undefined,
        context: req.context ?? undefined,
        home: req.env.HOME,
        env: req.env,
        cwd: req.cwd,
      });
    }
    const runAs = { uid: peer.uid, gid: peer.gid, env: req.env, cwd: req.cwd };
    const first = await fetchMaterialAs(runAs, {
      kubeconfig: req.kubeconfig,
      context: req.context,
    });
    // Refreshes keep to the context first resolved, even if the file's current-context changes.
    const again = () =>
      fetchMaterialAs(runAs, { kubeconfig: req.kubeconfig, context: first.context });
    return accessFromMaterial(first, { refresh: again, credentialsUid: peer.uid });
  }

  /**
   * Credentials for a Windows client: SYSTEM's own are read here; anyone else's come from
   * `kconnect credentials` run with that user's token (kept for refreshes until disconnect).
   */
  async #windowsAccessFor(
    req: UpRequest,
    peer: Extract<Client, { kind: "windows" }>,
  ): Promise<ClusterAccess> {
    if (peer.sid === SID_SYSTEM) {
      return await loadKubeconfig({
        kubeconfig: req.kubeconfig ?? undefined,
        context: req.context ?? undefined,
        home: req.env.USERPROFILE ?? req.env.HOME,
        env: req.env,
        cwd: req.cwd,
      });
    }
    // The token is the daemon's from here: kept for refreshes while the session lasts.
    const token = peer.take();
    const native = this.#o.pipeNative!;
    let closed = false;
    this.#pendingToken = () => {
      if (!closed) native.sym.CloseHandle(token);
      closed = true;
    };
    const fetch = this.#o.windowsCredentials ?? defaultWindowsCredentials();
    const who: TokenRunAs = { token, sid: peer.sid, env: req.env, cwd: req.cwd };
    const first = await fetch(who, { kubeconfig: req.kubeconfig, context: req.context });
    const again = () =>
      closed
        ? Promise.reject(new Error("the session's user token is closed"))
        : fetch(who, { kubeconfig: req.kubeconfig, context: first.context });
    return accessFromMaterial(first, { refresh: again });
  }

  async #up(
    req: UpRequest,
    peer: Client,
    send: (m: Response) => Promise<void>,
  ): Promise<UpResult> {
    const progress: Progress = {
      done: (name, detail) =>
        void send({ type: "progress", event: { kind: "done", name, detail } }),
      detail: (text) => void send({ type: "progress", event: { kind: "detail", text } }),
      warn: (text) => void send({ type: "progress", event: { kind: "warn", text } }),
    };
    if (this.#connected !== null) {
      const s = this.#connected.status();
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
          access.credentialsUid === undefined ? "" : `, credentials as uid ${access.credentialsUid}`
        })`,
      );
      const settings = checkSettings(
        resolveSettings(req.flags, req.config, access.context),
        "request",
      );
      await writeUpRecord(dir, access.context, true);
      let connected: UpConnection;
      try {
        connected = await UpConnection.start(
          upConnectionOptions(settings, access, journal),
          progress,
        );
      } catch (err) {
        await removeUpRecord(dir);
        throw err;
      }
      this.#connected = connected;
      this.#owner = peer;
      this.#ownerToken = this.#pendingToken;
      this.#pendingToken = null;
      this.#lastError = null;
      log.info(
        "connected",
        peer.kind === "unix"
          ? { context: access.context, uid: peer.uid }
          : { context: access.context, sid: peer.sid },
      );
      connected.done.then((why) => {
        if (this.#connected !== connected) return;
        log.warn(`session ended: ${why}`);
        // Queued behind e.g. a switch: by then a new session may be current; leave that one be.
        this.#exclusive(() =>
          this.#connected === connected ? this.#disconnect(why) : Promise.resolve(null)
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
      // An up that failed after taking a Windows client's token: it is not needed any more.
      this.#pendingToken?.();
      this.#pendingToken = null;
    }
  }

  async #disconnect(why: string): Promise<string | null> {
    const s = this.#connected;
    if (s === null) return null;
    const context = s.status().context;
    this.#connected = null;
    this.#owner = null;
    this.#ownerToken?.();
    this.#ownerToken = null;
    log.info(`disconnecting: ${why}`, { context });
    await s.close().catch((e) => log.warn(`closing the session: ${e.message}`));
    await removeUpRecord(this.#o.stateDir);
    return context;
  }

  async #down(peer: Client): Promise<DownResult & { undone: string[] }> {
    const disconnected = await this.#disconnect(`kconnect down by ${who(peer)}`);
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
        ...(this.#o.access.sids !== undefined ? { sids: [...this.#o.access.sids] } : {}),
      },
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
    };
  }

  /** The status report. */
  report(): StatusReport {
    const s = this.#connected?.status() ?? null;
    return {
      schema: STATUS_SCHEMA,
      state: s !== null ? s.state : this.#connecting ? "connecting" : "disconnected",
      daemon: this.info(),
      ownerUid: this.#owner?.kind === "unix" ? this.#owner.uid : null,
      ...(this.#pipe ? { ownerSid: this.#owner?.kind === "windows" ? this.#owner.sid : null } : {}),
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
      if (!this.#pipe) await Deno.remove(this.#o.socket).catch(() => {});
      log.info("stopped");
      this.#resolveDone();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

let windowsRunner: ReturnType<typeof realTokenRunner> | null = null;

/** The real Windows credentials fetcher: `kconnect credentials` with the client's token. */
function defaultWindowsCredentials(): NonNullable<DaemonOptions["windowsCredentials"]> {
  const run = windowsRunner ??= realTokenRunner();
  return (who, o) => fetchMaterialAsToken(who, { ...o, run });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let m = err.message;
  for (let c = err.cause; c instanceof Error; c = c.cause) {
    if (!m.includes(c.message)) m += `: ${c.message}`;
  }
  return m;
}

/**
 * Removes every entry of the auth directory that no connection waits for (its name is not an
 * outstanding nonce), whatever its times say: a member can set mtime and atime to any date, and
 * no proof is of use once its connection is gone.
 */
export async function sweepAuthDir(dir: string, outstanding: ReadonlySet<string>): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (isNonce(e.name) && outstanding.has(e.name)) continue;
      await Deno.remove(`${dir}/${e.name}`, { recursive: true }).catch(() => {});
    }
  } catch { /* the directory is gone: the daemon is stopping */ }
}
