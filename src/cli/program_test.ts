import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function deno(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Deno.env.toObject();
  delete base.KCONNECT_LOG_LEVEL;
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { ...base, NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function kconnect(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return deno(["run", "-A", MAIN, ...args], env);
}

/** Runs a program from createProgram() with one command, `fail`, that throws. */
function failing(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const program = new URL("./program.ts", import.meta.url).href;
  const code = `
    import { createProgram, runProgram, UsageError } from ${JSON.stringify(program)};
    const program = createProgram();
    program.command("fail").action(() => {
      throw new Error("could not open /dev/net/tun", { cause: new Error("permission denied") });
    });
    program.command("misuse").action(() => {
      throw new UsageError("--route 10.96.0.0/33: prefix length must be at most 32");
    });
    Deno.exit(await runProgram(program, Deno.args));
  `;
  return deno(["eval", "--ext=ts", code, ...args], env);
}

Deno.test("kconnect --help lists the commands on stdout and exits 0", async () => {
  const run = await kconnect(["--help"]);
  assert.equal(run.code, 0);
  assert.equal(run.stderr, "");
  for (const word of ["Usage: kconnect", "--log-level", "version", "forward"]) {
    assert.ok(run.stdout.includes(word), word);
  }
});

Deno.test("kconnect version prints version and runtime; --json is machine-readable", async () => {
  const text = await kconnect(["version"]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, new RegExp(`^kconnect ${denoJson.version.replaceAll(".", "\\.")}\n`));
  assert.match(text.stdout, /commit: +\(running from source\)/);
  assert.ok(text.stdout.includes(`deno:       ${Deno.version.deno}`));
  assert.ok(text.stdout.includes(`os/arch:    ${Deno.build.os}/${Deno.build.arch}`));
  const json = await kconnect(["version", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout), {
    version: denoJson.version,
    commit: null,
    buildDate: null,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    arch: Deno.build.arch,
  });
  const short = await kconnect(["--version"]);
  assert.deepEqual([short.code, short.stdout], [0, `${denoJson.version}\n`]);
});

Deno.test("kconnect exits 2 with 'kconnect: <message>' on usage errors", async () => {
  const table: [string[], RegExp][] = [
    [["bogus"], /^kconnect: unknown command 'bogus'\n/],
    [["--nope"], /^kconnect: unknown option '--nope'\n/],
    [["--log-level", "loud", "version"], /^kconnect: option '--log-level <level>' argument 'loud'/],
    [["version", "extra"], /^kconnect: too many arguments for 'version'/],
  ];
  for (const [args, message] of table) {
    const run = await kconnect(args);
    assert.equal(run.code, 2, args.join(" "));
    assert.equal(run.stdout, "");
    assert.match(run.stderr, message);
    assert.match(run.stderr, /Run 'kconnect --help' for usage\.\n$/);
  }
  const bare = await kconnect([]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^Usage: kconnect/);
});

Deno.test("runProgram() exits 1 on a failing command, with a stack trace only at debug", async () => {
  const quiet = await failing(["fail"]);
  assert.equal(quiet.code, 1);
  assert.equal(quiet.stderr, "kconnect: could not open /dev/net/tun: permission denied\n");
  const debug = await failing(["fail", "--log-level", "debug"]);
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, /^kconnect: could not open/);
  assert.match(debug.stderr, /DEBUG cli: Error: could not open \/dev\/net\/tun\n +at /);
  const viaEnv = await failing(["fail"], { KCONNECT_LOG_LEVEL: "debug" });
  assert.match(viaEnv.stderr, /DEBUG cli: /);
});

Deno.test("runProgram() exits 2 on a UsageError from a command", async () => {
  const run = await failing(["misuse"]);
  assert.equal(run.code, 2);
  assert.equal(
    run.stderr,
    "kconnect: --route 10.96.0.0/33: prefix length must be at most 32\n" +
      "Run 'kconnect --help' for usage.\n",
  );
});

Deno.test("kconnect forward is registered", async () => {
  const run = await kconnect(["forward", "--help"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /Usage: kconnect forward/);
});
