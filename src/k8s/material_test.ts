import assert from "node:assert/strict";
import {
  accessFromMaterial,
  type CredentialMaterial,
  materialFrom,
  parseMaterial,
} from "./material.ts";

function material(token: string, expiresAt: string | null = null): CredentialMaterial {
  return {
    v: 1,
    server: "https://k:6443",
    context: "c",
    clusterName: "k",
    userName: "u",
    namespace: "default",
    source: "/kc",
    caPem: null,
    clientCertPem: null,
    clientKeyPem: null,
    token,
    headers: {},
    expiresAt,
    dynamic: true,
  };
}

Deno.test("materialFrom() moves a bearer token out of the headers; parseMaterial() round-trips", () => {
  const m = materialFrom({
    server: "https://k:6443",
    context: "c",
    clusterName: "k",
    userName: "u",
    namespace: "ns",
    source: "/kc",
    headers: { Authorization: "Bearer abc", "X-Extra": "1" },
    expiresAt: "2030-01-01T00:00:00.000Z",
    dynamic: true,
  });
  assert.equal(m.token, "abc");
  assert.deepEqual(m.headers, { "X-Extra": "1" });
  assert.deepEqual(parseMaterial(JSON.stringify(m)), m);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, server: "file:///x" })), /server/);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, v: 2 })), /version 2/);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, context: 1 })), /"context"/);
});

Deno.test("accessFromMaterial().headers() refreshes before expiry, every period, and after invalidate()", async () => {
  let now = Date.parse("2030-01-01T00:00:00Z");
  let fetches = 0;
  const next = () => {
    fetches++;
    return Promise.resolve(material(`t${fetches}`, new Date(now + 600_000).toISOString()));
  };
  const access = accessFromMaterial(material("t0", new Date(now + 600_000).toISOString()), {
    refresh: next,
    refreshMs: 300_000,
    earlyMs: 60_000,
    now: () => now,
  });
  try {
    assert.deepEqual(await access.headers(), { Authorization: "Bearer t0" });
    now += 299_000;
    assert.equal((await access.headers()).Authorization, "Bearer t0");
    assert.equal(fetches, 0);
    // Past the refresh period but still valid: answered at once, refreshed in the background.
    now += 2_000;
    assert.equal((await access.headers()).Authorization, "Bearer t0");
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(fetches, 1);
    assert.equal((await access.headers()).Authorization, "Bearer t1");
    // Expired: the caller waits for new material.
    now += 700_000;
    assert.equal((await access.headers()).Authorization, "Bearer t2");
    // A 401: the next call fetches even though the token has not expired.
    access.invalidate!();
    assert.equal((await access.headers()).Authorization, "Bearer t3");
    assert.equal(fetches, 3);
  } finally {
    access.httpClient.close();
  }
});
