/**
 * Nothing left behind: `kconnect up` is killed with SIGKILL right after each setup step, and
 * `kconnect down` then leaves no TUN, no route and no resolver change. Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { isRoot } from "./_netns.ts";
import { removeTestStateDir, spawnUp, testStateDir } from "./_up.ts";

const STEPS = [
  /^✓ cluster reached/,
  /^✓ tunnel open/,
  /^✓ TUN/,
  /^✓ routes/,
  /^✓ DNS/,
  /^ready/,
];

Deno.test({
  name: "kill -9 of kconnect up after each setup step, then kconnect down: nothing remains",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const laptop = cluster.laptop;
    const resolvConf = await Deno.readFile(cluster.laptopResolvConf);
    for (const step of STEPS) {
      await t.step(`killed after ${step.source.replace(/[\\^]/g, "")}`, async () => {
        const up = spawnUp(laptop, ["--kubeconfig", cluster.kubeconfig, "--dns", "resolv.conf"]);
        await up.out.waitFor(step, 45_000);
        up.child.kill("SIGKILL");
        await up.child.status;
        const down = await laptop.exec([
          ...DENO_RUN,
          "-A",
          `${ROOT}main.ts`,
          "down",
          "--state-dir",
          testStateDir(laptop),
        ]);
        const link = await laptop.exec(["ip", "link", "show", "kconnect0"], { check: false });
        assert.notEqual(link.code, 0, `the TUN is gone (${down.stdout})`);
        for (const family of ["-4", "-6"]) {
          const routes =
            (await laptop.exec(["ip", family, "route", "show", "table", "all"])).stdout;
          assert.doesNotMatch(routes, /kconnect0|10\.96\.|10\.244\.|198\.18\.|fd00:6b63:/);
        }
        assert.deepEqual(await Deno.readFile(cluster.laptopResolvConf), resolvConf);
        const journal = await Deno.readTextFile(`${testStateDir(laptop)}/journal.json`)
          .then((t) => JSON.parse(t).entries, () => []);
        assert.deepEqual(journal, [], "the journal is empty");
      });
    }
    await removeTestStateDir(laptop);
  },
});
