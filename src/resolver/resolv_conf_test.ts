/** resolv.conf (review H1): nothing kconnect is given can add a line to the file. */
import assert from "node:assert/strict";
import { kconnectResolvConf } from "./resolv_conf.ts";
import { dnsPlan } from "./plan.ts";
import type { DnsPlan } from "./plan.ts";

const ORIGINAL = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n";
const plan = dnsPlan({
  server: "198.18.0.3",
  link: "kconnect0",
  clusterDomain: "cluster.local",
  namespace: "default",
  namespaces: ["default"],
  cidrs: [],
});

/** The lines a resolv.conf of `plan` over `original` may have (keywords only). */
function keywords(text: string): string[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => l.split(" ")[0]);
}

Deno.test("kconnectResolvConf(): a search domain or server with a newline, space or control character is refused", () => {
  const evil = [
    "evil\nnameserver 203.0.113.9",
    "x\roptions ndots:0",
    "a b",
    "a\tb",
    "a\u0000b",
    "",
  ];
  for (const e of evil) {
    const bad: DnsPlan = { ...plan, searchDomains: [`default.svc.${e}`, ...plan.searchDomains] };
    assert.throws(() => kconnectResolvConf(ORIGINAL, bad), TypeError, JSON.stringify(e));
  }
  assert.throws(
    () => kconnectResolvConf(ORIGINAL, { ...plan, server: "198.18.0.3\nnameserver 203.0.113.9" }),
    TypeError,
  );
});

Deno.test("kconnectResolvConf(): a hostile cluster domain never reaches the file (dnsPlan refuses it first)", () => {
  assert.throws(() =>
    dnsPlan({
      server: "198.18.0.3",
      link: "kconnect0",
      clusterDomain: "evil\nnameserver 203.0.113.9\noptions ndots:0",
      namespace: "default",
      namespaces: [],
      cidrs: [],
    })
  );
});

Deno.test("kconnectResolvConf() writes exactly the nameserver, search and original options lines", () => {
  const text = kconnectResolvConf(ORIGINAL + "search a\u001bb\n", plan);
  assert.deepEqual(keywords(text), ["nameserver", "nameserver", "search", "options"]);
  assert.ok(!text.includes("\u001b"));
});
