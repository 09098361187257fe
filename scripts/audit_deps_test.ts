import assert from "node:assert/strict";
import { findings, lockedPackages } from "./audit_deps.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("lockedPackages() reads every npm package of deno.lock, scoped and peer-suffixed too", async () => {
  const lock = `{"version":"5","npm":{
    "@jsep-plugin/regex@1.1.0_jsep@1.6.0":{},"jsep@1.6.0":{},"ws@8.18.0":{},"ws@8.23.0":{}}}`;
  assert.deepEqual(
    lockedPackages(lock),
    new Map([["@jsep-plugin/regex", ["1.1.0"]], ["jsep", ["1.6.0"]], ["ws", ["8.18.0", "8.23.0"]]]),
  );
  const real = lockedPackages(await Deno.readTextFile(`${ROOT}deno.lock`));
  assert.ok(real.has("@kubernetes/client-node"));
  assert.ok(real.has("form-data"));
  assert.throws(() => lockedPackages('{"version":"5"}'), TypeError);
  assert.throws(() => lockedPackages('{"npm":{"x@notaversion":{}}}'), TypeError);
});

Deno.test("findings() keeps only advisories whose range covers a locked version", () => {
  const packages = new Map([["form-data", ["4.0.6"]], ["tar-fs", ["2.1.1", "3.1.3"]]]);
  const adv = (id: number, severity: string, range: string) => ({
    id,
    url: `https://github.com/advisories/GHSA-${id}`,
    title: `advisory ${id}`,
    severity,
    vulnerable_versions: range,
  });
  const got = findings(packages, {
    "form-data": [adv(1, "critical", "<2.5.4 || >=3.0.0 <3.0.4 || >=4.0.0 <4.0.4")],
    "tar-fs": [adv(2, "high", ">=2.0.0 <2.1.2 || >=3.0.0 <3.0.7"), adv(3, "low", "<=3.1.3")],
  });
  assert.deepEqual(
    got.map((f) => `${f.name}@${f.version} ${f.advisory.id}`),
    ["tar-fs@2.1.1 2", "tar-fs@2.1.1 3", "tar-fs@3.1.3 3"],
  );
  assert.throws(() => findings(packages, []), TypeError);
  assert.throws(() => findings(packages, { x: [{ severity: "bad" }] }), TypeError);
});

/** Runs the script against a stand-in registry; returns its status, output and what it asked. */
async function audit(
  answer: (body: Record<string, string[]>) => Response,
  args: string[] = [],
): Promise<{ code: number; out: string; asked: Record<string, string[]> | null }> {
  let asked: Record<string, string[]> | null = null;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      assert.equal(req.method, "POST");
      assert.equal(new URL(req.url).pathname, "/-/npm/v1/security/advisories/bulk");
      asked = await req.json();
      return answer(asked!);
    },
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      `${ROOT}deno.json`,
      "--frozen",
      "--cached-only",
      `--allow-read=${ROOT}deno.lock`,
      "--allow-net=127.0.0.1",
      `${ROOT}scripts/audit_deps.ts`,
      "--registry",
      `http://127.0.0.1:${server.addr.port}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr), asked };
}

const json = (o: unknown, status = 200) =>
  new Response(JSON.stringify(o), { status, headers: { "content-type": "application/json" } });

Deno.test("audit_deps exits 1 on a moderate-or-worse advisory for a locked version, 0 otherwise, 2 when it cannot check", async () => {
  const locked = lockedPackages(await Deno.readTextFile(`${ROOT}deno.lock`));
  const version = locked.get("form-data")![0];
  const advisory = (severity: string, range: string) => ({
    "form-data": [{
      id: 1234,
      url: "https://github.com/advisories/GHSA-fjxv-7rqg-78g4",
      title: "form-data uses unsafe random function",
      severity,
      vulnerable_versions: range,
      cwe: ["CWE-330"],
      cvss: { score: 9.4, vectorString: null },
    }],
  });

  const clean = await audit(() => json({}));
  assert.equal(clean.code, 0, clean.out);
  assert.deepEqual(clean.asked, Object.fromEntries(locked), "every locked name@version is asked");
  assert.match(clean.out, /0 advisories apply, 0 at or above moderate/);

  const high = await audit(() => json(advisory("high", `<=${version}`)));
  assert.equal(high.code, 1, high.out);
  assert.match(high.out, new RegExp(`FAIL +high +form-data@${version}: form-data uses unsafe`));

  const patched = await audit(() => json(advisory("critical", `<${version}`)));
  assert.equal(patched.code, 0, `an advisory for older versions only: ${patched.out}`);

  const low = await audit(() => json(advisory("low", `<=${version}`)));
  assert.equal(low.code, 0, low.out);
  assert.match(low.out, /note +low +form-data/);

  const ignored = await audit(() => json(advisory("high", "*")), ["--ignore", "1234"]);
  assert.equal(ignored.code, 0, ignored.out);

  const strict = await audit(() => json(advisory("low", "*")), ["--level", "low"]);
  assert.equal(strict.code, 1, strict.out);

  const refused = await audit(() =>
    new Response(null, { status: 405, headers: { allow: "GET,HEAD" } })
  );
  assert.equal(refused.code, 2, refused.out);
  assert.match(refused.out, /could not check .* HTTP 405/);

  const junk = await audit(() => new Response("<html>", { status: 200 }));
  assert.equal(junk.code, 2, junk.out);
});
