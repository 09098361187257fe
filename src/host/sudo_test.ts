import assert from "node:assert/strict";
import { sudoUid } from "./sudo.ts";

Deno.test("sudoUid() reads a non-root uid from SUDO_UID only", () => {
  assert.equal(sudoUid({ SUDO_UID: "1000" }), 1000);
  for (const v of [undefined, "", "0", "-1", "1000x", " 1000", "4294967295", "99999999999"]) {
    assert.equal(sudoUid({ SUDO_UID: v }), null, String(v));
  }
});
