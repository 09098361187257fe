/**
 * A DNS server behind a link, for per-link DNS tests: a veth from the test's namespace to a
 * peer namespace where dnsmasq answers a few records and logs every query. The server's
 * address may be off the link's subnet (it sits on the peer's `lo`), like kconnect's DNS
 * address on its TUN.
 *
 * @example
 * ```ts ignore
 * await using dns = await LinkDns.start(ns, { records: { "x.example.internal": "203.0.113.7" } });
 * await env.exec(["resolvectl", "dns", dns.link, dns.server]);
 * ```
 *
 * @module
 */
import { Netns } from "../_netns.ts";
import { type DnsQuery, parseDnsmasqQueries, waitForCarrier } from "../cluster/laptop.ts";

/** Options of {@linkcode LinkDns.start}. */
export interface LinkDnsOptions {
  /** The link's name in the test's namespace. Default `kc-test0`. */
  link?: string;
  /** The link's address with prefix. Default `10.99.0.1/30`. */
  address?: string;
  /** The peer end's address with prefix. Default `10.99.0.2/30`. */
  peerAddress?: string;
  /** The DNS server's address, on the peer's `lo`; no route to it is added. Default `198.18.0.3`. */
  server?: string;
  /** A records: name → IPv4 address. Other names are NXDOMAIN. */
  records?: Record<string, string>;
}

/** A dnsmasq reachable through one link of a namespace. */
export class LinkDns implements AsyncDisposable {
  /** The link's name in the test's namespace. */
  readonly link: string;
  /** The DNS server's address. */
  readonly server: string;
  /** The peer namespace (dnsmasq runs there). */
  readonly peer: Netns;
  /** dnsmasq's query log. */
  readonly log: string;
  readonly #dir: string;

  private constructor(link: string, server: string, peer: Netns, dir: string) {
    this.link = link;
    this.server = server;
    this.peer = peer;
    this.#dir = dir;
    this.log = `${dir}/queries.log`;
  }

  /** Creates the link and the peer and starts dnsmasq; resolves once it listens and the link has carrier. */
  static async start(ns: Netns, options: LinkDnsOptions = {}): Promise<LinkDns> {
    const link = options.link ?? "kc-test0";
    const server = options.server ?? "198.18.0.3";
    const peerAddress = options.peerAddress ?? "10.99.0.2/30";
    const dir = await Deno.makeTempDir({ prefix: "kc-linkdns-" });
    const peer = await Netns.create("linkdns");
    const dns = new LinkDns(link, server, peer, dir);
    try {
      await ns.veth(peer, {
        name: link,
        peerName: "up0",
        address: options.address ?? "10.99.0.1/30",
        peerAddress,
      });
      await peer.exec(["ip", "addr", "add", `${server}/32`, "dev", "lo"]);
      // resolved ignores a link without carrier (and the kernel's link watcher can lag).
      await waitForCarrier(ns, link);
      const conf = [
        "port=53",
        `listen-address=${server}`,
        `listen-address=${peerAddress.split("/")[0]}`,
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "user=root",
        "pid-file=",
        "log-queries",
        `log-facility=${dns.log}`,
        ...Object.entries(options.records ?? {}).map(([n, a]) => `host-record=${n},${a}`),
        "address=/#/",
        "",
      ].join("\n");
      await Deno.writeTextFile(`${dir}/dnsmasq.conf`, conf);
      const child = peer.spawn(["dnsmasq", "-k", "-C", `${dir}/dnsmasq.conf`], {
        stderr: "piped",
      });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = await peer.exec(["ss", "-Hlun", `sport = :53`]);
        if (r.stdout.includes(`${server}:53`)) break;
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          const out = await child.output();
          throw new Error(
            `dnsmasq behind ${link} does not start: ${new TextDecoder().decode(out.stderr)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return dns;
    } catch (err) {
      await dns[Symbol.asyncDispose]();
      throw err;
    }
  }

  /** The queries dnsmasq has received so far. */
  async queries(): Promise<DnsQuery[]> {
    try {
      return parseDnsmasqQueries(await Deno.readTextFile(this.log));
    } catch {
      return [];
    }
  }

  /** The names asked for so far. */
  async names(): Promise<string[]> {
    return (await this.queries()).map((q) => q.name);
  }

  /** Forgets the queries logged so far. */
  async clear(): Promise<void> {
    await Deno.truncate(this.log).catch(() => {});
  }

  /** Deletes the peer namespace (and so the link) and the scratch directory. Never throws. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.peer[Symbol.asyncDispose]();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}
