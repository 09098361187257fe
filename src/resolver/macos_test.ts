/** The macOS resolver files (review C1): a domain can never name a file outside the directory. */
import assert from "node:assert/strict";
import { Journal } from "../journal/journal.ts";
import { MacosResolverConfigurator } from "./macos.ts";
import type { DnsPlan } from "./plan.ts";

const base: DnsPlan = {
  server: "198.18.0.3",
  link: "kconnect0",
  routingDomains: ["cluster.local", "svc"],
  searchDomains: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
  skippedNamespaces: [],
  invalidNamespaces: [],
};

/** Every path under `root`, relative, sorted. */
async function tree(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${root}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory) out.push(...await tree(root, p));
  }
  return out.sort();
}

const HOSTILE = [
  "../x",
  "../ld.so.preload",
  "../sudoers.d/x\nALL ALL=(ALL) NOPASSWD:ALL",
  "a/b",
  "..",
  ".",
  "",
  "a\nb",
  "com.",
  "x y",
];

Deno.test("MacosResolverConfigurator.update() refuses hostile domains and writes nothing, inside or out", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/etc/resolver`, { recursive: true });
    await Deno.mkdir(`${root}/etc/sudoers.d`);
    const journal = await Journal.open(`${root}/state`);
    const before = await tree(`${root}/etc`);
    for (const d of HOSTILE) {
      const mac = new MacosResolverConfigurator(journal, `${root}/etc/resolver`);
      await assert.rejects(
        () => mac.update({ ...base, routingDomains: ["cluster.local", d] }),
        Error,
        JSON.stringify(d),
      );
      assert.deepEqual(
        await tree(`${root}/etc`),
        before,
        `nothing written for ${JSON.stringify(d)}`,
      );
      assert.equal(journal.entries().length, 0);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("MacosResolverConfigurator writes through a temporary file, replacing a symlink instead of following it", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/resolver`);
    await Deno.writeTextFile(`${root}/target`, "precious\n");
    await Deno.symlink(`${root}/target`, `${root}/resolver/svc`);
    const journal = await Journal.open(`${root}/state`);
    const mac = new MacosResolverConfigurator(journal, `${root}/resolver`);
    await assert.rejects(() => mac.apply(base), /not a regular file/);
    assert.equal(await Deno.readTextFile(`${root}/target`), "precious\n");
    await Deno.remove(`${root}/resolver/svc`);
    await mac.apply(base);
    assert.deepEqual(await tree(`${root}/resolver`), ["cluster.local", "svc"], "no temp file left");
    assert.match(await Deno.readTextFile(`${root}/resolver/svc`), /^nameserver 198\.18\.0\.3$/m);
    await mac.restore();
    assert.deepEqual(await tree(`${root}/resolver`), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
