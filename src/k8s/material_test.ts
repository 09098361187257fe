import assert from "node:assert/strict";
import {
  accessFromMaterial,
  bearerToken,
  type CredentialMaterial,
  parseMaterial,
} from "./material.ts";
import { sampleMaterial } from "./_test_material.ts";

function material(token: string, expiresAt: string | null = null): CredentialMaterial {
  return sampleMaterial({ token, expiresAt, dynamic: true });
}

Deno.test("bearerToken() moves a bearer token out of the headers; parseMaterial() round-trips", () => {
  const { token, headers } = bearerToken({ Authorization: "Bearer abc", "X-Extra": "1" });
  assert.equal(token, "abc");
  assert.deepEqual(headers, { "X-Extra": "1" });
  assert.deepEqual(bearerToken({ authorization: "Basic eDp5" }), {
    token: null,
    headers: { authorization: "Basic eDp5" },
  });
  const m = { ...material("abc", "2030-01-01T00:00:00.000Z"), namespace: "ns", headers };
  assert.deepEqual(parseMaterial(JSON.stringify(m)), m);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, server: "file:///x" })), /server/);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, v: 2 })), /version 2/);
  assert.throws(() => parseMaterial(JSON.stringify({ ...m, context: 1 })), /"context"/);
});

Deno.test("accessFromMaterial().headers() refreshes before expiry, every period, and after invalidate()", async () => {
  let now = Date.parse("2030-01-01T00:00:00Z");
  let fetches = 0;
  const LIFETIME = 600_000;
  const EARLY = 60_000;
  const next = (expiring = true) => () => {
    fetches++;
    return Promise.resolve(
      material(`t${fetches}`, expiring ? new Date(now + LIFETIME).toISOString() : null),
    );
  };
  /** Calls headers() until the background refresh has landed (it shares one fetch). */
  const settled = async (access: { headers(): Promise<Record<string, string>> }, want: string) => {
    for (let i = 0; i < 1000; i++) {
      const got = (await access.headers()).Authorization;
      if (got === want) return;
      await new Promise((r) => setTimeout(r, 0));
    }
    throw new Error(`the background refresh never delivered ${want}`);
  };

  // Before expiry: the period (1 h) is longer than the lifetime, so only earlyMs can be why the
  // material is fetched again, at expiry - earlyMs (540 s), not at expiry (600 s).
  const access = accessFromMaterial(material("t0", new Date(now + LIFETIME).toISOString()), {
    refresh: next(),
    refreshMs: 3_600_000,
    earlyMs: EARLY,
    now: () => now,
  });
  try {
    assert.deepEqual(await access.headers(), { Authorization: "Bearer t0" });
    now += LIFETIME - EARLY - 1_000;
    assert.equal((await access.headers()).Authorization, "Bearer t0");
    assert.equal(fetches, 0, "fetched before expiry - earlyMs");
    // Inside the early window but still valid: answered at once, refreshed in the background.
    now += 2_000;
    assert.equal((await access.headers()).Authorization, "Bearer t0");
    assert.equal(fetches, 1, "not fetched within earlyMs of the expiry");
    await settled(access, "Bearer t1");
    assert.equal(fetches, 1);
    // Expired: the caller waits for new material.
    now += LIFETIME + 100_000;
    assert.equal((await access.headers()).Authorization, "Bearer t2");
    assert.equal(fetches, 2);
    // A 401: the next call fetches even though the token has not expired.
    access.invalidate!();
    assert.equal((await access.headers()).Authorization, "Bearer t3");
    assert.equal(fetches, 3);
  } finally {
    access.httpClient.close();
  }

  // Material without an expiry is fetched again every refreshMs.
  fetches = 0;
  const periodic = accessFromMaterial(material("t0"), {
    refresh: next(false),
    refreshMs: 300_000,
    earlyMs: EARLY,
    now: () => now,
  });
  try {
    now += 299_000;
    assert.equal((await periodic.headers()).Authorization, "Bearer t0");
    assert.equal(fetches, 0);
    now += 2_000;
    assert.equal((await periodic.headers()).Authorization, "Bearer t0");
    assert.equal(fetches, 1);
    await settled(periodic, "Bearer t1");
    now += 299_000;
    assert.equal((await periodic.headers()).Authorization, "Bearer t1");
    assert.equal(fetches, 1, "the period starts again at the last fetch");
  } finally {
    periodic.httpClient.close();
  }
});
