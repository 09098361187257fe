import assert from "node:assert/strict";
import { managerBundle } from "./bundle.ts";
import { VERSION } from "../version.ts";

Deno.test("the manager bundle: one file, well under a ConfigMap's 1 MiB, no client-node, runs", async () => {
  const cache = await Deno.makeTempDir({ prefix: "kc-bundle-test-" });
  const saved = Deno.env.get("KCONNECT_CACHE_DIR");
  Deno.env.set("KCONNECT_CACHE_DIR", cache);
  try {
    const b = await managerBundle();
    assert.match(b.source, /^bundled from source/);
    const size = new TextEncoder().encode(b.code).length;
    assert.ok(size < 512 * 1024, `${size} bytes`);
    // client-node's code is not in it (its name is, in the embedded deno.json import map).
    assert.doesNotMatch(b.code, /class KubeConfig|loadFromFile|node-fetch/);
    assert.doesNotMatch(b.code, /registerUp|registerInstall|UpConnection/);
    const again = await managerBundle();
    assert.equal(again.sha256, b.sha256, "cached and deterministic");
    const file = `${cache}/run/manager.js`;
    await Deno.mkdir(`${cache}/run`);
    await Deno.writeTextFile(file, b.code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-env", "--no-prompt", file, "--version"],
      cwd: `${cache}/run`,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(
      new TextDecoder().decode(out.stdout).trim(),
      VERSION,
      new TextDecoder().decode(out.stderr),
    );
  } finally {
    if (saved === undefined) Deno.env.delete("KCONNECT_CACHE_DIR");
    else Deno.env.set("KCONNECT_CACHE_DIR", saved);
    await Deno.remove(cache, { recursive: true });
  }
});
