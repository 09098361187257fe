/**
 * The demo (`bash scripts/demo.sh`, the README's first command) runs through, and its name
 * steps print what a reader is told to expect. Root only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runDemo } from "./demo.ts";
import { isRoot } from "./_netns.ts";

/** The lines printed after `$ <command>`, up to the next command or step. */
function answer(lines: string[], command: string): string {
  const at = lines.indexOf(`$ ${command}`);
  assert.notEqual(at, -1, `the demo ran \`${command}\`:\n${lines.join("\n")}`);
  const out: string[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith("$ ") || line.startsWith("== ") || line === "") break;
    out.push(line);
  }
  return out.join("\n");
}

Deno.test({
  name: "the demo shows cluster names resolving and answering, then kconnect down undoing it",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lines: string[] = [];
    await runDemo({ print: (line) => lines.push(...line.split("\n")) });
    const web = /^10\.96\.0\.20\s+web\.default\.svc\.cluster\.local$/;

    assert.match(answer(lines, "curl -sS -m 5 http://web.default/"), /resolve host: web\.default/);
    assert.match(lines.join("\n"), /^✓ DNS: resolv\.conf: default\.svc\.cluster\.local /m);
    assert.match(lines.join("\n"), /^ready: connected to context "test"/m);

    // Connected: the first curl of web.default is the one before kconnect up.
    const connected = lines.slice(lines.findIndex((l) => l.startsWith("ready: connected")));
    assert.equal(answer(connected, "curl -sS -m 5 http://web.default/"), "hello from web");
    assert.match(answer(connected, "getent hosts web.default.svc.cluster.local"), web);
    assert.match(answer(connected, "getent hosts web"), web);
    assert.equal(answer(connected, "curl -sS -m 5 http://web/"), "hello from web");
    assert.equal(
      answer(connected, "redis-cli -h redis.default GET greeting"),
      "hi from the laptop",
    );

    const down = lines.slice(lines.findIndex((l) => l.startsWith("$ kconnect down")));
    assert.match(down[1], /^disconnected from context "test" \(kconnect up, pid \d+\)$/);
    assert.match(answer(down, "getent hosts web.default.svc.cluster.local"), /^\(exit status 2\)/);
    assert.match(lines.at(-1)!, /^nothing left behind: kc-laptop-/);
  },
});
