/**
 * `fetchMaterialAsToken` through the real `runAsToken` against the fake Windows of
 * `src/host/windows_run_as_fake.ts`: what the credentials child is started with, and what comes
 * back.
 */
import assert from "node:assert/strict";
import { childEnvironment, fetchMaterialAsToken } from "./as_user_windows.ts";
import { runAsToken } from "../host/windows_run_as.ts";
import { FakeWindowsRunAs, type FakeWindowsRunAsOptions } from "../host/windows_run_as_fake.ts";
import { sampleMaterial } from "./_test_material.ts";

const EXE = "C:\\Program Files\\kconnect\\kconnect.exe";
const DAEMON_ENV = {
  SystemRoot: "C:\\Windows",
  ProgramData: "C:\\ProgramData",
  PATHEXT: ".COM;.EXE",
  KCONNECT_SECRET: "daemon-only",
};
const USER_ENV = {
  USERPROFILE: "C:\\Users\\Jo Doe",
  LOCALAPPDATA: "C:\\Users\\Jo Doe\\AppData\\Local",
  KUBECONFIG: "C:\\Users\\Jo Doe\\.kube\\config",
  AWS_PROFILE: "dev",
  PATH: "C:\\evil;C:\\Windows",
};

async function fetchWith(fakeOptions: FakeWindowsRunAsOptions) {
  const fake = new FakeWindowsRunAs(fakeOptions);
  const token = fake.userToken();
  const result = await fetchMaterialAsToken(
    { token, sid: "S-1-5-21-1-2-3-1001", env: USER_ENV, cwd: "C:\\Users\\Jo Doe\\work" },
    {
      kubeconfig: null,
      context: "prod",
      command: [EXE],
      daemonEnv: DAEMON_ENV,
      run: (t, o) => runAsToken(fake, t, o),
    },
  ).then((m) => ({ m }), (e: Error) => ({ e }));
  assert.deepEqual(fake.leaked(), []);
  assert.deepEqual(fake.violations, []);
  return { fake, result };
}

Deno.test("windows credentials: the child runs as the user with an environment the daemon built; the user's goes on stdin", async () => {
  let stdin = "";
  const material = sampleMaterial({ context: "prod" });
  const { fake, result } = await fetchWith({
    program: (bytes) => {
      stdin = new TextDecoder().decode(bytes);
      return { stdout: `progress\r\n${JSON.stringify(material)}\r\n` };
    },
  });
  assert.deepEqual(result, { m: material });
  const l = fake.launches[0];
  assert.equal(l.application, EXE);
  assert.equal(
    l.commandLine,
    `"${EXE}" credentials --json --env-stdin --cwd "C:\\Users\\Jo Doe\\work" --context prod`,
  );
  assert.equal(l.cwd, "C:\\Windows\\System32", "never the client's directory");
  const block = new TextDecoder("utf-16le").decode(l.environment).split("\0").filter((x) => x);
  assert(block.includes("PATH=C:\\Windows\\System32;C:\\Windows"), "a fixed PATH, not the user's");
  assert(block.includes("USERPROFILE=C:\\Users\\Jo Doe"));
  assert(!block.some((v) => v.startsWith("KCONNECT_SECRET=")), "the daemon's own variables stay");
  assert(!block.some((v) => v.startsWith("AWS_PROFILE=")), "the user's variables go on stdin");
  assert.deepEqual(JSON.parse(stdin), USER_ENV);
});

Deno.test("windows credentials: a failing child's error names the user and says why", async () => {
  const { result } = await fetchWith({
    program: () => ({ stderr: 'kconnect: context "prod" not found\n', code: 1 }),
  });
  assert("e" in result);
  assert.equal(
    result.e.message,
    'Cannot get credentials as S-1-5-21-1-2-3-1001: context "prod" not found',
  );
});

Deno.test("windows credentials: profile folders that are not absolute drive paths are not passed", () => {
  const env = childEnvironment({ SystemRoot: "C:\\Windows" }, {
    USERPROFILE: "\\\\server\\share",
    APPDATA: "C:\\Users\\me\\AppData\\Roaming",
  });
  assert.equal(env.USERPROFILE, undefined);
  assert.equal(env.APPDATA, "C:\\Users\\me\\AppData\\Roaming");
});
