/**
 * kconnect's config file and the settings of a connection.
 *
 * The file is JSON, `~/.config/kconnect/config.json` (`$XDG_CONFIG_HOME/kconnect/config.json`
 * when that is set; `KCONNECT_CONFIG` or `--config` name another). It is read by the client, as
 * the user, and sent to the daemon with the request:
 *
 * ```json
 * {
 *   "defaults": { "dns": "auto", "transports": 2 },
 *   "contexts": {
 *     "prod": { "namespace": "shop", "neverProxy": ["10.0.0.0/8"], "managerNamespace": "infra" }
 *   }
 * }
 * ```
 *
 * Each of `defaults` and `contexts.<name>` may set `namespace`, `alsoProxy`, `neverProxy`,
 * `dns`, `managerNamespace`, `transports`, `mtu`, `resumeGrace` (seconds that open flows are held
 * while the tunnel is down, 0 for none), `allowRouteConflicts` and `clusterDomain` (the
 * cluster's DNS domain when it ends in a public top-level domain, e.g. `k8s.example.com`:
 * kconnect accepts such a domain from the traffic manager only when the user named it here; see
 * `src/trust/trust.ts`). A setting comes from
 * the command line if given there, else from the context's entry, else from `defaults`, else
 * kconnect's built-in default ({@linkcode resolveSettings}). A bad file is an error that names
 * the file and the field.
 *
 * At the top level, `"group": "<name or gid>"` names the group whose members may use a daemon
 * that `sudo kconnect up` starts (`up --group` and `KCONNECT_GROUP` win over it; with none,
 * root and the user who ran sudo may; see `src/daemon/access.ts`).
 *
 * @module
 */
import { DNS_MODES, type DnsMode, dnsModeProblem } from "../resolver/select.ts";
import { Cidr } from "../wire/address.ts";
import { dnsLabelProblem, normalizeDnsName, quote, TUN_NAME, within } from "../trust/trust.ts";
import { DEFAULT_TUN_NET4, DEFAULT_TUN_NET6 } from "../stack/tun_addresses.ts";
import { MANAGER_NAMESPACE } from "../manager_identity/identity.ts";

/** Settings one entry of the config file may give. */
export interface FileSettings {
  namespace?: string;
  alsoProxy?: string[];
  neverProxy?: string[];
  dns?: DnsMode;
  managerNamespace?: string;
  transports?: number;
  mtu?: number;
  resumeGrace?: number;
  allowRouteConflicts?: boolean;
  /** The cluster's DNS domain, accepted from the traffic manager even under a public TLD. */
  clusterDomain?: string;
}

/** The config file. */
export interface ConfigFile {
  /** Where it was read from (for messages). */
  path: string;
  defaults: FileSettings;
  contexts: Record<string, FileSettings>;
  /** The group (name or gid) for a daemon `sudo kconnect up` starts, if the file names one. */
  group?: string;
}

/** Everything a connection is set up with, after flags, file and defaults are merged. */
export interface UpSettings {
  /** Namespace short names resolve in; null for the context's. */
  namespace: string | null;
  alsoProxy: string[];
  neverProxy: string[];
  dns: DnsMode;
  managerNamespace: string;
  transports: number;
  mtu: number;
  /**
   * Seconds open flows are held while the tunnel is down (sessions resume within it); 0 ends
   * them at once, as protocol-1 managers do.
   */
  resumeGrace: number;
  allowRouteConflicts: boolean;
  tunName: string;
  tunNet4: string;
  tunNet6: string;
  /** Install the traffic manager when none is found (`up --install`). */
  installManager: boolean;
  /** Upgrade a kconnect-installed manager of another version (`--no-upgrade` turns it off). */
  upgradeManager: boolean;
  /** Image for an install or upgrade (`--manager-image`); null for the default. */
  managerImage: string | null;
  /** The cluster domain the user named (config file); absent when none. */
  clusterDomain?: string;
}

/** The built-in defaults. */
export const DEFAULT_SETTINGS: UpSettings = {
  namespace: null,
  alsoProxy: [],
  neverProxy: [],
  dns: "auto",
  managerNamespace: MANAGER_NAMESPACE,
  transports: 2,
  // Large: every TCP flow is terminated on this machine (the kernel's TCP to kconnect's own
  // listener), so no packet of this size crosses a wire; fewer, larger packets cost ~2.5× less
  // CPU per byte (bench/vs_portforward.ts). UDP datagrams stay within the tunnel's u16 framing
  // (65000 − 28 bytes of IPv4/UDP header) and the manager's sockets (65507).
  mtu: 65000,
  // Long enough for a lid closed over a meeting; the manager may grant less (its
  // --max-resume-grace, 900 s by default).
  resumeGrace: 300,
  allowRouteConflicts: false,
  tunName: "kconnect0",
  tunNet4: DEFAULT_TUN_NET4,
  tunNet6: DEFAULT_TUN_NET6,
  installManager: false,
  upgradeManager: true,
  managerImage: null,
};

/** A setting that is wrong: names the place (file or flag) and the field. */
export class SettingsError extends Error {
  /** The field, e.g. `contexts.prod.transports` or `--mtu`. */
  readonly field: string;
  /**
   * Creates the error; `where` is the file path, "command line", "request" or a phrase that
   * starts with "kubeconfig" (e.g. `kubeconfig context "prod"`).
   */
  constructor(where: string, field: string, problem: string) {
    super(
      `Invalid ${
        where === "command line"
          ? "option"
          : where === "request" || where.startsWith("kubeconfig")
          ? `${where}:`
          : `config file ${where}:`
      } ${field}: ${problem}`,
    );
    this.name = "SettingsError";
    this.field = field;
  }
}

const KEYS = [
  "namespace",
  "alsoProxy",
  "neverProxy",
  "dns",
  "managerNamespace",
  "transports",
  "mtu",
  "resumeGrace",
  "allowRouteConflicts",
  "clusterDomain",
] as const;

/** Checks one value; returns it normalised or throws with `field` named. */
/**
 * Checks one setting given as a command-line flag, with the same rule and wording as the config
 * file's (throws {@linkcode SettingsError} naming `--flag`); an integer's text becomes a number.
 *
 * @example
 * ```ts
 * import { checkFlag } from "./config.ts";
 * const mtu = checkFlag("mtu", "mtu", "9000"); // 9000
 * ```
 */
export function checkFlag(flag: string, key: typeof KEYS[number], text: string): unknown {
  const v = /^-?\d+$/.test(text) ? Number(text) : text;
  return checkValue("command line", `--${flag}`, key, v);
}

function checkValue(
  where: string,
  field: string,
  key: typeof KEYS[number],
  v: unknown,
): unknown {
  const fail = (problem: string): never => {
    throw new SettingsError(where, field, problem);
  };
  switch (key) {
    case "namespace":
    case "managerNamespace":
      if (dnsLabelProblem(v) !== null) {
        fail(`expected a namespace name (lower-case letters, digits and "-"), got ${show(v)}`);
      }
      return v;
    case "clusterDomain": {
      const n = normalizeDnsName(v);
      if ("problem" in n) {
        fail(`expected a DNS domain like cluster.local: ${show(v)} is ${n.problem}`);
      }
      return (n as { name: string }).name;
    }
    case "alsoProxy":
    case "neverProxy":
      if (!Array.isArray(v)) fail(`expected a list of CIDRs, got ${show(v)}`);
      (v as unknown[]).forEach((c, i) => {
        if (typeof c !== "string" || Cidr.parse(c) === null) {
          throw new SettingsError(
            where,
            `${field}[${i}]`,
            `expected a CIDR like 10.0.0.0/8, got ${show(c)}`,
          );
        }
      });
      return [...(v as string[])];
    case "dns":
      if (typeof v !== "string" || !(DNS_MODES as readonly string[]).includes(v)) {
        fail(`expected one of ${DNS_MODES.join(", ")}, got ${show(v)}`);
      }
      return v;
    case "transports":
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 16) {
        fail(`expected an integer from 1 to 16, got ${show(v)}`);
      }
      return v;
    case "mtu":
      if (!Number.isInteger(v) || (v as number) < 1280 || (v as number) > 65535) {
        fail(`expected an integer from 1280 to 65535, got ${show(v)}`);
      }
      return v;
    case "resumeGrace":
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 86400) {
        fail(`expected seconds, an integer from 0 (off) to 86400, got ${show(v)}`);
      }
      return v;
    case "allowRouteConflicts":
      if (typeof v !== "boolean") fail(`expected true or false, got ${show(v)}`);
      return v;
  }
}

function show(v: unknown): string {
  return quote(v);
}

function checkEntry(where: string, prefix: string, o: unknown): FileSettings {
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new SettingsError(where, prefix, `expected an object, got ${show(o)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(KEYS as readonly string[]).includes(k)) {
      throw new SettingsError(
        where,
        `${prefix}.${k}`,
        `unknown setting (known: ${KEYS.join(", ")})`,
      );
    }
    out[k] = checkValue(where, `${prefix}.${k}`, k as typeof KEYS[number], v);
  }
  return out as FileSettings;
}

/**
 * Parses and checks a config file's text.
 *
 * @throws {SettingsError} naming `path` and the field that is wrong.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = parseConfig('{"contexts": {"prod": {"namespace": "shop"}}}', "/c.json");
 * c.contexts.prod.namespace; // "shop"
 * ```
 */
export function parseConfig(text: string, path: string): ConfigFile {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new SettingsError(path, "(file)", `not valid JSON: ${(err as Error).message}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new SettingsError(path, "(file)", "expected a JSON object");
  }
  const top = o as Record<string, unknown>;
  for (const k of Object.keys(top)) {
    if (k !== "defaults" && k !== "contexts" && k !== "group" && k !== "$schema") {
      throw new SettingsError(
        path,
        k,
        `unknown key (expected "defaults", "contexts" and "group")`,
      );
    }
  }
  const group = checkGroup(path, top.group);
  const contexts: Record<string, FileSettings> = {};
  if (top.contexts !== undefined) {
    if (typeof top.contexts !== "object" || top.contexts === null || Array.isArray(top.contexts)) {
      throw new SettingsError(path, "contexts", "expected an object keyed by context name");
    }
    for (const [name, entry] of Object.entries(top.contexts)) {
      contexts[name] = checkEntry(path, `contexts.${name}`, entry);
    }
  }
  return {
    path,
    defaults: top.defaults === undefined ? {} : checkEntry(path, "defaults", top.defaults),
    contexts,
    ...(group === undefined ? {} : { group }),
  };
}

/** The top-level `group`: a group name or a gid (number or digits); undefined when absent. */
function checkGroup(path: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (Number.isInteger(v) && (v as number) >= 0) return String(v);
  if (typeof v === "string" && /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/.test(v)) return v;
  throw new SettingsError(path, "group", `expected a group name or a gid, got ${show(v)}`);
}

/** Where the config file is: `flag`, else KCONNECT_CONFIG, else XDG_CONFIG_HOME or `<home>/.config`. */
export function configPath(flag: string | undefined, home: string | undefined): string | null {
  if (flag) return flag;
  const env = Deno.env.get("KCONNECT_CONFIG");
  if (env) return env;
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/kconnect/config.json`;
  return home ? `${home}/.config/kconnect/config.json` : null;
}

/**
 * Reads the config file at `path`; null when there is none (unless `required`, for a path the
 * user named).
 */
export async function loadConfig(
  path: string | null,
  required = false,
): Promise<ConfigFile | null> {
  if (path === null) return null;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && !required) return null;
    throw new Error(`Cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, path);
}

/**
 * Merges settings: `flags` (only what was given on the command line) over the config file's
 * entry for `context` over its `defaults` over {@linkcode DEFAULT_SETTINGS}.
 *
 * @example
 * ```ts
 * import { parseConfig, resolveSettings } from "./config.ts";
 * const file = parseConfig('{"defaults": {"transports": 4}, "contexts": {"p": {"dns": "off"}}}', "c");
 * const s = resolveSettings({ mtu: 9000 }, file, "p");
 * [s.transports, s.dns, s.mtu]; // [4, "off", 9000]
 * ```
 */
export function resolveSettings(
  flags: Partial<UpSettings>,
  file: ConfigFile | null,
  context: string,
): UpSettings {
  const pick = (o: Partial<UpSettings> | FileSettings | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));
  return {
    ...DEFAULT_SETTINGS,
    ...pick(file?.defaults),
    ...pick(file?.contexts[context]),
    ...pick(flags),
  } as UpSettings;
}

/** Where the TUN's own prefixes may lie, and how big they may be (M3 of the security review). */
const TUN_NETS = {
  tunNet4: { range: Cidr.parse("198.18.0.0/15")!, min: 24, max: 29 },
  tunNet6: { range: Cidr.parse("fd00::/8")!, min: 64, max: 125 },
} as const;

/** Why `v` may not be the TUN prefix `key`, or null. */
function tunNetProblem(key: keyof typeof TUN_NETS, v: unknown): string | null {
  const { range, min, max } = TUN_NETS[key];
  const c = typeof v === "string" ? Cidr.parse(v) : null;
  if (c === null || !v || !(v as string).includes("/")) {
    return `expected a prefix like ${DEFAULT_SETTINGS[key]}, got ${show(v)}`;
  }
  if (!within(c, range) || c.prefixLength < min || c.prefixLength > max) {
    return `expected a prefix inside ${range} from /${min} to /${max}, got ${show(v)}` +
      " (a wider one would route traffic past kconnect's checks)";
  }
  return null;
}

/** The settings a request may carry: those of {@linkcode UpSettings}, nothing else. */
export const SETTINGS_KEYS: readonly (keyof UpSettings)[] = [
  ...Object.keys(DEFAULT_SETTINGS) as (keyof UpSettings)[],
  "clusterDomain",
];

/**
 * Checks settings that arrive from elsewhere (a request to the daemon, or flags, file and
 * defaults merged for a foreground `up`), so a bad value is refused with the field named
 * instead of failing deep inside. Unknown keys are refused too. `os` is the platform `dns` is
 * checked for (`macos` works on macOS only).
 *
 * @throws {SettingsError}
 */
export function checkSettings(
  s: UpSettings,
  where = "command line",
  os: string = Deno.build.os,
): UpSettings {
  if (typeof s !== "object" || s === null) throw new SettingsError(where, "(settings)", "missing");
  for (const k of Object.keys(s)) {
    if (!(SETTINGS_KEYS as readonly string[]).includes(k)) {
      throw new SettingsError(where, k, `unknown setting (known: ${SETTINGS_KEYS.join(", ")})`);
    }
  }
  for (const k of KEYS) {
    const v = s[k];
    if (k === "namespace" && v === null) continue;
    if (k === "clusterDomain" && v === undefined) continue;
    checkValue(where, k, k, v);
  }
  const dns = dnsModeProblem(s.dns, os);
  if (dns !== null) throw new SettingsError(where, "dns", dns);
  if (typeof s.tunName !== "string" || !TUN_NAME.test(s.tunName)) {
    throw new SettingsError(
      where,
      "tunName",
      `${
        show(s.tunName)
      } is not an interface name kconnect may use (a lower-case letter, then up to 14 lower-case letters, digits or "_")`,
    );
  }
  for (const k of ["tunNet4", "tunNet6"] as const) {
    const problem = tunNetProblem(k, s[k]);
    if (problem !== null) throw new SettingsError(where, k, problem);
  }
  for (const k of ["installManager", "upgradeManager"] as const) {
    if (typeof s[k] !== "boolean") throw new SettingsError(where, k, "expected true or false");
  }
  if (
    s.managerImage !== null &&
    (typeof s.managerImage !== "string" || !/^[\x21-\x7e]{1,512}$/.test(s.managerImage) ||
      s.managerImage.startsWith("-"))
  ) {
    throw new SettingsError(where, "managerImage", "expected an image reference");
  }
  return s;
}

/**
 * Checks the `flags` of a daemon request: an object holding only keys of
 * {@linkcode UpSettings}, each with a value of the right kind (the merged result is checked
 * again by {@linkcode checkSettings}).
 *
 * @throws {SettingsError} naming the flag.
 */
export function checkFlags(o: unknown, where = "request"): Partial<UpSettings> {
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new SettingsError(where, "flags", `expected an object, got ${show(o)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(SETTINGS_KEYS as readonly string[]).includes(k)) {
      throw new SettingsError(where, `flags.${k}`, "unknown setting");
    }
    if (v === undefined) continue;
    if ((KEYS as readonly string[]).includes(k)) {
      if (!(k === "namespace" && v === null)) {
        out[k] = checkValue(where, `flags.${k}`, k as typeof KEYS[number], v);
        continue;
      }
    }
    out[k] = v;
  }
  // The rest (tunName, tunNet4/6, booleans, managerImage) through the full check.
  checkSettings({ ...DEFAULT_SETTINGS, ...out } as UpSettings, where);
  return out as Partial<UpSettings>;
}

/**
 * Checks a config file that arrives as an object (in a daemon request: the client read it) as
 * strictly as {@linkcode parseConfig} checks the file.
 *
 * @throws {SettingsError}
 */
export function checkConfigObject(o: unknown, where = "request"): ConfigFile | null {
  if (o === null || o === undefined) return null;
  if (typeof o !== "object" || Array.isArray(o)) {
    throw new SettingsError(where, "config", `expected an object, got ${show(o)}`);
  }
  const { path, ...rest } = o as Record<string, unknown>;
  if (typeof path !== "string") throw new SettingsError(where, "config.path", "expected text");
  return parseConfig(JSON.stringify(rest), path);
}

/**
 * The namespace short names resolve in: the one given (already checked), else the kubeconfig
 * context's, which is checked here since it comes from the user's kubeconfig (or from material
 * another user's process printed).
 *
 * @throws {SettingsError} naming the context.
 */
export function defaultNamespace(
  given: string | null,
  context: string,
  contextNs: unknown,
): string {
  if (given !== null) return given;
  const problem = dnsLabelProblem(contextNs);
  if (problem !== null) {
    throw new SettingsError(
      `kubeconfig context ${quote(context)}`,
      "namespace",
      `${
        quote(contextNs)
      } is not a namespace name (${problem}); fix the context or pass --namespace`,
    );
  }
  return contextNs as string;
}
