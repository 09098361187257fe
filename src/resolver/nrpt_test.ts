/**
 * NRPT split DNS: the exact registry plan and reg.exe arguments (golden), and the configurator
 * against a fake reg.exe that keeps a registry: apply, update, restore, the sweep of stale
 * kconnect rules, group policy, the journal's undo after a crash. Whether Windows' DNS client
 * honours the rules (`Resolve-DnsName`) is only checked on Windows.
 */
import assert from "node:assert/strict";
import { Journal } from "../journal/journal.ts";
import { undoLeftovers } from "../journal/undo.ts";
import type { DnsPlan } from "./plan.ts";
import {
  type CommandRunner,
  isKconnectRuleKey,
  NRPT_KIND,
  NRPT_LOCAL_BASE,
  NRPT_POLICY_BASE,
  NrptConfigurator,
  nrptRuleId,
  nrptRules,
  regAddArgs,
  sweepNrptRules,
  undoNrptRules,
} from "./nrpt.ts";

const plan: DnsPlan = {
  server: "198.18.0.3",
  link: "kconnect",
  routingDomains: ["cluster.local", "svc", "default", "payments", "0.244.10.in-addr.arpa"],
  searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
  skippedNamespaces: [],
  invalidNamespaces: [],
};

const RULE0 = `${NRPT_LOCAL_BASE}\\{6b636f6e-6e65-6374-8000-000000000000}`;
const RULE1 = `${NRPT_LOCAL_BASE}\\{6b636f6e-6e65-6374-8000-000000000001}`;
const GP_RULE0 = `${NRPT_POLICY_BASE}\\{6b636f6e-6e65-6374-8000-000000000000}`;
const CORP = `${NRPT_LOCAL_BASE}\\{11111111-2222-3333-4444-555555555555}`;

Deno.test("nrptRules() plans one rule for the routing domains: leading dots, the server, override DNS (golden)", () => {
  assert.equal(
    NRPT_LOCAL_BASE,
    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dnscache\\Parameters\\DnsPolicyConfig",
  );
  assert.deepEqual(nrptRules(plan), [{
    key: RULE0,
    values: [
      { name: "Version", type: "REG_DWORD", data: 1 },
      {
        name: "Name",
        type: "REG_MULTI_SZ",
        data: [".cluster.local", ".svc", ".default", ".payments", ".0.244.10.in-addr.arpa"],
      },
      { name: "GenericDNSServers", type: "REG_SZ", data: "198.18.0.3" },
      { name: "ConfigOptions", type: "REG_DWORD", data: 8 },
      { name: "Comment", type: "REG_SZ", data: "kconnect" },
    ],
  }]);
  assert.deepEqual(regAddArgs(nrptRules(plan)[0]), [
    ["add", RULE0, "/v", "Version", "/t", "REG_DWORD", "/d", "1", "/f"],
    [
      "add",
      RULE0,
      "/v",
      "Name",
      "/t",
      "REG_MULTI_SZ",
      "/d",
      ".cluster.local\\0.svc\\0.default\\0.payments\\0.0.244.10.in-addr.arpa",
      "/f",
    ],
    ["add", RULE0, "/v", "GenericDNSServers", "/t", "REG_SZ", "/d", "198.18.0.3", "/f"],
    ["add", RULE0, "/v", "ConfigOptions", "/t", "REG_DWORD", "/d", "8", "/f"],
    ["add", RULE0, "/v", "Comment", "/t", "REG_SZ", "/d", "kconnect", "/f"],
  ]);
});

Deno.test("nrptRules(): 50 domains to a rule; the policy key too under group policy; hostile input refused", () => {
  const many = Array.from({ length: 120 }, (_, i) => `ns${i}`);
  const rules = nrptRules({ ...plan, routingDomains: many });
  assert.deepEqual(rules.map((r) => r.key), [RULE0, RULE1, RULE0.replace(/0}$/, "2}")]);
  assert.deepEqual(
    rules.map((r) => (r.values[1].data as string[]).length),
    [50, 50, 20],
  );
  assert.deepEqual(nrptRules(plan, { groupPolicy: true }).map((r) => r.key), [RULE0, GP_RULE0]);
  assert.deepEqual(nrptRules({ ...plan, routingDomains: [] }), []);
  for (const d of ["a\\0b", "x y", "../x", "a\nb", "com."]) {
    assert.throws(() => nrptRules({ ...plan, routingDomains: ["svc", d] }), TypeError, d);
  }
  assert.throws(() => nrptRules({ ...plan, server: "198.18.0.3 /f" }), TypeError);
  assert.equal(nrptRuleId(255), "{6b636f6e-6e65-6374-8000-0000000000ff}");
  assert.ok(isKconnectRuleKey(RULE0) && isKconnectRuleKey(GP_RULE0));
  assert.ok(!isKconnectRuleKey(CORP));
  assert.ok(!isKconnectRuleKey(`${RULE0}\\sub`));
  assert.ok(!isKconnectRuleKey("HKLM\\SOFTWARE\\{6b636f6e-6e65-6374-8000-000000000000}"));
});

/** A fake reg.exe (and gpupdate, ipconfig) over an in-memory registry. */
class FakeRegistry {
  readonly keys = new Map<string, Map<string, string>>(); // key (lower case) → name → "TYPE data"
  readonly commands: string[] = [];

  constructor(initial: Record<string, Record<string, string>> = {}) {
    for (const [k, values] of Object.entries(initial)) {
      this.keys.set(k.toLowerCase(), new Map(Object.entries(values)));
    }
  }

  has(key: string): boolean {
    return this.keys.has(key.toLowerCase());
  }

  value(key: string, name: string): string | undefined {
    return this.keys.get(key.toLowerCase())?.get(name);
  }

  readonly run: CommandRunner = (program, args) => {
    this.commands.push(`${program} ${args.join(" ")}`);
    const ok = (stdout = "") => Promise.resolve({ code: 0, stdout, stderr: "" });
    const missing = () =>
      Promise.resolve({
        code: 1,
        stdout: "",
        stderr: "ERROR: The system was unable to find the specified registry key or value.\r\n",
      });
    if (program !== "reg") return ok();
    const [verb, key] = args;
    const k = key.toLowerCase();
    if (verb === "add") {
      assert.equal(args.at(-1), "/f");
      const values = this.keys.get(k) ?? new Map();
      this.keys.set(k, values);
      values.set(
        args[args.indexOf("/v") + 1],
        `${args[args.indexOf("/t") + 1]} ${args[args.indexOf("/d") + 1]}`,
      );
      return ok("The operation completed successfully.\r\n");
    }
    if (verb === "delete") {
      if (!this.keys.has(k)) return missing();
      for (const other of [...this.keys.keys()]) {
        if (other === k || other.startsWith(`${k}\\`)) this.keys.delete(other);
      }
      return ok("The operation completed successfully.\r\n");
    }
    if (verb === "query") {
      const children = [...this.keys.keys()].filter((o) =>
        o.startsWith(`${k}\\`) && !o.slice(k.length + 1).includes("\\")
      );
      if (children.length === 0 && !this.keys.has(k)) return missing();
      const full = (o: string) => o.replace(/^hklm\\/, "HKEY_LOCAL_MACHINE\\");
      return ok(`\r\n${children.map((c) => full(c)).join("\r\n")}\r\n`);
    }
    throw new Error(`fake reg: ${verb}`);
  };
}

async function withJournal(fn: (journal: Journal, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(await Journal.open(`${dir}/state`), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("NrptConfigurator: apply() sweeps kconnect's stale rules only, journals, writes; update() and restore() put back", async () => {
  await withJournal(async (journal) => {
    const registry = new FakeRegistry({
      [CORP]: { Name: "REG_MULTI_SZ .corp.example" },
      [RULE1]: { Name: "REG_MULTI_SZ .stale" }, // a crashed kconnect's
    });
    const nrpt = new NrptConfigurator(journal, registry.run);
    assert.equal(nrpt.upstreamServers(), null);
    await nrpt.apply(plan);
    assert.ok(!registry.has(RULE1), "stale kconnect rule swept");
    assert.ok(registry.has(CORP), "someone else's rule untouched");
    assert.equal(
      registry.value(RULE0, "Name"),
      "REG_MULTI_SZ .cluster.local\\0.svc\\0.default\\0.payments\\0.0.244.10.in-addr.arpa",
    );
    assert.equal(registry.value(RULE0, "GenericDNSServers"), "REG_SZ 198.18.0.3");
    assert.equal(registry.value(RULE0, "ConfigOptions"), "REG_DWORD 8");
    assert.deepEqual(journal.entries().map((e) => [e.kind, e.data]), [[NRPT_KIND, {
      keys: [RULE0],
    }]]);
    assert.ok(!registry.commands.some((c) => c.startsWith("gpupdate")), "no policy refresh");
    assert.equal(registry.commands.at(-1), "ipconfig /flushdns");

    await nrpt.update({ ...plan, routingDomains: ["cluster.local", "svc"] });
    assert.equal(registry.value(RULE0, "Name"), "REG_MULTI_SZ .cluster.local\\0.svc");

    const many = Array.from({ length: 60 }, (_, i) => `ns${i}`);
    await nrpt.update({ ...plan, routingDomains: many });
    assert.ok(registry.has(RULE1));
    assert.deepEqual(journal.entries()[0].data, { keys: [RULE0, RULE1] });
    await nrpt.update(plan);
    assert.ok(!registry.has(RULE1), "the second rule goes when no longer needed");
    assert.deepEqual(journal.entries()[0].data, { keys: [RULE0] });

    await nrpt.restore();
    assert.ok(!registry.has(RULE0));
    assert.ok(registry.has(CORP));
    assert.deepEqual(journal.entries(), []);
  });
});

Deno.test("NrptConfigurator under group policy NRPT rules: writes the policy key too and refreshes policy", async () => {
  await withJournal(async (journal) => {
    const gpCorp = `${NRPT_POLICY_BASE}\\{99999999-2222-3333-4444-555555555555}`;
    const registry = new FakeRegistry({ [gpCorp]: { Name: "REG_MULTI_SZ .corp.example" } });
    const nrpt = new NrptConfigurator(journal, registry.run);
    await nrpt.apply(plan);
    assert.ok(registry.has(RULE0) && registry.has(GP_RULE0));
    assert.ok(registry.commands.includes("gpupdate /target:computer /force"));
    assert.deepEqual(journal.entries()[0].data, { keys: [RULE0, GP_RULE0] });
    await nrpt.restore();
    assert.ok(!registry.has(GP_RULE0) && registry.has(gpCorp));
  });
});

Deno.test("after a crash, undoNrptRules() removes the journaled rules; keys that are not kconnect's are left alone", async () => {
  const registry = new FakeRegistry({ [CORP]: { Name: "REG_MULTI_SZ .corp.example" } });
  await withJournal(async (journal) => {
    await new NrptConfigurator(journal, registry.run).apply(plan);
    const entry = journal.entries()[0];
    assert.equal(entry.kind, NRPT_KIND);
    // The process "dies"; the next one undoes from the journal.
    assert.equal(await undoNrptRules(registry.run, entry.data), `NRPT rule ${RULE0} removed`);
    assert.ok(!registry.has(RULE0));
    assert.equal(
      await undoNrptRules(registry.run, { keys: [CORP, "HKLM\\SYSTEM\\Setup"] }),
      `${CORP} is not a kconnect NRPT rule; left alone; HKLM\\SYSTEM\\Setup is not a kconnect NRPT rule; left alone`,
    );
    assert.ok(registry.has(CORP));
    assert.equal(
      await undoNrptRules(registry.run, { keys: [RULE0] }),
      `NRPT rule ${RULE0} removed`,
      "gone already is fine",
    );
    // The registered undo uses the real reg.exe, which this machine may not have.
    const done = await undoLeftovers(journal);
    assert.equal(done.length, 1);
    if (Deno.build.os !== "windows") assert.match(done[0], /could not undo nrpt-rules/);
  });
});

Deno.test("sweepNrptRules() with no NRPT at all does nothing; a failing reg.exe is an error", async () => {
  const empty = new FakeRegistry();
  assert.deepEqual(await sweepNrptRules(empty.run), []);
  const mixed = new FakeRegistry({ [CORP]: {}, [RULE1]: {}, [GP_RULE0]: {} });
  assert.deepEqual(await sweepNrptRules(mixed.run), [
    `NRPT rule ${RULE1} removed`,
    `NRPT rule ${GP_RULE0} removed`,
  ]);
  assert.ok(mixed.has(CORP));
  assert.ok(mixed.commands.includes("gpupdate /target:computer /force"), "policy key changed");
  const broken: CommandRunner = () =>
    Promise.resolve({ code: 5, stdout: "", stderr: "ERROR: Access is denied." });
  await assert.rejects(() => sweepNrptRules(broken), /Access is denied/);
  await withJournal(async (journal) => {
    await assert.rejects(
      () => new NrptConfigurator(journal, broken).apply(plan),
      /Access is denied/,
    );
  });
});
