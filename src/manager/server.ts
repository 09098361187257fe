/**
 * The traffic manager: the in-cluster end of every kconnect session. It listens on a pod port
 * that only port-forward reaches, runs one multiplexed session per connection, serves each
 * stream (TCP dial, UDP relay, DNS, cluster info), and keeps the cluster info fresh.
 *
 * @module
 */
import { DirectDialer } from "../dial/direct.ts";
import type { KubeClient } from "../k8s/client.ts";
import type { Dialer } from "../io/dialer.ts";
import { logger } from "../log.ts";
import { Session } from "../tunnel/session.ts";
import type { Conn } from "../io/conn.ts";
import { type RegistryStats, type ResumeGrant, SessionRegistry } from "../tunnel/registry.ts";
import { VERSION } from "../version.ts";
import { discoverNetworks } from "./discovery.ts";
import { clusterDomainOf, parseResolvConf } from "../dns/resolv_conf.ts";
import { type ClusterInfo, infoChanged } from "../protocol/cluster_info.ts";
import { serveStream, type StreamContext } from "./streams.ts";
import { DEFAULT_DENIED } from "./policy.ts";
import { Cidr } from "../wire/address.ts";
import {
  BudgetLedger,
  type Budgets,
  type BudgetStats,
  MAX_REFUSING_SESSIONS,
  REFUSED_SESSION_MS,
  type SessionBudget,
  STREAM_HEADROOM,
} from "./budget.ts";
import { managerFlagSettings } from "./flags.ts";
import { readOpenRequest } from "../tunnel/open.ts";
import { refuse } from "./streams.ts";

const log = logger("manager");

/** Options for {@linkcode TrafficManager.start}. */
export interface TrafficManagerOptions {
  hostname: string;
  port: number;
  /** API access with the pod's service account; null runs without discovery (no CIDRs). */
  client: KubeClient | null;
  /** Namespace the manager runs in (the dry-run probe Service goes there). */
  namespace: string;
  /** resolv.conf text (the pod's own). */
  resolvConf: string;
  /** Seconds between discovery runs. Default 30. */
  refreshSeconds?: number;
  /** UDP relay idle timeout, ms. Default 120000. */
  udpIdleMs?: number;
  /** How long a stream may take to send its open request, ms. Default 10000. */
  openRequestTimeoutMs?: number;
  /**
   * Destinations never dialled. Default {@linkcode DEFAULT_DENIED} and what `--deny` added
   * (see `flags.ts`).
   */
  denied?: readonly string[];
  /** Port of the DNS servers from resolv.conf. Default 53. */
  dnsPort?: number;
  /** What dials for clients. Default a {@linkcode DirectDialer} (tests give their own). */
  dialer?: Dialer;
  /**
   * Caps on what clients may make the manager hold (see `budget.ts`); missing ones are the
   * process's (its `--max-…` flags) or the defaults.
   */
  budgets?: Partial<Budgets>;
}

/** What {@linkcode TrafficManager.stats} reports. */
export interface TrafficManagerStats extends BudgetStats {
  /** Sessions admitted and open. */
  sessions: number;
  /** Sessions over the cap, kept for a while to refuse their streams with the reason. */
  refusingSessions: number;
  /** Resumable sessions: how many, how many wait detached and what they hold, resumes. */
  resume: RegistryStats;
}

/** Transport handshakes under way at once; more connections are closed at once. */
const MAX_HANDSHAKES = 64;

/** How often the same kind of refusal is logged at most, ms. */
const REFUSAL_LOG_MS = 10_000;

/** A running traffic manager. */
export class TrafficManager implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #sessions = new Set<Session>();
  readonly #refusing = new Set<Session>();
  readonly #ledger: BudgetLedger;
  readonly #refusalLogged = new Map<string, number>();
  readonly #watchers = new Set<(info: ClusterInfo) => void>();
  readonly #options: TrafficManagerOptions;
  readonly #registry: SessionRegistry;
  #info: ClusterInfo;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #handshakes = 0;
  #accepting: Promise<void> = Promise.resolve();

  private constructor(
    listener: Deno.TcpListener,
    options: TrafficManagerOptions,
    info: ClusterInfo,
  ) {
    this.#listener = listener;
    this.#options = options;
    this.#info = info;
    this.#ledger = new BudgetLedger({ ...managerFlagSettings().budgets, ...options.budgets });
    const b = this.#ledger.budgets;
    this.#registry = new SessionRegistry({
      maxGraceSeconds: b.resumeGraceSeconds,
      retainLimit: b.sessionRetainBytes,
      detachedCapBytes: b.detachedBytes,
      log: (level, message) => log[level](message),
    });
  }

  /** The budgets in force. */
  get budgets(): Budgets {
    return this.#ledger.budgets;
  }

  /** What the sessions hold now, and what was refused so far. */
  get stats(): TrafficManagerStats {
    const g = this.#ledger.stats;
    return {
      ...g,
      refused: { ...g.refused },
      sessions: this.#ledger.sessions,
      refusingSessions: this.#refusing.size,
      resume: this.#registry.stats,
    };
  }

  /** The address it listens on. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** The current cluster info. */
  get info(): ClusterInfo {
    return this.#info;
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Discovers the cluster's networks, then listens. */
  static async start(options: TrafficManagerOptions): Promise<TrafficManager> {
    const conf = parseResolvConf(options.resolvConf);
    const info: ClusterInfo = {
      type: "info",
      managerVersion: VERSION,
      clusterDomain: clusterDomainOf(conf),
      dnsServer: conf.nameservers[0] ?? null,
      serviceCidrs: [],
      podCidrs: [],
      namespaces: [],
      warnings: [],
    };
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    const tm = new TrafficManager(listener, options, info);
    await tm.refresh();
    tm.#timer = setInterval(() => tm.refresh(), (options.refreshSeconds ?? 30) * 1000);
    tm.#accepting = tm.#acceptLoop(conf.nameservers);
    return tm;
  }

  /** Runs discovery now and pushes the info to every client if it changed. */
  async refresh(): Promise<void> {
    if (this.#options.client === null) return;
    let next: ClusterInfo;
    try {
      const n = await discoverNetworks(this.#options.client, this.#options.namespace);
      next = { ...this.#info, ...n };
    } catch (err) {
      const msg = `network discovery failed: ${(err as Error).message}`;
      log.warn(msg);
      next = { ...this.#info, warnings: [msg] };
    }
    if (!infoChanged(this.#info, next)) return;
    this.#info = next;
    log.info("session info", {
      serviceCidrs: next.serviceCidrs.map((c) => c.cidr).join(","),
      podCidrs: next.podCidrs.map((c) => c.cidr).join(","),
      domain: next.clusterDomain,
    });
    for (const w of this.#watchers) w(next);
  }

  async #acceptLoop(dnsServers: string[]): Promise<void> {
    const ctx: StreamContext = {
      dialer: this.#options.dialer ?? new DirectDialer(),
      info: () => this.#info,
      watchInfo: (cb) => {
        this.#watchers.add(cb);
        return () => this.#watchers.delete(cb);
      },
      dnsServers,
      udpIdleMs: this.#options.udpIdleMs ?? 120_000,
      openRequestTimeoutMs: this.#options.openRequestTimeoutMs,
      denied: (this.#options.denied ?? [...DEFAULT_DENIED, ...managerFlagSettings().extraDenied])
        .map((c) => {
          const cidr = Cidr.parse(c);
          if (cidr === null) throw new TypeError(`Invalid denied prefix "${c}"`);
          return cidr;
        }),
      dnsPort: this.#options.dnsPort ?? 53,
    };
    ctx.onRefused = (reason) => this.#logRefusal(reason);
    try {
      for await (const conn of this.#listener) {
        conn.setNoDelay(true);
        // At the session cap with enough refusing sessions kept, or too many handshakes under
        // way (connections that say nothing): closed at once, nothing held.
        if (
          this.#handshakes >= MAX_HANDSHAKES ||
          (this.#ledger.sessions >= this.#ledger.budgets.sessions &&
            this.#refusing.size >= MAX_REFUSING_SESSIONS)
        ) {
          const why = this.#ledger.openSession();
          this.#logRefusal(
            typeof why === "string" ? why : `${MAX_HANDSHAKES} handshakes under way`,
          );
          if (typeof why !== "string") why.close();
          try {
            conn.close();
          } catch { /* gone */ }
          continue;
        }
        // The client speaks first: a new session, a resume (its streams are served already), or
        // a protocol-1 client's yamux.
        this.#handshakes++;
        this.#registry.handshake(
          conn,
          (transport, grant) => this.#newSession(transport, grant, ctx),
        )
          .then((r) => {
            if (r.kind === "refused") log.info(`transport refused: ${r.reason}`);
          }).finally(() => this.#handshakes--);
      }
    } catch (err) {
      if (!this.#closed) log.error(`listener failed: ${(err as Error).message}`);
    }
  }

  /** A new session over `transport` (resumable with `grant`), within the budgets. */
  #newSession(
    transport: Conn,
    grant: ResumeGrant | null,
    ctx: StreamContext,
  ): Session | { session: Session; keep: boolean } {
    const budget = this.#ledger.openSession();
    if (typeof budget === "string") {
      return { session: this.#refuseSession(transport, budget, ctx, grant), keep: false };
    }
    const session = new Session(transport, {
      client: false,
      keepaliveIntervalMs: 15_000,
      // Past its stream budget a session's streams are refused with the reason; past this
      // too, a SYN gets a bare RST.
      maxStreams: this.#ledger.budgets.sessionStreams + STREAM_HEADROOM,
      // A burst of opens arrives in one read, before the accept loop runs: the backlog
      // holds all that the budget allows (each stream holds no more than its request).
      acceptBacklog: this.#ledger.budgets.sessionStreams + STREAM_HEADROOM,
      resumable: grant !== null,
      ...(grant !== null ? { retainLimit: grant.retainLimit } : {}),
    }, budget);
    this.#sessions.add(session);
    log.info(
      `session opened (${this.#sessions.size} open${
        grant ? `, resumable for ${grant.graceSeconds} s` : ", protocol 1: not resumable"
      })`,
    );
    session.closed.then((info) => {
      this.#sessions.delete(session);
      budget.close();
      const msg = `session closed: ${info.reason}${info.error ? ` (${info.error.message})` : ""}`;
      if (info.reason === "protocol-error" || info.reason === "transport-error") log.warn(msg);
      else log.info(msg);
    });
    this.#serve(session, ctx, budget);
    return session;
  }

  async #serve(session: Session, ctx: StreamContext, budget: SessionBudget): Promise<void> {
    for await (const stream of session) {
      // Counted from here, before its request: past the global cap it is reset at once.
      if (!budget.holdStream(stream)) {
        stream.reset();
        continue;
      }
      void serveStream(stream, ctx, budget);
    }
  }

  /**
   * A connection past the session cap: a session that answers each stream with the reason, for
   * a while, so that the client can say why; past a few of those, the connection is closed.
   */
  #refuseSession(
    conn: Conn,
    reason: string,
    ctx: StreamContext,
    grant: ResumeGrant | null,
  ): Session {
    this.#logRefusal(reason);
    // Streams carry no more than their open request: nothing is dialled.
    const session = new Session(conn, {
      client: false,
      maxStreams: 16,
      resumable: grant !== null,
    }, {
      inboundReceiveLimit: 8192,
    });
    if (this.#refusing.size >= MAX_REFUSING_SESSIONS) {
      session.close();
      return session;
    }
    this.#refusing.add(session);
    const timer = setTimeout(
      () => session.goAway().then(() => session.close()),
      REFUSED_SESSION_MS,
    );
    session.closed.then(() => {
      clearTimeout(timer);
      this.#refusing.delete(session);
    });
    (async () => {
      for await (const stream of session) {
        (async () => {
          try {
            await refuse(stream, ctx, await readOpenRequest(stream), reason);
          } catch {
            stream.reset();
          }
        })();
      }
    })();
    return session;
  }

  #logRefusal(reason: string): void {
    const key = reason.replace(/\d+/g, "N");
    const now = Date.now();
    if (now - (this.#refusalLogged.get(key) ?? -Infinity) < REFUSAL_LOG_MS) return;
    this.#refusalLogged.set(key, now);
    log.warn(reason);
  }

  /** Stops listening and ends every session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#listener.close();
    await Promise.all([...this.#sessions, ...this.#refusing].map((s) => s.close()));
    await this.#registry.close();
    await this.#accepting;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
