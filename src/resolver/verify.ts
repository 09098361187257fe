/**
 * The self-check after configuring the resolver: a lookup through the system resolver (glibc's
 * getaddrinfo, as every program does it) of a name only kconnect's server answers.
 *
 * @module
 */
import type { DnsServer } from "../dns/server.ts";

/** The result of the check. */
export interface VerifyResult {
  ok: boolean;
  /** What was seen, in words. */
  detail: string;
}

async function systemLookup(name: string, timeoutMs: number): Promise<string[]> {
  if (Deno.build.os === "linux") {
    const out = await new Deno.Command("getent", {
      args: ["ahosts", name],
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    if (!out.success) return [];
    return [
      ...new Set(
        new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(/\s+/)[0]).filter((a) =>
          a
        ),
      ),
    ];
  }
  const dns = await import("node:dns");
  return await new Promise((resolve) =>
    dns.lookup(name, { all: true }, (err, addrs) => resolve(err ? [] : addrs.map((a) => a.address)))
  );
}

/** Looks up a fresh probe name under `domain` and checks the answer came from `server`. */
export async function verifySystemResolver(
  server: DnsServer,
  domain: string,
  address: string,
  timeoutMs = 5000,
): Promise<VerifyResult> {
  const name = `kconnect-probe-${crypto.randomUUID().slice(0, 8)}.${domain.replace(/\.$/, "")}`;
  server.setProbe(name, address);
  const before = server.stats.probes;
  let got: string[] = [];
  try {
    got = await systemLookup(name, timeoutMs);
  } catch (err) {
    return { ok: false, detail: `the lookup of ${name} failed: ${(err as Error).message}` };
  }
  if (server.stats.probes > before && got.includes(address)) {
    return { ok: true, detail: `a lookup of ${name} through the system resolver reached kconnect` };
  }
  if (server.stats.probes > before) {
    return {
      ok: false,
      detail: `kconnect answered ${name}, but the system resolver returned ${
        got.join(", ") || "nothing"
      }`,
    };
  }
  return {
    ok: false,
    detail: `a lookup of ${name} through the system resolver never reached kconnect` +
      (got.length ? ` (something else answered ${got.join(", ")})` : ""),
  };
}
