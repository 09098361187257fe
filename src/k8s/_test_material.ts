/**
 * A valid `kconnect credentials --json` message for tests: static token `t` for `https://k:6443`,
 * context `c`, with `overrides` on top.
 *
 * @module
 */
import type { CredentialMaterial } from "./material.ts";

/** The sample material with `overrides` applied. */
export function sampleMaterial(overrides: Partial<CredentialMaterial> = {}): CredentialMaterial {
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
    token: "t",
    headers: {},
    expiresAt: null,
    dynamic: false,
    ...overrides,
  };
}
