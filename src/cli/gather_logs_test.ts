import assert from "node:assert/strict";
import { gatherLogs, redact } from "./gather_logs.ts";

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

Deno.test("redact() removes what the review found passing (L1): underscore keys, API keys, INI, cloud tokens", () => {
  const secrets = {
    github: "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    aws: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    apiKey: "a1b2c3d4e5f6",
    ini: "Zx9Yw8Vu7Ts6",
    eks: "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9uPUdldENhbGxlcklkZW50aXR5",
    gcp: "ya29.a0AfH6SMBx-very_long.token",
    header: "hdr-0123456789",
    cookie: "sid=abcdef0123",
    field: "lfv-0011223344",
    password: "hunter2hunter2",
  };
  const text = [
    `{"GITHUB_TOKEN": "${secrets.github}", "AWS_SECRET_ACCESS_KEY": "${secrets.aws}"}`,
    `{"X-Api-Key": "${secrets.apiKey}", "namespace": "default", "session": null}`,
    `aws_secret_access_key = ${secrets.ini}`,
    `2025-01-01T00:00:00.000Z WARN  k8s: exec plugin printed ${secrets.eks} and ${secrets.gcp}`,
    `X-Auth-Token: ${secrets.header}`,
    `Cookie: ${secrets.cookie}`,
    `2025-01-01T00:00:00.000Z DEBUG dial: request client_secret=${secrets.field} port=443`,
    `  "db_password": "${secrets.password}",`,
    "Authorization: Bearer kc-admin-123456",
  ].join("\n");
  const out = redact(text);
  for (const [what, secret] of Object.entries(secrets)) {
    assert.ok(!out.includes(secret), `${what}: ${secret} is gone:\n${out}`);
  }
  // What a bug report needs stays readable.
  assert.match(out, /"namespace": "default"/);
  assert.match(out, /"session": null/);
  assert.match(out, /WARN {2}k8s: exec plugin printed \[REDACTED\] and \[REDACTED\]/);
  assert.match(out, /port=443/);
  assert.match(out, /Authorization: Bearer \[REDACTED\]/);
});

Deno.test({
  name: "gather-logs writes its archive 0600, redacted, also over an existing 0644 file",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kc-gather-" });
    try {
      const logFile = `${dir}/daemon.log`;
      await Deno.writeTextFile(logFile, '{"GITHUB_TOKEN": "ghp_secretsecretsecretsecret01"}\n');
      for (const existing of [false, true]) {
        const output = `${dir}/out-${existing}.tar.gz`;
        if (existing) await Deno.writeTextFile(output, "old", { mode: 0o644 });
        await gatherLogs({
          output,
          logFile,
          socket: `${dir}/no.sock`,
          stateDir: `${dir}/state`,
        });
        assert.equal((await Deno.stat(output)).mode! & 0o777, 0o600, `existing=${existing}`);
        const list = await new Deno.Command("tar", { args: ["-xzOf", output] }).output();
        assert.ok(list.success, "a valid archive");
        const text = new TextDecoder().decode(list.stdout);
        assert.match(text, /"GITHUB_TOKEN": "\[REDACTED\]"/);
        assert.ok(!text.includes("ghp_secret"));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
