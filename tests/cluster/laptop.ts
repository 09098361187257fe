/**
 * A laptop of the test cluster: a network namespace wired to the API server namespace by a
 * veth /30, with its own resolv.conf and its own upstream DNS server.
 *
 * Every laptop namespace gets `/etc/netns/<ns>/resolv.conf` before anything runs in it, so
 * `ip netns exec` (and so {@linkcode Netns.exec}) bind-mounts it over `/etc/resolv.conf`: a
 * `kconnect up` in the laptop that rewrites `/etc/resolv.conf` rewrites that file, never the
 * host's. The file says `nameserver <laptop ip>` and `search corp.example`, and dnsmasq answers
 * there as the laptop's upstream (records in {@linkcode UPSTREAM_RECORDS}), logging every query
 * it receives so that tests can see which names left the laptop.
 *
 * @module
 */
import type { Netns } from "../_netns.ts";
import { API_LAPTOP_IP, laptopAddresses, laptopResolvConf, UPSTREAM_RECORDS } from "./topology.ts";
import { startProcess, waitListening, type Workload } from "./workloads.ts";

/** One query the upstream DNS server received, from its `--log-queries` log. */
export interface DnsQuery {
  /** Query type as dnsmasq prints it: `A`, `AAAA`, `SRV`, `PTR`, `type=65`… */
  type: string;
  /** The name asked for, without the trailing dot. */
  name: string;
  /** The client's address. */
  from: string;
}

const QUERY_RE = /\squery\[([^\]]+)\] (\S+) from (\S+)/;

/** Parses the `query[…]` lines of a dnsmasq log. */
export function parseDnsmasqQueries(log: string): DnsQuery[] {
  const out: DnsQuery[] = [];
  for (const line of log.split("\n")) {
    const m = QUERY_RE.exec(line);
    if (m) out.push({ type: m[1], name: m[2].replace(/\.$/, ""), from: m[3] });
  }
  return out;
}

/**
 * Waits until `dev` in `ns` is operationally up (`state UP`/`UNKNOWN`, no `NO-CARRIER`); throws
 * with its state after `ms`.
 */
export async function waitForCarrier(ns: Netns, dev: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let line = "";
  for (;;) {
    line = (await ns.exec(["ip", "-o", "link", "show", "dev", dev], { check: false })).stdout;
    if (!line.includes("NO-CARRIER") && / state (UP|UNKNOWN) /.test(line)) return;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${dev} in ${ns.name} has no carrier after ${ms} ms: ${line.trim()}`);
}

/** The dnsmasq configuration of a laptop's upstream DNS server. */
export function upstreamDnsmasqConf(listen: string, logFile: string): string {
  return [
    "port=53",
    `listen-address=${listen}`,
    "bind-interfaces",
    "no-resolv",
    "no-hosts",
    "no-poll",
    "user=root",
    "pid-file=",
    "log-queries",
    `log-facility=${logFile}`,
    ...UPSTREAM_RECORDS.map((r) =>
      `host-record=${[r.name, r.a, r.aaaa].filter(Boolean).join(",")}`
    ),
    // Everything else does not exist (a name above a record, like example.com, is NODATA).
    "address=/#/",
    "",
  ].join("\n");
}

/** A laptop namespace with its resolver set-up; made by the {@linkcode TestCluster}. */
export class Laptop implements AsyncDisposable {
  /** The laptop's namespace. */
  readonly ns: Netns;
  /** Index in the address plan (see {@linkcode laptopAddresses}); 0 for the first laptop. */
  readonly index: number;
  /** The laptop's address (its upstream DNS listens here too). */
  readonly ip: string;
  /** The API server namespace's address on this laptop's link. */
  readonly gateway: string;
  /** `/etc/netns/<ns>/resolv.conf`: what `/etc/resolv.conf` is inside the namespace. */
  readonly resolvConf: string;
  /** The upstream DNS server's log (dnsmasq `--log-queries`). */
  readonly dnsLog: string;
  readonly #dir: string;
  #dns: Workload | null = null;
  #disposed = false;

  /** Wraps `ns` (not set up yet: call {@linkcode setUp}). `dir` holds config and log files. */
  constructor(ns: Netns, index: number, dir: string) {
    this.ns = ns;
    this.index = index;
    const { ip, gateway } = laptopAddresses(index);
    this.ip = ip;
    this.gateway = gateway;
    this.resolvConf = `/etc/netns/${ns.name}/resolv.conf`;
    this.#dir = dir;
    this.dnsLog = `${dir}/upstream-dns-${index}.log`;
  }

  /**
   * Writes the namespace's resolv.conf (do this before running anything in it), links it to
   * `apiserverNs` (laptop `eth0` ↔ `laptop<index>` there; a route to the API server's
   * {@linkcode API_LAPTOP_IP} through the link for laptops other than the first) and starts
   * the upstream DNS server.
   */
  async setUp(apiserverNs: Netns): Promise<void> {
    await this.writeResolvConf();
    await apiserverNs.veth(this.ns, {
      name: `laptop${this.index}`,
      peerName: "eth0",
      address: `${this.gateway}/30`,
      peerAddress: `${this.ip}/30`,
    });
    // Carrier comes through the kernel's link watcher, which can lag by a second or more on a
    // busy machine; until then resolved (tests/resolved/env.ts) sees no usable link and
    // answers "network down".
    await waitForCarrier(this.ns, "eth0");
    if (this.gateway !== API_LAPTOP_IP) {
      await this.ns.exec(["ip", "route", "add", `${API_LAPTOP_IP}/32`, "via", this.gateway]);
    }
    await this.#startDns();
  }

  /** (Re)writes the laptop's resolv.conf with its default content. */
  async writeResolvConf(): Promise<void> {
    await Deno.mkdir(`/etc/netns/${this.ns.name}`, { recursive: true });
    await Deno.writeTextFile(this.resolvConf, laptopResolvConf(this.ip));
  }

  async #startDns(): Promise<void> {
    const conf = `${this.#dir}/upstream-dns-${this.index}.conf`;
    await Deno.writeTextFile(conf, upstreamDnsmasqConf(this.ip, this.dnsLog));
    const w = startProcess(this.ns, `upstream-dns-${this.index}`, [
      "dnsmasq",
      "-k",
      "-C",
      conf,
    ]);
    this.#dns = w;
    await waitListening(this.ns, w, this.ip, 53, "udp");
  }

  /** The queries the upstream DNS server has received so far (since the last clear). */
  async dnsQueries(): Promise<DnsQuery[]> {
    try {
      return parseDnsmasqQueries(await Deno.readTextFile(this.dnsLog));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /**
   * Waits until the upstream has received a query matching `match` (a name, or a predicate)
   * and returns it; rejects after `ms` with the queries seen.
   */
  async waitForDnsQuery(
    match: string | ((q: DnsQuery) => boolean),
    ms = 5000,
  ): Promise<DnsQuery> {
    const test = typeof match === "string" ? (q: DnsQuery) => q.name === match : match;
    const deadline = Date.now() + ms;
    for (;;) {
      const queries = await this.dnsQueries();
      const found = queries.find(test);
      if (found) return found;
      if (Date.now() >= deadline) {
        throw new Error(
          `The laptop's upstream DNS received no matching query within ${ms} ms; it got: ${
            JSON.stringify(queries.map((q) => `${q.type} ${q.name}`))
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Forgets the queries logged so far (dnsmasq appends, so truncating is safe). */
  async clearDnsLog(): Promise<void> {
    await Deno.truncate(this.dnsLog).catch(() => {});
  }

  /** Stops the DNS server, deletes the namespace and `/etc/netns/<ns>`. Never throws. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.ns[Symbol.asyncDispose]();
    if (this.#dns) await Promise.all([this.#dns.out.done, this.#dns.err.done]).catch(() => {});
    await Deno.remove(`/etc/netns/${this.ns.name}`, { recursive: true }).catch(() => {});
  }
}
