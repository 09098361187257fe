import assert from "node:assert/strict";
import { redact } from "./gather_logs.ts";

Deno.test("redact() removes tokens, keys, certificates and JWTs, and keeps the rest", () => {
  const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----";
  const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
  const text = [
    "Authorization: Bearer kc-admin-123456",
    `{"token":"s3cret","caPem":"x","clientKeyPem":"${
      pem.replaceAll("\n", "\\n")
    }","context":"prod"}`,
    "    token: abcdef",
    "    client-key-data: LS0tLS1CRUdJTg==",
    pem,
    `id_token=${jwt}`,
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI",
    "2025-01-01T00:00:00.000Z INFO  daemon: connected context=prod uid=1000",
  ].join("\n");
  const out = redact(text);
  for (
    const secret of [
      "kc-admin-123456",
      "s3cret",
      "abcdef",
      "LS0tLS1CRUdJTg",
      "MIIEvQIBADANBg",
      jwt,
      "wJalrXUtnFEMI",
    ]
  ) {
    assert.ok(!out.includes(secret), `${secret} is gone:\n${out}`);
  }
  assert.match(out, /"context":"prod"/);
  assert.match(out, /daemon: connected context=prod uid=1000/);
});
