import assert from "node:assert/strict";
import { undoKinds } from "../journal/undo.ts";
import "./leftovers.ts";

Deno.test("leftovers.ts loads the undo of every kind of change kconnect journals", () => {
  assert.deepEqual(undoKinds().sort(), [
    "nrpt-rules",
    "resolv.conf",
    "resolved-link",
    "resolver-file",
    "route",
    "tun",
  ]);
});
