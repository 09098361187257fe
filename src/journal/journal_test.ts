import assert from "node:assert/strict";
import { Journal } from "./journal.ts";

Deno.test("Journal keeps entries across reopen and forgets removed ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const j = await Journal.open(dir);
    const a = await j.add("resolv.conf", { path: "/etc/resolv.conf" });
    await j.add("resolved-link", { link: "kconnect0" });
    const again = await Journal.open(dir);
    assert.deepEqual(again.entries().map((e) => e.kind), ["resolv.conf", "resolved-link"]);
    assert.equal(again.entries()[0].pid, Deno.pid);
    await again.remove(a);
    assert.deepEqual((await Journal.open(dir)).entries().map((e) => e.kind), ["resolved-link"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Journal.open() moves a damaged journal aside and says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/journal.json`, "{ not json");
    await assert.rejects(() => Journal.open(dir), /journal .* is damaged/);
    assert.equal((await Journal.open(dir)).entries().length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Journal keeps a valid file when changes are recorded concurrently", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const j = await Journal.open(dir);
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => j.add("route", { i })));
    await Promise.all(ids.slice(0, 10).map((id) => j.remove(id)));
    const again = await Journal.open(dir);
    assert.equal(again.entries().length, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
