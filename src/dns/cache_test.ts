import assert from "node:assert/strict";
import { DnsCache } from "./cache.ts";
import type { Message } from "./message.ts";

const a = (ttl: number) => ({
  type: "A",
  name: "web.default.svc.cluster.local",
  ttl,
  data: "10.96.0.20",
});
const soa = {
  type: "SOA",
  name: "cluster.local",
  ttl: 30,
  data: { mname: "ns", rname: "h", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 10 },
};
const ok = (ttl: number) => ({ type: "response", flags: 0, answers: [a(ttl)] }) as Message;

Deno.test("DnsCache keeps answers for their TTL and counts the TTL down", () => {
  const c = new DnsCache();
  const k = DnsCache.key("Web.default.svc.cluster.local.", "A");
  c.put(k, ok(30), 0);
  assert.equal((c.get(k, 10_500)!.answers[0] as { ttl: number }).ttl, 20);
  assert.equal(c.get(k, 30_000), null);
  c.put(k, ok(0), 0);
  assert.equal(c.get(k, 0), null, "TTL 0 is not cached");
});

Deno.test("DnsCache keeps NXDOMAIN for the SOA minimum, and nothing for SERVFAIL", () => {
  const c = new DnsCache();
  c.put(
    "n",
    { type: "response", flags: 3, answers: [], authorities: [soa] } as unknown as Message,
    0,
  );
  assert.equal(c.get("n", 9_999)?.rcode, 3);
  assert.equal(c.get("n", 10_000), null);
  c.put("f", { type: "response", flags: 2 } as Message, 0);
  assert.equal(c.get("f", 0), null);
});

Deno.test("DnsCache evicts the least recently used entry past maxEntries", () => {
  const c = new DnsCache({ maxEntries: 2 });
  c.put("a", ok(60), 0);
  c.put("b", ok(60), 0);
  c.get("a", 1);
  c.put("c", ok(60), 2);
  assert.ok(c.get("a", 3) !== null);
  assert.equal(c.get("b", 3), null);
  assert.equal(c.size, 2);
});

Deno.test("DnsCache.dedupe() runs one lookup for concurrent callers", async () => {
  const c = new DnsCache();
  let calls = 0;
  const lookup = () => new Promise<number>((r) => setTimeout(() => r(++calls), 10));
  const got = await Promise.all([
    c.dedupe("k", lookup),
    c.dedupe("k", lookup),
    c.dedupe("k", lookup),
  ]);
  assert.deepEqual(got, [1, 1, 1]);
  assert.equal(await c.dedupe("k", lookup), 2);
});
