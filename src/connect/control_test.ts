/**
 * The control stream's boundary (security review C1/H1): cluster info from a traffic manager
 * that is not trusted. Driven through `openControl`, as the connection uses it.
 */
import assert from "node:assert/strict";
import { openControl, parseInfo } from "./control.ts";
import type { StreamOpener } from "../dial/tunnel.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";

/** A control stream that delivers `infos` as u32 frames, then ends. */
function opener(infos: unknown[]): StreamOpener {
  const parts = infos.map((i) => new TextEncoder().encode(JSON.stringify(i)));
  const total = parts.reduce((n, p) => n + 4 + p.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    new DataView(bytes.buffer).setUint32(at, p.length);
    bytes.set(p, at + 4);
    at += 4 + p.length;
  }
  let pos = 0;
  const stream = {
    read(p: Uint8Array): Promise<number | null> {
      if (pos >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - pos);
      p.set(bytes.subarray(pos, pos + n));
      pos += n;
      return Promise.resolve(n);
    },
    write: (p: Uint8Array) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close() {},
    reset() {},
  };
  // deno-lint-ignore no-explicit-any
  return { open: () => Promise.resolve(stream as any) };
}

const GOOD: ClusterInfo = {
  type: "info",
  managerVersion: "0.1.0",
  clusterDomain: "cluster.local",
  dnsServer: "10.96.0.10",
  serviceCidrs: [{ cidr: "10.96.0.0/12", source: "ServiceCIDR kubernetes" }],
  podCidrs: [{ cidr: "10.244.0.0/24", source: "podCIDRs of 1 node" }],
  namespaces: ["default", "kube-system"],
  warnings: [],
};

async function received(infos: unknown[]): Promise<ClusterInfo[]> {
  const later: ClusterInfo[] = [];
  const c = await openControl(opener(infos), (i) => later.push(i));
  await c.done;
  return [c.info, ...later];
}

Deno.test("parseInfo drops namespaces that are not DNS labels (path traversal, newlines, empty, trailing dot)", async () => {
  const bad = ["../x", "a/b", "a\nb", "", "com.", "../sudoers.d/x\nALL ALL=(ALL) NOPASSWD:ALL"];
  const [info] = await received([{ ...GOOD, namespaces: ["default", ...bad, "shop"] }]);
  assert.deepEqual(info.namespaces, ["default", "shop"]);
  for (const b of bad) {
    assert.ok(
      info.refused?.some((r) => r.item === `namespace ${JSON.stringify(b)}`),
      `refusal recorded for ${JSON.stringify(b)}`,
    );
  }
});

Deno.test("parseInfo refuses a cluster domain that is not a DNS name: ../x, a\\nb, empty, the root", async () => {
  for (
    const d of ["../x", "a\nb", "", ".", "evil\nnameserver 203.0.113.9\noptions ndots:0", "a..b"]
  ) {
    const [info] = await received([{ ...GOOD, clusterDomain: d }]);
    assert.notEqual(info.clusterDomain, d, JSON.stringify(d));
    assert.match(info.clusterDomain, /^[a-z0-9.-]+$/, JSON.stringify(d));
    assert.ok(
      info.refused?.some((r) => r.item.startsWith("cluster domain") && r.from.length > 0),
      `refusal recorded for ${JSON.stringify(d)}`,
    );
  }
});

Deno.test("parseInfo normalises a valid cluster domain and keeps valid entries", async () => {
  const [info] = await received([{ ...GOOD, clusterDomain: "Cluster.Local." }]);
  assert.equal(info.clusterDomain, "cluster.local");
  assert.deepEqual(info.serviceCidrs, GOOD.serviceCidrs);
  assert.deepEqual(info.namespaces, GOOD.namespaces);
  assert.deepEqual(info.refused, []);
});

Deno.test("parseInfo drops prefixes that do not parse and cleans text; later infos are checked too", async () => {
  const [first, later] = await received([
    {
      ...GOOD,
      podCidrs: [{ cidr: "10.244.0.0/33", source: "x" }, { cidr: 7 }, {
        cidr: "10.245.0.0/24",
        source: "a\u001b]0;owned\u0007b",
      }],
    },
    { ...GOOD, namespaces: ["default", "../y"] },
  ]);
  assert.deepEqual(first.podCidrs.map((c) => c.cidr), ["10.245.0.0/24"]);
  assert.ok(![...first.podCidrs[0].source].some((ch) => ch.charCodeAt(0) < 0x20));
  assert.deepEqual(later.namespaces, ["default"]);
});

Deno.test("a manager that refuses the session is reported with its reason, escaped", async () => {
  await assert.rejects(
    openControl(
      opener([{
        type: "error",
        message: "traffic manager busy: 32 sessions (--max-sessions)\x1b[2J",
      }]),
      () => {},
    ),
    (err: Error) => {
      assert.match(err.message, /refused the session: .*32 sessions \(--max-sessions\)/);
      assert.ok(!err.message.includes("\x1b"), err.message);
      return true;
    },
  );
});

Deno.test("parseInfo with the policy refuses cluster domains com, example.com, empty and x\\ny", () => {
  const bytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const none = { clusterDomains: [], alsoProxy: [] };
  for (const d of ["com", "example.com", "", "x\ny", "."]) {
    const info = parseInfo(bytes({ ...GOOD, clusterDomain: d }), none);
    assert.equal(info.clusterDomain, "cluster.local", JSON.stringify(d));
    assert.equal(info.refused!.length, 1, JSON.stringify(d));
    assert.match(info.refused![0].item, /^cluster domain /);
  }
  const allowed = parseInfo(bytes({ ...GOOD, clusterDomain: "k8s.example.com" }), {
    ...none,
    clusterDomains: ["k8s.example.com"],
  });
  assert.equal(allowed.clusterDomain, "k8s.example.com");
});
