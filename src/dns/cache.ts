/**
 * A cache of cluster answers: positive answers for their smallest TTL, negative ones (NXDOMAIN,
 * or no records of the type) for the SOA minimum (RFC 2308), a bound on entries with
 * least-recently-used eviction, and one lookup in flight per key.
 *
 * @module
 */
import type { DnsRecord, Message } from "./message.ts";
import { RCODE } from "./message.ts";

/** What a cache hit gives back, TTLs already reduced by the time spent in the cache. */
export interface CachedAnswer {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
}

interface Entry extends CachedAnswer {
  stored: number;
  expires: number;
}

/** Options for {@linkcode DnsCache}. */
export interface DnsCacheOptions {
  /** Most entries kept. Default 10000. */
  maxEntries?: number;
  /** Longest any answer is kept, seconds. Default 300. */
  maxTtl?: number;
  /** TTL of a negative answer that carries no SOA, seconds. Default 5. */
  negativeTtl?: number;
}

function rcodeNumber(m: Message): number {
  return (m.flags ?? 0) & 0x0f;
}

function soaTtl(authorities: DnsRecord[]): number | null {
  const soa = authorities.find((r) => r.type === "SOA") as
    | (DnsRecord & { ttl?: number; data?: { minimum?: number } })
    | undefined;
  if (soa === undefined) return null;
  return Math.min(soa.ttl ?? 0, soa.data?.minimum ?? soa.ttl ?? 0);
}

/** The cache; time is passed in (ms) so tests can move it. */
export class DnsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<unknown>>();
  readonly #max: number;
  readonly #maxTtl: number;
  readonly #negativeTtl: number;

  constructor(options: DnsCacheOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#maxTtl = options.maxTtl ?? 300;
    this.#negativeTtl = options.negativeTtl ?? 5;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The key of a question. */
  static key(name: string, type: string, klass = "IN"): string {
    return `${name.toLowerCase()}|${type}|${klass}`;
  }

  /** A live entry for `key`, with TTLs counted down; null when absent or expired. */
  get(key: string, now: number): CachedAnswer | null {
    const e = this.#entries.get(key);
    if (e === undefined) return null;
    if (now >= e.expires) {
      this.#entries.delete(key);
      return null;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e); // most recently used last
    const age = Math.floor((now - e.stored) / 1000);
    const down = (r: DnsRecord) =>
      ({ ...r, ttl: Math.max(0, ((r as { ttl?: number }).ttl ?? 0) - age) }) as DnsRecord;
    return { rcode: e.rcode, answers: e.answers.map(down), authorities: e.authorities.map(down) };
  }

  /** Stores a response from the cluster under `key` if it may be cached. */
  put(key: string, response: Message, now: number): void {
    const rcode = rcodeNumber(response);
    const answers = (response.answers ?? []) as DnsRecord[];
    const authorities = (response.authorities ?? []) as DnsRecord[];
    let ttl: number;
    if (rcode === RCODE.NXDOMAIN || (rcode === RCODE.NOERROR && answers.length === 0)) {
      ttl = soaTtl(authorities) ?? this.#negativeTtl;
    } else if (rcode === RCODE.NOERROR) {
      ttl = Math.min(...answers.map((r) => (r as { ttl?: number }).ttl ?? 0));
    } else {
      return; // SERVFAIL, REFUSED, …: ask again next time
    }
    ttl = Math.min(ttl, this.#maxTtl);
    if (!(ttl > 0)) return;
    this.#entries.delete(key);
    this.#entries.set(key, { rcode, answers, authorities, stored: now, expires: now + ttl * 1000 });
    while (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** Runs `lookup` once for concurrent callers of the same key. */
  dedupe<T>(key: string, lookup: () => Promise<T>): Promise<T> {
    const pending = this.#inflight.get(key);
    if (pending !== undefined) return pending as Promise<T>;
    const p = lookup().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** Forgets everything (the cluster changed). */
  clear(): void {
    this.#entries.clear();
  }
}
