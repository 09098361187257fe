/**
 * Security review L5: what kconnect prints may carry text from the traffic manager, an exec
 * plugin or another member; none of it may reach the terminal as control sequences.
 */
import assert from "node:assert/strict";
import { sourceRunFlags } from "../host/self.ts";

const HOSTILE = "warn\x1b]0;owned\x07\x1b[2J\u009b31m\r\u202eevil\x00\x7f\tend";

async function printed(code: string): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...sourceRunFlags(), code],
    cwd: new URL("../..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  assert.ok(out.success, d.decode(out.stderr));
  return { stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("print, printLine and printError escape control characters, keep newlines and tabs", async () => {
  const r = await printed(`
    import { print, printError, printLine } from "./src/cmdline/output.ts";
    const h = ${JSON.stringify(HOSTILE)};
    print(h + "\\n");
    printLine("! " + h);
    printLine(JSON.stringify({ warning: h, c1: "\\u0085" }));
    printError("kconnect: " + h + "\\n");
  `);
  const want = "warn\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m\\r\\u202eevil\\u0000\\u007f\tend";
  assert.equal(r.stdout.split("\n")[0], want);
  assert.equal(r.stdout.split("\n")[1], `! ${want}`);
  // JSON output keeps its meaning: the escapes are JSON's.
  assert.deepEqual(JSON.parse(r.stdout.split("\n")[2]), { warning: HOSTILE, c1: "\u0085" });
  assert.equal(r.stderr, `kconnect: ${want}\n`);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(r.stdout + r.stderr, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
});
