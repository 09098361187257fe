import assert from "node:assert/strict";
import { UsageError } from "../cmdline/program.ts";
import { flagSettings } from "./up.ts";

Deno.test("up's --mtu and --transports are checked by the config file's rules, in its words, as usage errors", () => {
  assert.deepEqual(flagSettings({ mtu: "9000", transports: "4" }), { mtu: 9000, transports: 4 });
  const cases: [Record<string, string>, RegExp][] = [
    [{ mtu: "abc" }, /^Invalid option --mtu: expected an integer from 1280 to 65535, got "abc"$/],
    [{ mtu: "100" }, /^Invalid option --mtu: expected an integer from 1280 to 65535, got 100$/],
    [{ transports: "0" }, /^Invalid option --transports: expected an integer from 1 to 16, got 0$/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(() => flagSettings(opts), (e) => e instanceof UsageError && re.test(e.message));
  }
});
