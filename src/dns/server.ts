/**
 * kconnect's DNS server: answers cluster names by asking the cluster's DNS through the tunnel,
 * with a cache, and hands every other name to the resolvers the machine had before (or refuses
 * it, when split DNS should never have sent it here). Transport-agnostic: the flow engine feeds
 * it UDP payloads and TCP streams addressed to the DNS address inside the TUN's prefix.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { type Clock, systemClock } from "../io/clock.ts";
import { FrameReader, writeU16Frame } from "../tunnel/length_prefixed.ts";
import { DnsCache } from "./cache.ts";
import {
  decode,
  type DnsRecord,
  encode,
  errorFromHeader,
  MAX_NAME,
  type Message,
  RCODE,
  respond,
  truncated,
  udpLimit,
} from "./message.ts";
import { type DnsScope, reverseZones, routeName } from "./names.ts";
import type { Cidr } from "../wire/address.ts";
import { logger } from "../log.ts";

const log = logger("dns");

/** Options for {@linkcode DnsServer}. */
export interface DnsServerOptions {
  /** The cluster's names as known now (read on every query). */
  scope: () => DnsScope;
  /** Sends a raw query to the cluster's DNS (through the tunnel) and returns the raw answer. */
  cluster: (query: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;
  /**
   * Sends a raw query to the resolvers the machine had before kconnect; null when split DNS
   * means other names never reach this server (they are refused).
   */
  upstream: ((query: Uint8Array) => Promise<Uint8Array>) | null;
  /** Queries answered or in flight at once before new UDP queries are dropped. Default 256. */
  maxInflight?: number;
  /** How long a cluster lookup may take, ms. Default 5000. */
  timeoutMs?: number;
  clock?: Clock;
}

/** Counters. */
export interface DnsStats {
  queries: number;
  clusterLookups: number;
  cacheHits: number;
  upstream: number;
  localNxdomain: number;
  malformed: number;
  dropped: number;
  failures: number;
  probes: number;
  /** Records the cluster sent that were off the question's CNAME chain or outside its zones: dropped. */
  offChain: number;
}

function bare(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** Whether `name` is `zone` or below it (both bare). */
function inZone(name: string, zone: string): boolean {
  return zone === "" || name === zone || name.endsWith(`.${zone}`);
}

const zonesOf = new WeakMap<readonly Cidr[], string[]>();

/** Whether the cluster may speak for `name`: the cluster domain, or a reverse zone of its CIDRs. */
function clusterOwns(name: string, scope: DnsScope): boolean {
  const n = bare(name);
  if (inZone(n, bare(scope.clusterDomain))) return true;
  if (!n.endsWith(".arpa")) return false;
  let zones = zonesOf.get(scope.cidrs);
  if (zones === undefined) {
    zones = scope.cidrs.flatMap((c) => reverseZones(c));
    zonesOf.set(scope.cidrs, zones);
  }
  return zones.some((z) => inZone(n, z));
}

/**
 * The records of `answers` on the CNAME chain that starts at `start` (the question), while
 * `allowed` says each next name may be answered by this source; `outside` is the first name the
 * chain leaves to (a CNAME to an Internet name, e.g. an ExternalName service), if any.
 */
function followChain(
  answers: DnsRecord[],
  start: string,
  allowed: (name: string) => boolean,
): { kept: DnsRecord[]; outside: string | null } {
  const on = new Set([bare(start)]);
  let current = bare(start);
  let outside: string | null = null;
  for (let hop = 0; hop < 16; hop++) {
    const cname = answers.find((r) => r.type === "CNAME" && bare(r.name) === current) as
      | { data?: unknown }
      | undefined;
    if (typeof cname?.data !== "string") break;
    const next = bare(cname.data);
    if (on.has(next)) break;
    if (!allowed(next)) {
      outside = next;
      break;
    }
    on.add(next);
    current = next;
  }
  return { kept: answers.filter((r) => on.has(bare(r.name))), outside };
}

function validName(name: string): boolean {
  const n = name.replace(/\.$/, "");
  return n.length <= MAX_NAME && n.split(".").every((l) => l.length <= 63);
}

/** The DNS server. */
export class DnsServer {
  readonly stats: DnsStats = {
    queries: 0,
    clusterLookups: 0,
    cacheHits: 0,
    upstream: 0,
    localNxdomain: 0,
    malformed: 0,
    dropped: 0,
    failures: 0,
    probes: 0,
    offChain: 0,
  };
  readonly cache = new DnsCache();
  readonly #o: DnsServerOptions;
  readonly #clock: Clock;
  #inflight = 0;
  #probe: { name: string; address: string } | null = null;

  constructor(options: DnsServerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Answers `name` (A or AAAA) with `address` from now on, without asking anyone: the
   * self-check that proves the system resolver reaches this server.
   */
  setProbe(name: string, address: string): void {
    this.#probe = { name: bare(name), address };
  }

  /** Answers one query; null means no answer is sent (dropped, or not a query). */
  async handle(query: Uint8Array, transport: "udp" | "tcp"): Promise<Uint8Array | null> {
    this.stats.queries++;
    if (this.#inflight >= (this.#o.maxInflight ?? 256)) {
      this.stats.dropped++;
      return transport === "tcp" ? errorFromHeader(query, RCODE.SERVFAIL) : null;
    }
    this.#inflight++;
    try {
      const m = decode(query);
      if (m === null) {
        this.stats.malformed++;
        return errorFromHeader(query, RCODE.FORMERR);
      }
      if (m.type === "response") return null;
      const response = await this.#answer(query, m);
      if (transport === "udp" && response.length > udpLimit(m)) return truncated(response);
      return response;
    } catch {
      this.stats.failures++;
      return errorFromHeader(query, RCODE.SERVFAIL);
    } finally {
      this.#inflight--;
    }
  }

  async #answer(raw: Uint8Array, m: Message): Promise<Uint8Array> {
    const opcode = (raw[2] >> 3) & 0x0f;
    if (opcode !== 0) return errorFromHeader(raw, RCODE.NOTIMP)!;
    const questions = m.questions ?? [];
    if (questions.length !== 1 || !validName(questions[0].name)) {
      this.stats.malformed++;
      return errorFromHeader(raw, RCODE.FORMERR)!;
    }
    const q = questions[0];
    const probe = this.#probe;
    if (probe !== null && bare(q.name) === probe.name) {
      this.stats.probes++;
      const family = probe.address.includes(":") ? "AAAA" : "A";
      const answers = q.type === family
        ? [{ type: family, name: q.name, ttl: 0, data: probe.address } as DnsRecord]
        : [];
      return respond(m, RCODE.NOERROR, { answers, authoritative: true });
    }
    const route = routeName(q.name, this.#o.scope());
    switch (route.kind) {
      case "upstream":
        return await this.#upstream(raw, m);
      case "nxdomain":
        this.stats.localNxdomain++;
        return respond(m, RCODE.NXDOMAIN);
      case "cluster":
      case "cluster-first": {
        const a = await this.#lookup(route.fqdn, q.type, q.class ?? "IN");
        if (a === null) {
          // The tunnel is down: a short name that may be the Internet's still resolves there.
          if (route.kind === "cluster-first" && this.#o.upstream !== null) {
            return await this.#upstream(raw, m);
          }
          return respond(m, RCODE.SERVFAIL);
        }
        if (
          route.kind === "cluster-first" && a.rcode === RCODE.NXDOMAIN && this.#o.upstream !== null
        ) {
          return await this.#upstream(raw, m);
        }
        // Only what the cluster may speak for goes back: the records on the question's CNAME
        // chain, inside the cluster domain or its reverse zones (no www.bank.example riding
        // along for the stub's cache).
        const scope = this.#o.scope();
        const chain = followChain(a.answers, route.fqdn, (n) => clusterOwns(n, scope));
        const authorities = a.authorities.filter((r) => clusterOwns(r.name, scope));
        this.stats.offChain += a.answers.length - chain.kept.length +
          a.authorities.length - authorities.length;
        let answers = chain.kept;
        let rcode = a.rcode;
        if (chain.outside !== null && q.type !== "CNAME") {
          // A CNAME out of the cluster (an ExternalName service): its target is resolved where
          // this machine resolves Internet names, not taken from the cluster.
          const more = await this.#chase(chain.outside, q.type, q.class ?? "IN");
          if (more !== null) {
            answers = [...answers, ...more.answers];
            rcode = more.rcode;
          }
        }
        const from = bare(route.fqdn);
        const rename = (
          r: DnsRecord,
        ) => (bare(r.name) === from ? { ...r, name: q.name } as DnsRecord : r);
        return respond(m, rcode, { answers: answers.map(rename), authorities });
      }
    }
  }

  /**
   * Resolves `name`, where a CNAME from the cluster led, through the upstream resolvers; null
   * when there are none (split DNS: the system resolver follows the CNAME itself), when the
   * name is not an upstream one, or on failure.
   */
  async #chase(
    name: string,
    type: string,
    klass: string,
  ): Promise<{ rcode: number; answers: DnsRecord[] } | null> {
    if (this.#o.upstream === null || routeName(name, this.#o.scope()).kind !== "upstream") {
      return null;
    }
    this.stats.upstream++;
    try {
      const raw = await this.#o.upstream(encode({
        id: crypto.getRandomValues(new Uint16Array(1))[0],
        type: "query",
        flags: 1 << 8, // RD
        questions: [{ name, type: type as DnsRecord["type"], class: klass as "IN" }],
      } as Message));
      const resp = decode(raw);
      const q = resp?.questions?.[0];
      if (resp === null || resp.type !== "response" || q === undefined || bare(q.name) !== name) {
        return null;
      }
      const answers = (resp.answers ?? []) as DnsRecord[];
      return {
        rcode: (resp.flags ?? 0) & 0x0f,
        answers: followChain(answers, name, () => true).kept,
      };
    } catch {
      this.stats.failures++;
      return null;
    }
  }

  async #upstream(raw: Uint8Array, m: Message): Promise<Uint8Array> {
    if (this.#o.upstream === null) return respond(m, RCODE.REFUSED);
    this.stats.upstream++;
    try {
      return await this.#o.upstream(raw);
    } catch {
      this.stats.failures++;
      return respond(m, RCODE.SERVFAIL);
    }
  }

  /** Asks the cluster (or the cache) about `fqdn`; null when the cluster did not answer. */
  async #lookup(
    fqdn: string,
    type: string,
    klass: string,
  ): Promise<{ rcode: number; answers: DnsRecord[]; authorities: DnsRecord[] } | null> {
    const key = DnsCache.key(fqdn, type, klass);
    const hit = this.cache.get(key, this.#clock.now());
    if (hit !== null) {
      this.stats.cacheHits++;
      return hit;
    }
    return await this.cache.dedupe(key, async () => {
      this.stats.clusterLookups++;
      log.debug(`cluster lookup ${fqdn} ${type}`);
      const query = encode({
        id: Math.floor(Math.random() * 65536),
        type: "query",
        flags: 1 << 8, // RD
        questions: [{ name: fqdn, type: type as DnsRecord["type"], class: klass as "IN" }],
        additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096 } as unknown as DnsRecord],
      } as Message);
      let raw: Uint8Array;
      try {
        raw = await this.#o.cluster(query, AbortSignal.timeout(this.#o.timeoutMs ?? 5000));
      } catch {
        this.stats.failures++;
        return null;
      }
      const resp = decode(raw);
      if (resp === null) return null;
      this.cache.put(key, resp, this.#clock.now());
      return {
        rcode: (resp.flags ?? 0) & 0x0f,
        answers: (resp.answers ?? []) as DnsRecord[],
        authorities: (resp.authorities ?? []) as DnsRecord[],
      };
    });
  }

  /** Serves DNS over one TCP connection (RFC 7766 framing) until the client closes it. */
  async serveTcp(conn: Conn, idleMs = 10_000): Promise<void> {
    const reader = new FrameReader(conn);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => conn.close(), idleMs);
    };
    try {
      touch();
      for (;;) {
        const q = await reader.readU16Frame();
        if (q === null) break;
        touch();
        const a = await this.handle(q, "tcp");
        if (a !== null) await writeU16Frame(conn, a);
      }
    } catch {
      /* the client went away */
    } finally {
      clearTimeout(idle);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }
}
