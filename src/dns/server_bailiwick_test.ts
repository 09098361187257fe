/**
 * Security review L4: the DNS server relays only what the cluster may speak for — the records on
 * the question's CNAME chain, inside the cluster domain or its reverse zones. A cluster that adds
 * `www.bank.example` to an answer must not get it into the laptop's stub resolver.
 */
import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import { decode, type DnsRecord, encode, type Message } from "./message.ts";
import type { DnsScope } from "./names.ts";
import { DnsServer, type DnsServerOptions } from "./server.ts";

const scope: DnsScope = {
  clusterDomain: "cluster.local",
  namespaces: new Set(["default"]),
  namespace: "default",
  cidrs: [Cidr.parse("10.96.0.0/12")!],
};

const A = (name: string, data: string) => ({ type: "A", name, ttl: 30, class: "IN", data });
const CNAME = (name: string, data: string) => ({ type: "CNAME", name, ttl: 30, class: "IN", data });
const PTR = (name: string, data: string) => ({ type: "PTR", name, ttl: 30, class: "IN", data });
const NS = (name: string, data: string) => ({ type: "NS", name, ttl: 30, class: "IN", data });
const SOA = {
  type: "SOA",
  name: "cluster.local",
  ttl: 30,
  class: "IN",
  data: {
    mname: "ns.dns.cluster.local",
    rname: "hostmaster.cluster.local",
    serial: 1,
    refresh: 7200,
    retry: 1800,
    expire: 86400,
    minimum: 5,
  },
};

const BANK = A("www.bank.example", "203.0.113.66");

/** A hostile cluster DNS: every answer carries records about names it does not own. */
const answersByName: Record<string, { answers: unknown[]; authorities?: unknown[] }> = {
  "web.default.svc.cluster.local": {
    answers: [A("web.default.svc.cluster.local", "10.96.0.20"), BANK],
    authorities: [NS("bank.example", "ns.evil.example"), SOA],
  },
  "alias.default.svc.cluster.local": {
    answers: [
      CNAME("alias.default.svc.cluster.local", "web.default.svc.cluster.local"),
      A("web.default.svc.cluster.local", "10.96.0.20"),
      A("other.default.svc.cluster.local", "10.96.0.99"),
      BANK,
    ],
  },
  "ext.default.svc.cluster.local": {
    answers: [
      CNAME("ext.default.svc.cluster.local", "db.example.com"),
      A("db.example.com", "203.0.113.66"),
    ],
  },
  "hop.default.svc.cluster.local": {
    answers: [
      CNAME("hop.default.svc.cluster.local", "www.bank.example"),
      CNAME("www.bank.example", "web.default.svc.cluster.local"),
      A("web.default.svc.cluster.local", "10.96.0.20"),
    ],
  },
  "loop.default.svc.cluster.local": {
    answers: [
      CNAME("loop.default.svc.cluster.local", "loop2.default.svc.cluster.local"),
      CNAME("loop2.default.svc.cluster.local", "loop.default.svc.cluster.local"),
      BANK,
    ],
  },
  "20.0.96.10.in-addr.arpa": {
    answers: [
      PTR("20.0.96.10.in-addr.arpa", "web.default.svc.cluster.local"),
      PTR("1.1.1.1.in-addr.arpa", "evil.example"),
    ],
  },
};

function hostileCluster(): DnsServerOptions["cluster"] {
  return (raw) => {
    const q = decode(raw)!;
    const name = q.questions![0].name;
    const r = answersByName[name];
    return Promise.resolve(encode({
      id: q.id,
      type: "response",
      flags: (1 << 8) | (1 << 7) | (r ? 0 : 3),
      questions: q.questions,
      answers: r?.answers ?? [BANK],
      authorities: r?.authorities ?? [SOA, NS("bank.example", "ns.evil.example")],
    } as Message));
  };
}

/** The machine's own resolver: knows db.example.com. */
function upstream(asked: string[]): NonNullable<DnsServerOptions["upstream"]> {
  return (raw) => {
    const q = decode(raw)!;
    const name = q.questions![0].name;
    asked.push(`${name}/${q.questions![0].type}`);
    const answers = name === "db.example.com" && q.questions![0].type === "A"
      ? [A("db.example.com", "93.184.216.34")]
      : [];
    return Promise.resolve(encode({
      id: q.id,
      type: "response",
      flags: (1 << 8) | (1 << 7),
      questions: q.questions,
      answers,
    } as Message));
  };
}

function setup(up: DnsServerOptions["upstream"] = null) {
  const server = new DnsServer({ scope: () => scope, cluster: hostileCluster(), upstream: up });
  const ask = async (name: string, type = "A") => {
    const raw = await server.handle(
      encode(
        {
          id: 7,
          type: "query",
          flags: 1 << 8,
          questions: [{ name, type, class: "IN" }],
        } as Message,
      ),
      "udp",
    );
    const m = decode(raw!)!;
    const show = (rs: unknown[] | undefined) =>
      ((rs ?? []) as DnsRecord[]).map((r) =>
        `${r.name} ${r.type} ${JSON.stringify((r as { data: unknown }).data)}`
      );
    return {
      rcode: (m.flags ?? 0) & 15,
      answers: show(m.answers),
      authorities: show(m.authorities).map((a) => a.split(" ").slice(0, 2).join(" ")),
    };
  };
  return { server, ask };
}

Deno.test("DnsServer drops answer and authority records for names the cluster does not own", async () => {
  const t = setup();
  for (let i = 0; i < 2; i++) { // the second time from the cache
    const r = await t.ask("web.default.svc.cluster.local");
    assert.deepEqual(r.answers, ['web.default.svc.cluster.local A "10.96.0.20"'], `round ${i}`);
    assert.deepEqual(r.authorities, ["cluster.local SOA"], `round ${i}`);
  }
  const nx = await t.ask("nothere.default.svc.cluster.local");
  assert.equal(nx.rcode, 3);
  assert.deepEqual(nx.answers, []);
  assert.deepEqual(nx.authorities, ["cluster.local SOA"]);
  assert.ok(t.server.stats.offChain >= 6, `offChain ${t.server.stats.offChain}`);
});

Deno.test("DnsServer keeps the CNAME chain inside the cluster domain and nothing beside it", async () => {
  const t = setup();
  const r = await t.ask("alias.default");
  assert.deepEqual(r.answers, [
    'alias.default CNAME "web.default.svc.cluster.local"',
    'web.default.svc.cluster.local A "10.96.0.20"',
  ]);
  // A chain that leaves the cluster and comes back is cut where it leaves.
  const hop = await t.ask("hop.default.svc.cluster.local");
  assert.deepEqual(hop.answers, ['hop.default.svc.cluster.local CNAME "www.bank.example"']);
  // A loop ends.
  const loop = await t.ask("loop.default.svc.cluster.local");
  assert.equal(loop.answers.length, 2);
  assert.ok(!loop.answers.some((a) => a.includes("bank")));
});

Deno.test("DnsServer keeps PTR records in the cluster's reverse zones only", async () => {
  const t = setup();
  const r = await t.ask("20.0.96.10.in-addr.arpa", "PTR");
  assert.deepEqual(r.answers, ['20.0.96.10.in-addr.arpa PTR "web.default.svc.cluster.local"']);
});

Deno.test("DnsServer resolves a CNAME out of the cluster (ExternalName) upstream, not from the cluster", async () => {
  const asked: string[] = [];
  const withUpstream = setup(upstream(asked));
  const r = await withUpstream.ask("ext.default.svc.cluster.local");
  assert.deepEqual(r.answers, [
    'ext.default.svc.cluster.local CNAME "db.example.com"',
    'db.example.com A "93.184.216.34"',
  ]);
  assert.deepEqual(asked, ["db.example.com/A"]);
  // With split DNS (no upstream here) the CNAME goes back alone; the system resolver follows it.
  const split = setup();
  const s = await split.ask("ext.default.svc.cluster.local");
  assert.deepEqual(s.answers, ['ext.default.svc.cluster.local CNAME "db.example.com"']);
  // Asked for the CNAME itself, nothing is chased.
  const c = await withUpstream.ask("ext.default.svc.cluster.local", "CNAME");
  assert.deepEqual(c.answers, ['ext.default.svc.cluster.local CNAME "db.example.com"']);
  assert.equal(asked.length, 1);
});
