/**
 * Windows: split DNS through the Name Resolution Policy Table (NRPT). One rule (a registry key
 * under the local `DnsPolicyConfig` key) per 50 of the plan's routing domains sends names in
 * those domains to kconnect's server; every other name keeps the machine's resolvers, so
 * {@linkcode NrptConfigurator.upstreamServers} is null as with systemd-resolved.
 *
 * A rule key holds `Version` (DWORD 1), `Name` (MULTI_SZ, the domains with a leading dot),
 * `GenericDNSServers` (SZ, the servers joined by `"; "`), `ConfigOptions` (DWORD 8: use these
 * servers) and `Comment` (SZ, `kconnect`). When group policy has NRPT rules of its own, Windows
 * ignores the local key: the same rules are then written under the policy key too and machine
 * policy is refreshed (as Tailscale does).
 *
 * kconnect's rule keys have names of their own, `{6b636f6e-6e65-6374-8000-0000000000NN}`
 * ("kconnect" in hex, then the rule's number), so kconnect can find them without a list: rules
 * survive a crash, and {@linkcode sweepNrptRules} removes any kconnect left behind when a
 * configurator first applies a plan. They are journaled too ({@linkcode NRPT_KIND}) and undone
 * like the other resolver changes. Nothing else in the table is ever touched.
 *
 * Changes go through `reg.exe` (and `gpupdate.exe`, `ipconfig.exe`) from the system directory,
 * through an injectable {@linkcode CommandRunner}: tests check the exact argument lists.
 *
 * @module
 */
import type { Journal } from "../journal/journal.ts";
import { registerUndo } from "../journal/undo.ts";
import type { DnsPlan, ResolverConfigurator } from "./plan.ts";
import { isDnsName } from "../trust/trust.ts";
import { parseAddress } from "../wire/address.ts";

/** The journal kind of this change (`{ keys }`: the rule keys kconnect wrote). */
export const NRPT_KIND = "nrpt-rules";

/** The local NRPT, read by the DNS Client service. */
export const NRPT_LOCAL_BASE =
  "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dnscache\\Parameters\\DnsPolicyConfig";
/** The group-policy NRPT; when it has rules, Windows uses it instead of the local one. */
export const NRPT_POLICY_BASE =
  "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\DNSClient\\DnsPolicyConfig";
/** NRPT takes at most this many domains in one rule. */
export const NRPT_MAX_DOMAINS_PER_RULE = 50;
/** `ConfigOptions`: the rule names its own DNS servers (`GenericDNSServers`). */
export const NRPT_OVERRIDE_DNS = 0x8;
/** The start of every kconnect rule key name: `{6b636f6e-6e65-6374-8000-`. */
export const NRPT_RULE_PREFIX = "{6b636f6e-6e65-6374-8000-";

const RULE_NAME = /^\{6b636f6e-6e65-6374-8000-[0-9a-f]{12}\}$/i;

/** The key name of kconnect's rule number `index` (0-based). */
export function nrptRuleId(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff) {
    throw new RangeError(`NRPT rule number ${index} out of range`);
  }
  return `${NRPT_RULE_PREFIX}${index.toString(16).padStart(12, "0")}}`;
}

/** Whether `key` is one of kconnect's rule keys, under either NRPT base. */
export function isKconnectRuleKey(key: string): boolean {
  for (const base of [NRPT_LOCAL_BASE, NRPT_POLICY_BASE]) {
    if (key.startsWith(`${base}\\`) && RULE_NAME.test(key.slice(base.length + 1))) return true;
  }
  return false;
}

/** One registry value of a rule. */
export type RegValue =
  | { name: string; type: "REG_DWORD"; data: number }
  | { name: string; type: "REG_SZ"; data: string }
  | { name: string; type: "REG_MULTI_SZ"; data: string[] };

/** One NRPT rule: its key and values. */
export interface NrptRule {
  key: string;
  values: RegValue[];
}

/** Refuses a plan whose server or domains could be read as something else in the registry. */
function checkPlan(plan: DnsPlan): void {
  if (parseAddress(plan.server) === null) {
    throw new TypeError(`kconnect's DNS server ${JSON.stringify(plan.server)} is not an address`);
  }
  for (const d of plan.routingDomains) {
    if (!isDnsName(d)) throw new TypeError(`Domain ${JSON.stringify(d)} is not a DNS name`);
  }
}

/**
 * The NRPT rules for a plan: its routing domains, 50 to a rule, each with a leading dot, to
 * `plan.server`. Under the local key, and the policy key too when `groupPolicy` is true.
 *
 * @throws {TypeError} A server that is not an address, a domain that is not a DNS name.
 *
 * @example
 * ```ts
 * import { nrptRules } from "./nrpt.ts";
 * const [rule] = nrptRules({
 *   server: "198.18.0.3", link: "kconnect", routingDomains: ["cluster.local", "svc"],
 *   searchDomains: [], skippedNamespaces: [], invalidNamespaces: [],
 * });
 * if (!rule.key.endsWith("\\{6b636f6e-6e65-6374-8000-000000000000}")) throw new Error(rule.key);
 * ```
 */
export function nrptRules(plan: DnsPlan, options: { groupPolicy?: boolean } = {}): NrptRule[] {
  checkPlan(plan);
  const domains = [...new Set(plan.routingDomains)];
  const rules: NrptRule[] = [];
  const bases = options.groupPolicy ? [NRPT_LOCAL_BASE, NRPT_POLICY_BASE] : [NRPT_LOCAL_BASE];
  for (let i = 0; i * NRPT_MAX_DOMAINS_PER_RULE < domains.length; i++) {
    const chunk = domains.slice(i * NRPT_MAX_DOMAINS_PER_RULE, (i + 1) * NRPT_MAX_DOMAINS_PER_RULE);
    const values: RegValue[] = [
      { name: "Version", type: "REG_DWORD", data: 1 },
      { name: "Name", type: "REG_MULTI_SZ", data: chunk.map((d) => `.${d}`) },
      { name: "GenericDNSServers", type: "REG_SZ", data: plan.server },
      { name: "ConfigOptions", type: "REG_DWORD", data: NRPT_OVERRIDE_DNS },
      { name: "Comment", type: "REG_SZ", data: "kconnect" },
    ];
    for (const base of bases) rules.push({ key: `${base}\\${nrptRuleId(i)}`, values });
  }
  return rules;
}

/**
 * The `reg.exe` argument lists that write a rule, one `reg add` per value (`/f`: no prompt).
 * `REG_MULTI_SZ` items are separated by `\0`, reg.exe's separator; a DNS name cannot hold one.
 */
export function regAddArgs(rule: NrptRule): string[][] {
  return rule.values.map((v) => {
    const data = v.type === "REG_MULTI_SZ" ? v.data.join("\\0") : String(v.data);
    return ["add", rule.key, "/v", v.name, "/t", v.type, "/d", data, "/f"];
  });
}

/** The `reg.exe` arguments that delete a rule key (with its values). */
export function regDeleteArgs(key: string): string[] {
  return ["delete", key, "/f"];
}

/** What a command said. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one of the system tools NRPT needs, from `%SystemRoot%\System32`. */
export type CommandRunner = (
  program: "reg" | "gpupdate" | "ipconfig",
  args: string[],
) => Promise<CommandResult>;

/** Runs the real tool. */
export async function runSystemCommand(
  program: "reg" | "gpupdate" | "ipconfig",
  args: string[],
): Promise<CommandResult> {
  const root = Deno.env.get("SystemRoot") ?? "C:\\Windows";
  const out = await new Deno.Command(`${root}\\System32\\${program}.exe`, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** reg.exe's answer for a key that does not exist. */
const NOT_FOUND = /unable to find the specified registry key/i;

async function reg(run: CommandRunner, args: string[]): Promise<CommandResult> {
  const r = await run("reg", args);
  if (r.code !== 0 && !(args[0] !== "add" && NOT_FOUND.test(r.stderr + r.stdout))) {
    throw new Error(`reg ${args.join(" ")} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

/** The subkey names `reg query <base>` lists (empty when the key does not exist). */
export async function listSubkeys(run: CommandRunner, base: string): Promise<string[]> {
  const r = await reg(run, ["query", base]);
  if (r.code !== 0) return [];
  const full = base.replace(/^HKLM\\/, "HKEY_LOCAL_MACHINE\\").toLowerCase();
  const names: string[] = [];
  for (const line of r.stdout.split(/\r?\n/)) {
    const l = line.trim();
    if (l.toLowerCase().startsWith(`${full}\\`)) {
      const rest = l.slice(full.length + 1);
      if (rest !== "" && !rest.includes("\\")) names.push(rest);
    }
  }
  return names;
}

/** Whether group policy has NRPT rules that are not kconnect's (then it overrides the local table). */
export async function groupPolicyRulesExist(run: CommandRunner): Promise<boolean> {
  return (await listSubkeys(run, NRPT_POLICY_BASE)).some((n) => !RULE_NAME.test(n));
}

/** Deletes rule keys; ones already gone are fine. Only kconnect's keys are ever deleted. */
async function deleteKeys(run: CommandRunner, keys: readonly string[]): Promise<string[]> {
  const done: string[] = [];
  for (const key of keys) {
    if (!isKconnectRuleKey(key)) {
      done.push(`${key} is not a kconnect NRPT rule; left alone`);
      continue;
    }
    await reg(run, regDeleteArgs(key));
    done.push(`NRPT rule ${key} removed`);
  }
  return done;
}

/** Refreshes machine policy, so that rules under the policy key take effect (and go). */
async function refreshPolicy(run: CommandRunner): Promise<void> {
  const r = await run("gpupdate", ["/target:computer", "/force"]);
  if (r.code !== 0) {
    throw new Error(`gpupdate failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
}

/**
 * Removes every kconnect NRPT rule, under both bases: what a kconnect that is gone left behind
 * (rules survive crashes). Resolves with what it removed.
 */
export async function sweepNrptRules(run: CommandRunner = runSystemCommand): Promise<string[]> {
  const keys: string[] = [];
  for (const base of [NRPT_LOCAL_BASE, NRPT_POLICY_BASE]) {
    for (const name of await listSubkeys(run, base)) {
      if (RULE_NAME.test(name)) keys.push(`${base}\\${name}`);
    }
  }
  const done = await deleteKeys(run, keys);
  if (keys.some((k) => k.startsWith(NRPT_POLICY_BASE))) await refreshPolicy(run);
  return done;
}

/** Undoes journaled rules: deletes the keys (kconnect's only), refreshing policy if needed. */
export async function undoNrptRules(
  run: CommandRunner,
  data: Record<string, unknown>,
): Promise<string> {
  const keys = Array.isArray(data.keys) ? data.keys.map(String) : [];
  const done = await deleteKeys(run, keys);
  if (keys.some((k) => isKconnectRuleKey(k) && k.startsWith(NRPT_POLICY_BASE))) {
    await refreshPolicy(run);
  }
  return done.length > 0 ? done.join("; ") : "no NRPT rules to remove";
}

registerUndo(NRPT_KIND, (data) => undoNrptRules(runSystemCommand, data));

/** Configures NRPT rules for the plan's routing domains. */
export class NrptConfigurator implements ResolverConfigurator {
  readonly mode = "NRPT";
  readonly #journal: Journal;
  readonly #run: CommandRunner;
  #id: string | null = null;
  #keys: string[] = [];
  #swept = false;

  /**
   * @param journal Where the rule keys are recorded before they are written.
   * @param run How `reg.exe`, `gpupdate.exe` and `ipconfig.exe` run; tests pass a fake.
   */
  constructor(journal: Journal, run: CommandRunner = runSystemCommand) {
    this.#journal = journal;
    this.#run = run;
  }

  upstreamServers(): null {
    return null;
  }

  /** Sweeps stale kconnect rules (the first time), then writes the plan's rules. */
  async apply(plan: DnsPlan): Promise<void> {
    checkPlan(plan);
    if (!this.#swept) {
      await sweepNrptRules(this.#run);
      this.#swept = true;
    }
    await this.update(plan);
  }

  /** Writes the rules of a changed plan and removes the ones it no longer needs. */
  async update(plan: DnsPlan): Promise<void> {
    checkPlan(plan);
    const gp = await groupPolicyRulesExist(this.#run);
    const rules = nrptRules(plan, { groupPolicy: gp });
    const keys = rules.map((r) => r.key);
    const all = [...new Set([...this.#keys, ...keys])];
    if (this.#id === null) this.#id = await this.#journal.add(NRPT_KIND, { keys: all });
    else await this.#journal.update(this.#id, { keys: all });
    const stale = this.#keys.filter((k) => !keys.includes(k));
    await deleteKeys(this.#run, stale);
    for (const rule of rules) {
      for (const args of regAddArgs(rule)) await reg(this.#run, args);
    }
    this.#keys = keys;
    await this.#journal.update(this.#id, { keys });
    if ([...keys, ...stale].some((k) => k.startsWith(NRPT_POLICY_BASE))) {
      await refreshPolicy(this.#run);
    }
    await this.#run("ipconfig", ["/flushdns"]).catch(() => {});
  }

  /** Removes kconnect's rules. */
  async restore(): Promise<void> {
    if (this.#id === null) return;
    await undoNrptRules(this.#run, { keys: this.#keys });
    await this.#journal.remove(this.#id);
    this.#id = null;
    this.#keys = [];
    await this.#run("ipconfig", ["/flushdns"]).catch(() => {});
  }
}
