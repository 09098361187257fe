import assert from "node:assert/strict";
import { RotatingFile } from "./log_file.ts";
import { logger, setLogLevel, setLogWriter } from "./log.ts";

Deno.test("RotatingFile.write() rotates at maxBytes, keeps `keep` old files, never splits a line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/logs/daemon.log`;
    const f = RotatingFile.open(path, { maxBytes: 100, keep: 3 });
    const lines = Array.from(
      { length: 40 },
      (_, i) => `line ${String(i).padStart(2, "0")} ${"x".repeat(12)}\n`,
    );
    for (const l of lines) f.write(l);
    f.close();
    assert.deepEqual(f.files(), [path, `${path}.1`, `${path}.2`, `${path}.3`]);
    const texts = f.files().map((p) => Deno.readTextFileSync(p));
    for (const t of texts) {
      assert.ok(new TextEncoder().encode(t).length <= 100, "no file is over the limit");
      assert.ok(t.endsWith("\n"));
    }
    // Newest first: the current file ends with the last line, and the files are contiguous.
    const joined = [...texts].reverse().join("");
    assert.ok(joined.endsWith(lines[39]));
    assert.ok(lines.join("").endsWith(joined), "the kept files are the latest lines, in order");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o640);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RotatingFile plugs into the logger as its writer and appends across reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/d.log`;
    let f = RotatingFile.open(path);
    const prev = setLogWriter((l) => f.write(l));
    setLogLevel("info");
    logger("daemon").info("first");
    f.close();
    f = RotatingFile.open(path);
    logger("daemon").info("second", { uid: 1000 });
    f.close();
    setLogWriter(prev);
    setLogLevel("warn");
    const text = Deno.readTextFileSync(path);
    assert.match(text, /INFO {2}daemon: first\n.*INFO {2}daemon: second uid=1000\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
