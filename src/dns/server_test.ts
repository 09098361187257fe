import assert from "node:assert/strict";
import { Cidr } from "../wire/address.ts";
import { decode, encode, type Message } from "./message.ts";
import type { DnsScope } from "./names.ts";
import { DnsServer, type DnsServerOptions } from "./server.ts";

const scope: DnsScope = {
  clusterDomain: "cluster.local",
  namespaces: new Set(["default", "shop"]),
  namespace: "default",
  cidrs: [Cidr.parse("10.96.0.0/12")!],
};

const SOA = {
  type: "SOA",
  name: "cluster.local",
  ttl: 30,
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

/** A fake cluster DNS: web.default → 10.96.0.20, db.default → two pods, else NXDOMAIN. */
function fakeCluster(log: string[]): DnsServerOptions["cluster"] {
  return (raw) => {
    const q = decode(raw)!;
    const name = q.questions![0].name;
    log.push(`${name}/${q.questions![0].type}`);
    const records: Record<string, string[]> = {
      "web.default.svc.cluster.local": ["10.96.0.20"],
      "db.default.svc.cluster.local": ["10.244.0.20", "10.244.0.21"],
    };
    const ips = records[name];
    const answers = q.questions![0].type === "A" && ips
      ? ips.map((ip) => ({ type: "A", name, ttl: 30, data: ip }))
      : [];
    return Promise.resolve(encode({
      id: q.id,
      type: "response",
      flags: (1 << 8) | (1 << 7) | (ips ? 0 : 3),
      questions: q.questions,
      answers,
      authorities: ips ? [] : [SOA],
    } as Message));
  };
}

function query(name: string, type = "A", id = 1234): Uint8Array {
  return encode(
    { id, type: "query", flags: 1 << 8, questions: [{ name, type, class: "IN" }] } as Message,
  );
}

function setup(upstream: DnsServerOptions["upstream"] = null) {
  const log: string[] = [];
  const server = new DnsServer({ scope: () => scope, cluster: fakeCluster(log), upstream });
  const ask = async (name: string, type = "A", transport: "udp" | "tcp" = "udp") => {
    const raw = await server.handle(query(name, type), transport);
    assert.ok(raw !== null);
    const m = decode(raw)!;
    return {
      m,
      rcode: (m.flags ?? 0) & 15,
      data: (m.answers ?? []).map((a) => `${a.name} ${(a as { data: string }).data}`),
    };
  };
  return { server, log, ask };
}

Deno.test("DnsServer answers short and full cluster names under the name asked", async () => {
  const t = setup();
  for (const name of ["web.default.svc.cluster.local", "web.default.svc", "web.default", "web"]) {
    const r = await t.ask(name);
    assert.equal(r.rcode, 0, name);
    assert.deepEqual(r.data, [`${name} 10.96.0.20`]);
    assert.equal(r.m.id, 1234);
  }
  assert.deepEqual(t.log, ["web.default.svc.cluster.local/A"], "asked once, then cached");
  assert.equal(t.server.stats.cacheHits, 3);
});

Deno.test("DnsServer returns every pod IP of a headless service and NXDOMAIN with the SOA", async () => {
  const t = setup();
  assert.deepEqual((await t.ask("db.default.svc.cluster.local")).data.sort(), [
    "db.default.svc.cluster.local 10.244.0.20",
    "db.default.svc.cluster.local 10.244.0.21",
  ]);
  const nx = await t.ask("nope.default.svc.cluster.local");
  assert.equal(nx.rcode, 3);
  assert.equal(nx.m.authorities?.[0].type, "SOA");
});

Deno.test("DnsServer answers impossible cluster names itself, without asking the cluster", async () => {
  const t = setup();
  const r = await t.ask("www.example.com.default.svc.cluster.local");
  assert.equal(r.rcode, 3);
  assert.deepEqual(t.log, []);
});

Deno.test("DnsServer forwards other names upstream unchanged, or refuses them under split DNS", async () => {
  const seen: string[] = [];
  const upstream = (raw: Uint8Array) => {
    seen.push(decode(raw)!.questions![0].name);
    const q = decode(raw)!;
    return Promise.resolve(encode({
      id: q.id,
      type: "response",
      flags: 1 << 7,
      questions: q.questions,
      answers: [{ type: "A", name: q.questions![0].name, ttl: 60, data: "192.0.2.10" }],
    } as Message));
  };
  const t = setup(upstream);
  assert.deepEqual((await t.ask("www.example.com")).data, ["www.example.com 192.0.2.10"]);
  // A short name the cluster does not know falls back to the upstream.
  assert.deepEqual((await t.ask("printer")).data, ["printer 192.0.2.10"]);
  assert.deepEqual(seen, ["www.example.com", "printer"]);
  const split = setup(null);
  assert.equal((await split.ask("www.example.com")).rcode, 5, "REFUSED");
});

Deno.test("DnsServer answers FORMERR to malformed queries and never throws", async () => {
  const t = setup();
  const garbage = new Uint8Array([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
  const r = await t.server.handle(garbage, "udp");
  assert.ok(r !== null);
  assert.deepEqual([r[0], r[1], r[3] & 15], [0xab, 0xcd, 1]);
  assert.equal(
    await t.server.handle(new Uint8Array([1, 2, 3]), "udp"),
    null,
    "no header: no answer",
  );
  const long = `${"a".repeat(63)}.`.repeat(5) + "cluster.local";
  const tooLong = await t.server.handle(query(long), "udp");
  assert.equal(tooLong![3] & 15, 1);
  assert.equal(t.server.stats.malformed, 3, "garbage, no header, name too long");
  // Random junk shaped so that FORMERR is due for every one: a standard query (QR 0, opcode
  // 0) whose question count is not 1, so it is malformed whether or not it parses. Every other
  // one has small record counts (no question, or two), so that part of it parses and is refused
  // for its questions rather than by the parser.
  let seed = 0x5eed;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed & 0xff;
  };
  let answered = 0;
  let parsed = 0;
  for (let i = 0; i < 2000; i++) {
    const junk = Uint8Array.from({ length: 1 + (i % 300) }, random);
    if (junk.length > 2) junk[2] &= 0x07; // QR 0, opcode 0; AA, TC, RD random
    if (junk.length > 5 && junk[4] === 0 && junk[5] === 1) junk[5] = 2;
    if (i % 2 === 1 && junk.length >= 12) junk.set([0, i % 4 === 1 ? 0 : 2, 0, 0, 0, 0, 0, 0], 4);
    if (decode(junk) !== null) parsed++;
    const r = await t.server.handle(junk, "udp");
    if (junk.length < 12) {
      assert.equal(r, null, `${junk.length}-byte junk has no header to answer`);
      continue;
    }
    assert.ok(r !== null, `no answer to junk #${i}`);
    assert.deepEqual(
      [r[0], r[1], r[2] >> 7, r[3] & 15],
      [junk[0], junk[1], 1, 1],
      `junk #${i}: same ID, a response, FORMERR`,
    );
    answered++;
  }
  assert.equal(answered, 2000 - 7 * 11, "lengths 1-11 come up 7 times each");
  // Both paths to FORMERR were taken: the parser's and the question check's (479 parse today).
  assert.ok(parsed >= 400 && parsed < answered, `${parsed} of the junk queries parse`);
  assert.equal(t.server.stats.malformed, 3 + 2000, "every junk query counted as malformed");
  assert.equal(t.log.length, 0, "junk never reaches the cluster");
});

Deno.test("DnsServer truncates UDP answers over the client's limit so it retries over TCP", async () => {
  const many = Array.from({ length: 60 }, (_, i) => `10.244.1.${i}`);
  const server = new DnsServer({
    scope: () => scope,
    upstream: null,
    cluster: (raw) => {
      const q = decode(raw)!;
      return Promise.resolve(encode({
        id: q.id,
        type: "response",
        flags: 1 << 7,
        questions: q.questions,
        answers: many.map((ip) => ({ type: "A", name: q.questions![0].name, ttl: 30, data: ip })),
      } as Message));
    },
  });
  const udp = decode((await server.handle(query("big.default.svc.cluster.local"), "udp"))!)!;
  assert.ok(udp.flag_tc);
  assert.equal(udp.answers?.length ?? 0, 0);
  const tcp = decode((await server.handle(query("big.default.svc.cluster.local"), "tcp"))!)!;
  assert.equal(tcp.answers?.length, 60);
});

Deno.test("DnsServer answers the self-check probe locally", async () => {
  const t = setup();
  t.server.setProbe("kconnect-probe-1234.cluster.local", "198.18.0.3");
  assert.deepEqual((await t.ask("kconnect-probe-1234.cluster.local")).data, [
    "kconnect-probe-1234.cluster.local 198.18.0.3",
  ]);
  assert.equal(t.server.stats.probes, 1);
  assert.deepEqual(t.log, []);
});
