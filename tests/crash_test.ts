/**
 * Nothing left behind: `kconnect up` is killed with SIGKILL right after each setup step, and
 * `kconnect down` then leaves no TUN, no route and no resolver change. Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { isRoot, linkExists } from "./_netns.ts";
import { removeTestStateDir, spawnUp, testStateDir } from "./_up.ts";

/**
 * Each step's progress line, and the journal entries (kinds) `up` must have written by then:
 * every change is journaled before it is made. A step may find more (the next change may be
 * journaled before the kill lands), never fewer.
 */
const STEPS: [RegExp, string[]][] = [
  [/^✓ cluster reached/, []],
  [/^✓ tunnel open/, []],
  [/^✓ TUN/, ["tun"]],
  [/^✓ routes/, ["tun", "route", "route"]],
  [/^✓ DNS/, ["tun", "route", "route", "resolv.conf"]],
  [/^ready/, ["tun", "route", "route", "resolv.conf"]],
];

/** The journal's entry kinds, or null when there is no journal file. */
async function journalKinds(dir: string): Promise<string[] | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/journal.json`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const parsed = JSON.parse(text);
  assert.equal(parsed.version, 1, text);
  return (parsed.entries as { kind: string }[]).map((e) => e.kind);
}

/** Whether `want` (a multiset) is contained in `have`. */
function contains(have: string[], want: string[]): boolean {
  const left = [...have];
  for (const w of want) {
    const i = left.indexOf(w);
    if (i < 0) return false;
    left.splice(i, 1);
  }
  return true;
}

Deno.test({
  name: "kill -9 of kconnect up after each setup step, then kconnect down: nothing remains",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const laptop = cluster.laptop;
    const dir = testStateDir(laptop);
    const resolvConf = await Deno.readFile(cluster.laptopResolvConf);
    for (const [step, journaled] of STEPS) {
      await t.step(`killed after ${step.source.replace(/[\\^]/g, "")}`, async () => {
        const up = spawnUp(laptop, ["--kubeconfig", cluster.kubeconfig, "--dns", "resolv.conf"]);
        await up.out.waitFor(step, 45_000);
        up.child.kill("SIGKILL");
        await up.child.status;
        // What the dead process left in its journal, in the state directory it was given.
        const left = await journalKinds(dir);
        if (journaled.length > 0) {
          assert.ok(left !== null, `no journal in ${dir} after up made changes`);
          assert.ok(contains(left, journaled), `journal has ${left}, needs at least ${journaled}`);
        }
        const down = await laptop.exec([
          ...DENO_RUN,
          "-A",
          `${ROOT}main.ts`,
          "down",
          "--state-dir",
          dir,
        ]);
        // down undid exactly what the journal listed, one line per entry.
        const undone = down.stdout.split("\n").filter((l) => l.startsWith("undone: "));
        assert.equal(undone.length, left?.length ?? 0, down.stdout);
        assert.equal(
          await linkExists(laptop, "kconnect0"),
          false,
          `the TUN is gone (${down.stdout})`,
        );
        for (const family of ["-4", "-6"]) {
          const routes =
            (await laptop.exec(["ip", family, "route", "show", "table", "all"])).stdout;
          assert.doesNotMatch(routes, /kconnect0|10\.96\.|10\.244\.|198\.18\.|fd00:6b63:/);
        }
        assert.deepEqual(await Deno.readFile(cluster.laptopResolvConf), resolvConf);
        // The journal is still there, and empty: down removed each entry as it undid it.
        const after = await journalKinds(dir);
        if (left !== null) assert.deepEqual(after, [], "the journal is empty");
        else assert.equal(after, null, "down wrote no journal where up wrote none");
      });
    }
    await removeTestStateDir(laptop);
  },
});
