// Security review M8: discovery reads cluster-wide lists in pages (a large cluster's pod specs
// are never all in memory), and the dry-run probe is optional.
import assert from "node:assert/strict";
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { discoverNetworks, LIST_PAGE, listPaged } from "./discovery.ts";

function apiError(code: number): KubeApiError {
  return new KubeApiError(`${code}`, code, { kind: "Status", code } as never);
}

Deno.test("discovery lists pods and services in pages of LIST_PAGE; a 403 probe is quiet", async () => {
  const gets: string[] = [];
  const posts: string[] = [];
  // 3 pages of pods (10.244.0.1 … 10.244.4.x), 2 of services.
  const podPage = (i: number) => ({
    metadata: { continue: i < 2 ? `p${i + 1}` : "" },
    items: Array.from({ length: 3 }, (_, j) => ({
      status: { podIP: `10.244.${i * 2}.${j + 1}` },
    })).concat([{ spec: { hostNetwork: true }, status: { podIP: "192.168.1.5" } } as never]),
  });
  const svcPage = (i: number) => ({
    metadata: i === 0 ? { continue: "s1" } : {},
    items: [{ spec: { clusterIPs: [`10.96.${i}.10`] } }, { spec: { clusterIP: "None" } }],
  });
  const client = {
    get(path: string) {
      gets.push(path);
      const [p, q] = path.split("?");
      const params = new URLSearchParams(q ?? "");
      switch (p) {
        case "/apis/networking.k8s.io/v1/servicecidrs":
          return Promise.reject(apiError(404));
        case "/api/v1/nodes":
          return Promise.resolve({ items: [{ spec: {} }] });
        case "/api/v1/namespaces":
          return Promise.resolve({ items: [{ metadata: { name: "default" } }] });
        case "/api/v1/pods": {
          assert.equal(params.get("limit"), String(LIST_PAGE));
          const c = params.get("continue");
          return Promise.resolve(podPage(c === null ? 0 : Number(c.slice(1))));
        }
        case "/api/v1/services": {
          assert.equal(params.get("limit"), String(LIST_PAGE));
          return Promise.resolve(svcPage(params.get("continue") === null ? 0 : 1));
        }
      }
      return Promise.reject(apiError(404));
    },
    post(path: string) {
      posts.push(path);
      return Promise.reject(apiError(403));
    },
  } as unknown as KubeClient;
  const n = await discoverNetworks(client, "kconnect");
  assert.deepEqual(gets.filter((g) => g.startsWith("/api/v1/pods")), [
    `/api/v1/pods?limit=${LIST_PAGE}`,
    `/api/v1/pods?limit=${LIST_PAGE}&continue=p1`,
    `/api/v1/pods?limit=${LIST_PAGE}&continue=p2`,
  ]);
  assert.deepEqual(n.podCidrs, [{ cidr: "10.244.0.0/21", source: "cover of 9 pod IPs" }]);
  assert.equal(gets.filter((g) => g.startsWith("/api/v1/services")).length, 2);
  assert.equal(n.serviceCidrs[0].source, "cover of 2 service IPs");
  assert.equal(posts.length, 1, "the probe stops at the first 403");
  assert.deepEqual(n.warnings, [], "no warning: the install did not grant the probe");
});

Deno.test("listPaged() starts over when the continue token expired (410), at most twice", async () => {
  let calls = 0;
  const seen: number[] = [];
  const client = {
    get(path: string) {
      calls++;
      if (path.includes("continue=") && calls === 2) return Promise.reject(apiError(410));
      return Promise.resolve({
        metadata: { continue: path.includes("continue=") ? "" : "next" },
        items: [calls],
      });
    },
  } as unknown as KubeClient;
  await listPaged<number>(client, "/api/v1/pods", (items) => seen.push(...items), () => {
    seen.length = 0;
  });
  assert.deepEqual(seen, [3, 4]);
  const always = {
    get: () => Promise.reject(apiError(410)),
  } as unknown as KubeClient;
  await assert.rejects(listPaged(always, "/api/v1/pods", () => {}), KubeApiError);
});
