/**
 * Only the client that opened a session can resume it, through the real path (API server
 * port-forward to the traffic manager of the test cluster): a second client that presents the
 * session's id with another secret is refused and changes nothing; the owner resumes. Root only.
 */
import assert from "node:assert/strict";
import { E2E_TEST } from "./_connected.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { MANAGER_POD, TestCluster } from "./cluster/cluster.ts";

Deno.test({
  name:
    "a second client that presents another client's session id gets nothing; the owner still resumes",
  ...E2E_TEST,
  fn: async () => {
    await using cluster = await TestCluster.start({ k8sVersion: "1.33" });
    const r = await cluster.laptop.exec([
      ...DENO_RUN,
      "-A",
      `${ROOT}tests/_resume_thief.ts`,
      "--kubeconfig",
      cluster.kubeconfig,
      "--namespace",
      MANAGER_POD.namespace,
      "--pod",
      MANAGER_POD.name,
      "--port",
      String(MANAGER_POD.port),
    ], { check: false });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.match(out.thief, /^refused 3: the proof does not match$/, "wrong secret: BadProof");
    assert.match(out.stranger, /^refused 1: no such session/, "unknown id");
    assert.equal(out.stillAnswers, true, "the owner's session was not touched");
    assert.equal(out.afterResume, true, "the owner resumed it");
    assert.match(
      cluster.managerErrors.text() + cluster.managerOutput.text(),
      /wrong proof refused/,
    );
  },
});
