import assert from "node:assert/strict";
import type { Command } from "commander";
import denoJson from "../../deno.json" with { type: "json" };
import { buildProgram } from "../../main.ts";
import { DEFAULT_LOG_LEVEL, getLogLevel, setLogLevel } from "../log.ts";
import { runProgram } from "./program.ts";

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

// --- Global options (issue 10 item 3): every command takes the kubectl flags, before or after
// its name. These run the real program from buildProgram() in this process, with each command's
// action replaced by one that records the options it was given.

/** The commands that use these kubectl flags; every other command ignores them. */
const USES: Record<string, string[]> = {
  up: ["--kubeconfig", "--context", "--namespace"],
  install: ["--kubeconfig", "--context"],
  uninstall: ["--kubeconfig", "--context"],
  credentials: ["--kubeconfig", "--context"],
};
const KUBECTL_FLAGS = ["--kubeconfig", "--context", "--namespace"];
const IGNORED = "accepted for kubectl compatibility; ignored by this command";

interface Ran {
  path: string[];
  opts: Record<string, unknown>;
  /** Where the root's --log-level came from (what `kconnect daemon` looks at). */
  rootLogLevelSource: string | undefined;
  logLevel: string;
}

function leafPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) =>
    sub.commands.length === 0 ? [[...prefix, sub.name()]] : leafPaths(sub, [...prefix, sub.name()])
  );
}

/** Runs `args` through buildProgram() with recording actions; returns what ran and printed. */
async function record(args: string[]) {
  const program = buildProgram();
  const ran: Ran[] = [];
  const replace = (command: Command, prefix: string[]) => {
    for (const sub of command.commands) {
      const path = [...prefix, sub.name()];
      if (sub.commands.length > 0) replace(sub, path);
      else {
        sub.action((...args: unknown[]) => {
          const cmd = args.at(-1) as Command;
          ran.push({
            path,
            opts: { ...cmd.opts() },
            rootLogLevelSource: program.getOptionValueSource("logLevel"),
            logLevel: getLogLevel(),
          });
        });
      }
    }
  };
  replace(program, []);
  let stdout = "";
  let stderr = "";
  const out = Deno.stdout.writeSync;
  const err = Deno.stderr.writeSync;
  Deno.stdout.writeSync = (p: Uint8Array) => (stdout += decoder.decode(p), p.length);
  Deno.stderr.writeSync = (p: Uint8Array) => (stderr += decoder.decode(p), p.length);
  let code: number;
  try {
    code = await runProgram(program, args);
  } finally {
    Deno.stdout.writeSync = out;
    Deno.stderr.writeSync = err;
    setLogLevel(DEFAULT_LOG_LEVEL);
  }
  return { code, stdout, stderr, ran };
}

const GLOBALS = [
  "--kubeconfig",
  "/k/config",
  "--context",
  "ctx",
  "-n",
  "ns",
  "--log-level",
  "error",
];
const EXPECTED = { kubeconfig: "/k/config", context: "ctx", namespace: "ns", logLevel: "error" };

Deno.test("every command takes --kubeconfig, --context, -n/--namespace and --log-level before or after its name", async () => {
  const paths = leafPaths(buildProgram());
  for (const name of ["up", "down", "status", "daemon", "credentials", "traffic-manager"]) {
    assert.ok(paths.some((p) => p[0] === name), name);
  }
  assert.ok(paths.some((p) => p.join(" ") === "service install"));
  for (const path of paths) {
    const placements = [
      [...path, ...GLOBALS],
      [...GLOBALS, ...path],
      [...path.slice(0, 1), ...GLOBALS, ...path.slice(1)],
      [...path, "--kubeconfig=/k/config", "--context=ctx", "--namespace=ns", "--log-level=error"],
    ];
    for (const args of placements) {
      const run = await record(args);
      const what = `kconnect ${args.join(" ")}: ${run.stderr}`;
      assert.equal(run.code, 0, what);
      assert.equal(run.ran.length, 1, what);
      assert.deepEqual(run.ran[0].path, path, what);
      for (const [key, value] of Object.entries(EXPECTED)) {
        assert.equal(run.ran[0].opts[key], value, `${what} ${key}`);
      }
      assert.equal(run.ran[0].logLevel, "error", what);
      assert.equal(run.ran[0].rootLogLevelSource, "cli", what);
    }
  }
});

Deno.test("a command that uses --kubeconfig gets it in its own options, wherever it is given", async () => {
  for (const name of Object.keys(USES)) {
    const table: [string[], string][] = [
      [[name, "--kubeconfig", "/after"], "/after"],
      [["--kubeconfig", "/before", name], "/before"],
      [["--kubeconfig", "/before", name, "--kubeconfig", "/after"], "/after"],
    ];
    for (const [args, want] of table) {
      const run = await record(args);
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      assert.equal(run.ran[0].opts.kubeconfig, want, args.join(" "));
    }
    // The command's own definition is the one that parses it: no second option was added.
    const command = buildProgram().commands.find((c) => c.name() === name)!;
    for (const flag of USES[name]) {
      assert.equal(command.options.filter((o) => o.long === flag).length, 1, `${name} ${flag}`);
    }
  }
  const up = await record(["-n", "web", "up", "--context", "prod", "--foreground"]);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.ran[0].opts.namespace, "web");
  assert.equal(up.ran[0].opts.context, "prod");
  assert.equal(up.ran[0].opts.foreground, true);
});

Deno.test("a command's --help says which kubectl flags it ignores", async () => {
  for (const path of leafPaths(buildProgram())) {
    const run = await record([...path, "--help"]);
    assert.equal(run.code, 0, `${path.join(" ")} --help: ${run.stderr}`);
    const global = run.stdout.split("Global Options:\n")[1]?.replace(/\s+/g, " ");
    assert.ok(global, `${path.join(" ")} --help has no Global Options:\n${run.stdout}`);
    assert.ok(global.includes("--log-level <level>"), path.join(" "));
    for (const flag of KUBECTL_FLAGS) {
      const line = global.slice(global.indexOf(flag)).split(/ --| -n, /)[0];
      assert.ok(global.includes(flag), `${path.join(" ")} ${flag}`);
      const ignored = !(USES[path[0]] ?? []).includes(flag);
      assert.equal(line.includes(IGNORED), ignored, `${path.join(" ")} --help: ${line}`);
    }
  }
  const root = await record(["--help"]);
  assert.match(root.stdout.replace(/\s+/g, " "), /accepted by every command, before or after/);
});

Deno.test("a bad --log-level after a command that ignores it is a usage error", async () => {
  const run = await record(["status", "--log-level", "loud"]);
  assert.equal(run.code, 2);
  assert.deepEqual(run.ran, []);
  assert.match(run.stderr, /^kconnect: option '--log-level <level>' argument 'loud' is invalid/);
});
