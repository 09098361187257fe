/**
 * The manager's own flags beyond `traffic-manager`'s basic ones: its budgets (`--max-…`, see
 * `budget.ts`) and more destinations to refuse (`--deny`). {@linkcode withManagerFlags} adds them
 * to the command and, before it runs, records their values for the process, which
 * {@linkcode TrafficManager.start} uses where its options say nothing.
 *
 * @module
 */
import type { Command } from "commander";
import { Cidr } from "../wire/address.ts";
import { addBudgetOptions, type Budgets, budgetsFromOptions, resolveBudgets } from "./budget.ts";

/** What the flags set for this process. */
export interface ManagerFlagSettings {
  budgets: Budgets;
  /** Prefixes refused besides the built-in list (`--deny`). */
  extraDenied: string[];
}

let settings: ManagerFlagSettings | null = null;

/** Records the flags' settings (null: back to the defaults). */
export function setManagerFlagSettings(s: ManagerFlagSettings | null): void {
  settings = s;
}

/** What {@linkcode setManagerFlagSettings} recorded, else the defaults. */
export function managerFlagSettings(): ManagerFlagSettings {
  return settings ?? { budgets: resolveBudgets(), extraDenied: [] };
}

/** Checks `--deny` values; throws RangeError naming a bad one. */
export function parseDenied(values: readonly string[]): string[] {
  return values.map((v) => {
    const c = Cidr.parse(v.includes("/") ? v : `${v}/${v.includes(":") ? 128 : 32}`);
    if (c === null) throw new RangeError(`--deny: "${v}" is not an IP address or prefix`);
    return c.toString();
  });
}

/** Adds the flags to the `traffic-manager` command of `program`; see the module doc. */
export function withManagerFlags(program: Command): void {
  const cmd = program.commands.find((c) => c.name() === "traffic-manager");
  if (cmd === undefined) throw new Error("no traffic-manager command to add the manager flags to");
  addBudgetOptions(cmd);
  cmd.option(
    "--deny <prefix>",
    "also refuse to dial this address or prefix (repeatable; added to the built-in list of " +
      "loopback, link-local and cloud metadata addresses)",
    (v: string, prev: string[] = []) => [...prev, v],
  );
  cmd.hook("preAction", (c) => {
    const opts = c.opts();
    setManagerFlagSettings({
      budgets: budgetsFromOptions(opts),
      extraDenied: parseDenied((opts.deny as string[] | undefined) ?? []),
    });
  });
}
