/**
 * Checks the npm packages locked in `deno.lock` against the npm registry's security advisories
 * (issue 11: "CI checks the locked npm versions against the npm registry's security
 * advisories"). It asks the registry's bulk advisory endpoint — the one `npm audit` uses —
 * about every locked `name@version`, checks each advisory's `vulnerable_versions` range
 * against the locked versions, prints what it found, and exits:
 *
 * - 0 when no locked version has an advisory at or above `--level` (default `moderate`);
 * - 1 when one has (each is printed with its severity, title, range and link);
 * - 2 when the check could not be made (the registry did not answer, or answered nonsense):
 *   an audit that cannot run must not pass.
 *
 * ```sh
 * deno run --frozen --cached-only --allow-read=deno.lock --allow-net=registry.npmjs.org \
 *   scripts/audit_deps.ts [--level low|moderate|high|critical] [--ignore <id or URL>]…
 *   [--lock deno.lock] [--registry https://registry.npmjs.org]
 * ```
 *
 * `--ignore` accepts an advisory that does not apply (give its numeric id or its URL, and say
 * why next to the command). The registry is `--registry`, else `npm_config_registry`, else
 * the public one.
 *
 * @module
 */
// @ts-types="@types/semver"
import semver from "semver";

/** The advisory severities, least severe first (npm's scale). */
export const SEVERITIES = ["info", "low", "moderate", "high", "critical"] as const;

/** One of {@linkcode SEVERITIES}. */
export type Severity = typeof SEVERITIES[number];

/** An advisory as the bulk endpoint returns it. */
export interface Advisory {
  id: number;
  url: string;
  title: string;
  severity: Severity;
  /** A semver range, e.g. `<4.17.21` or `>=2.0.0 <2.1.3 || >=3.0.0 <3.0.8`. */
  vulnerable_versions: string;
}

/** A locked version that an advisory affects. */
export interface Finding {
  name: string;
  version: string;
  advisory: Advisory;
}

/**
 * The npm packages of a `deno.lock` (version 4 or 5): name → locked versions. Keys look like
 * `name@1.2.3`, `@scope/name@1.2.3` or `name@1.2.3_peer@4.5.6` (peer-dependency suffix).
 *
 * @throws {TypeError} when the text is not a lock file with an `npm` section.
 *
 * @example
 * ```ts
 * import { lockedPackages } from "./audit_deps.ts";
 * const lock = '{"version":"5","npm":{"@a/b@1.0.0_c@2.0.0":{},"c@2.0.0":{}}}';
 * lockedPackages(lock); // Map { "@a/b" => ["1.0.0"], "c" => ["2.0.0"] }
 * ```
 */
export function lockedPackages(lockText: string): Map<string, string[]> {
  const lock = JSON.parse(lockText) as { npm?: Record<string, unknown> };
  if (typeof lock !== "object" || lock === null || typeof lock.npm !== "object") {
    throw new TypeError("Not a deno.lock with an npm section");
  }
  const out = new Map<string, string[]>();
  for (const key of Object.keys(lock.npm ?? {})) {
    const at = key.indexOf("@", key.startsWith("@") ? 1 : 0);
    if (at <= 0) throw new TypeError(`Cannot read locked npm package "${key}"`);
    const name = key.slice(0, at);
    const version = key.slice(at + 1).split("_")[0];
    if (semver.valid(version) === null) {
      throw new TypeError(`Cannot read the version of locked npm package "${key}"`);
    }
    const versions = out.get(name) ?? [];
    if (!versions.includes(version)) versions.push(version);
    out.set(name, versions);
  }
  return out;
}

function isAdvisory(a: unknown): a is Advisory {
  const o = a as Record<string, unknown>;
  return typeof o === "object" && o !== null && typeof o.vulnerable_versions === "string" &&
    typeof o.severity === "string" && (SEVERITIES as readonly string[]).includes(o.severity);
}

/**
 * The locked versions each advisory affects. `response` is the bulk endpoint's answer
 * (`{name: Advisory[]}`); an advisory whose range covers none of the locked versions is not a
 * finding.
 *
 * @throws {TypeError} when the response is not shaped like the endpoint's.
 */
export function findings(
  packages: Map<string, string[]>,
  response: unknown,
): Finding[] {
  if (typeof response !== "object" || response === null || Array.isArray(response)) {
    throw new TypeError("The advisory response is not a JSON object");
  }
  const out: Finding[] = [];
  for (const [name, advisories] of Object.entries(response)) {
    if (!Array.isArray(advisories)) {
      throw new TypeError(`The advisory response for ${name} is not a list`);
    }
    for (const advisory of advisories) {
      if (!isAdvisory(advisory)) {
        throw new TypeError(`An advisory for ${name} is malformed: ${JSON.stringify(advisory)}`);
      }
      for (const version of packages.get(name) ?? []) {
        if (
          semver.satisfies(version, advisory.vulnerable_versions, {
            includePrerelease: true,
            loose: true,
          })
        ) {
          out.push({ name, version, advisory });
        }
      }
    }
  }
  const rank = (f: Finding) => SEVERITIES.indexOf(f.advisory.severity);
  return out.sort((a, b) => rank(b) - rank(a) || a.name.localeCompare(b.name));
}

/** Asks `registry`'s bulk advisory endpoint about `packages`; retries network errors and 5xx. */
export async function fetchAdvisories(
  registry: string,
  packages: Map<string, string[]>,
  options: { attempts?: number; timeoutMs?: number } = {},
): Promise<unknown> {
  const url = `${registry.replace(/\/+$/, "")}/-/npm/v1/security/advisories/bulk`;
  const body = JSON.stringify(Object.fromEntries(packages));
  const attempts = options.attempts ?? 3;
  let last = "";
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000 * 2 ** (i - 1)));
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      last = `POST ${url}: ${(err as Error).message}`;
      continue;
    }
    const text = await res.text();
    if (res.ok) {
      try {
        return JSON.parse(text);
      } catch {
        throw new TypeError(`POST ${url}: the answer is not JSON: ${text.slice(0, 200)}`);
      }
    }
    last = `POST ${url}: HTTP ${res.status} ${res.statusText}${
      res.headers.get("allow") ? ` (allow: ${res.headers.get("allow")})` : ""
    }${text ? `: ${text.slice(0, 200)}` : ""}`;
    if (res.status < 500 && res.status !== 429) break; // will not change on retry
  }
  throw new Error(last);
}

interface Args {
  level: Severity;
  ignore: string[];
  lock: string;
  registry: string;
}

function envRegistry(): string | undefined {
  try {
    return Deno.env.get("npm_config_registry");
  } catch {
    return undefined; // not allowed to read it: the public registry
  }
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    level: "moderate",
    ignore: [],
    lock: new URL("../deno.lock", import.meta.url).pathname,
    registry: envRegistry() || "https://registry.npmjs.org",
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new TypeError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--level": {
        const v = value();
        if (!(SEVERITIES as readonly string[]).includes(v)) {
          throw new TypeError(`--level must be one of ${SEVERITIES.join(", ")}, got "${v}"`);
        }
        args.level = v as Severity;
        break;
      }
      case "--ignore":
        args.ignore.push(value());
        break;
      case "--lock":
        args.lock = value();
        break;
      case "--registry":
        args.registry = value();
        break;
      default:
        throw new TypeError(`Unknown argument "${argv[i]}"`);
    }
  }
  return args;
}

function out(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Runs the audit; returns the exit status (0 clean, 1 findings, 2 could not check). */
export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    out(`audit_deps: ${(err as Error).message}`);
    return 2;
  }
  let packages: Map<string, string[]>;
  let all: Finding[];
  try {
    packages = lockedPackages(await Deno.readTextFile(args.lock));
    all = findings(packages, await fetchAdvisories(args.registry, packages));
  } catch (err) {
    out(`audit_deps: could not check the locked npm packages: ${(err as Error).message}`);
    return 2;
  }
  const versions = [...packages.values()].reduce((n, v) => n + v.length, 0);
  const ignored = (f: Finding) =>
    args.ignore.includes(String(f.advisory.id)) || args.ignore.includes(f.advisory.url);
  const threshold = SEVERITIES.indexOf(args.level);
  let failing = 0;
  for (const f of all) {
    const severe = SEVERITIES.indexOf(f.advisory.severity) >= threshold;
    const mark = ignored(f) ? "ignored" : severe ? "FAIL" : "note";
    if (severe && !ignored(f)) failing++;
    out(
      `${mark.padEnd(7)} ${f.advisory.severity.padEnd(8)} ${f.name}@${f.version}: ` +
        `${f.advisory.title} (vulnerable: ${f.advisory.vulnerable_versions}) ${f.advisory.url}`,
    );
  }
  out(
    `audit_deps: ${packages.size} npm packages (${versions} locked versions) from ${args.lock} ` +
      `checked against ${args.registry}: ${all.length} advisories apply, ${failing} at or above ` +
      `${args.level}${args.ignore.length ? ` (ignoring ${args.ignore.join(", ")})` : ""}`,
  );
  return failing > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
