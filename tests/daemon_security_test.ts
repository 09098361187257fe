/**
 * The daemon's side of the security review, end to end:
 *
 * - M1: a member's `up` naming a working directory under a 0700 root directory: the exec plugin
 *   runs in `/` (the credentials child enters the directory as the member, and cannot), and the
 *   secret next to it never comes back;
 * - M6: `sudo kconnect up` (through the daemon and in the foreground) runs the invoking user's
 *   exec plugin as that user (SUDO_UID), never as root;
 * - L3: a credentials child that prints without end is stopped at 1 MiB.
 *
 * Root only.
 */
import assert from "node:assert/strict";
import { TestCluster } from "./cluster/cluster.ts";
import { DENO_RUN, ROOT } from "./_dataplane.ts";
import { isRoot } from "./_netns.ts";
import { LineWatcher } from "./_lines.ts";
import { daemonPaths, kconnect, makeTestUser, sudoEnvOf, type TestUser } from "./_up.ts";
import { Daemon } from "../src/daemon/server.ts";
import { fetchMaterialAs, MAX_CHILD_OUTPUT } from "../src/k8s/as_user.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

/** /usr/bin/python3: reachable by any uid. */
const PYTHON = "/usr/bin/python3";

/** A kubeconfig (exec context) whose plugin runs `script` with /bin/sh. */
function execKubeconfig(server: string, script: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: k",
    "  cluster:",
    `    server: ${server}`,
    "users:",
    "- name: u",
    "  user:",
    "    exec:",
    "      apiVersion: client.authentication.k8s.io/v1",
    "      command: /bin/sh",
    "      args:",
    `      - "-c"`,
    `      - ${JSON.stringify(script)}`,
    "      interactiveMode: Never",
    "contexts:",
    "- name: c",
    "  context: { cluster: k, user: u }",
    "current-context: c",
    "",
  ].join("\n");
}

/** A raw client: sends `request` (with the nonce from hello) and prints the final answer. */
const RAW_UP = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
hello = json.loads(f.readline())
req = json.loads(sys.argv[2])
req["auth"] = hello["nonce"]
f.write((json.dumps(req) + "\\n").encode())
f.flush()
while True:
    line = f.readline()
    if not line:
        break
    m = json.loads(line)
    if m["type"] != "progress":
        print(json.dumps(m))
        break
`;

async function rawRequest(
  socket: string,
  user: TestUser,
  request: Record<string, unknown>,
): Promise<{ type: string; code?: string; message?: string }> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      user.groups.length ? `--groups=${user.groups.join(",")}` : "--clear-groups",
      "--inh-caps=-all",
      "--",
      PYTHON,
      "-c",
      RAW_UP,
      socket,
      JSON.stringify(request),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(text, `no answer: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text);
}

Deno.test({
  name:
    "M1: a member's up naming a cwd under a 0700 root directory runs the exec plugin in /, and the secret there never comes back",
  ...opts,
  fn: async () => {
    await using paths = await daemonPaths();
    const GROUP = 4242;
    const member = await makeTestUser(paths.dir, 4001, [GROUP]);
    // /…/private (0700 root) / open (0755) / secret.txt (0644): only the path is closed.
    const open = `${paths.dir}/private/open`;
    await Deno.mkdir(open, { recursive: true });
    await Deno.chmod(`${paths.dir}/private`, 0o700);
    await Deno.chmod(open, 0o755);
    await Deno.writeTextFile(`${open}/secret.txt`, "TOPSECRET-4c1d\n");
    await Deno.chmod(`${open}/secret.txt`, 0o644);
    const record = `${paths.dir}/plugin-record`;
    await Deno.writeTextFile(record, "");
    await Deno.chmod(record, 0o666);
    const kubeconfig = `${member.home}/kubeconfig`;
    await Deno.writeTextFile(
      kubeconfig,
      execKubeconfig(
        "https://127.0.0.1:9",
        `pwd >> ${record}; cat ./secret.txt >> ${record} 2>&1; cat ./secret.txt >&2; exit 1`,
      ),
    );
    await Deno.chown(kubeconfig, member.uid, member.gid);

    await using daemon = await Daemon.start({
      socket: paths.socket,
      access: { gid: GROUP, group: String(GROUP), uids: [] },
      stateDir: paths.stateDir,
      logFile: null,
    });
    const answer = await rawRequest(paths.socket, member, {
      v: 1,
      type: "up",
      kubeconfig,
      context: null,
      env: { HOME: member.home, DENO_DIR: member.denoDir, PATH: "/usr/bin:/bin" },
      cwd: open,
      switch: false,
      flags: { dns: "off" },
      config: null,
    });
    assert.equal(answer.type, "error", JSON.stringify(answer));
    assert.match(answer.message!, /Cannot get credentials as uid 4001/);
    const recorded = await Deno.readTextFile(record);
    assert.equal(recorded.split("\n")[0], "/", `the plugin ran in /:\n${recorded}`);
    assert.ok(!recorded.includes("TOPSECRET"), recorded);
    assert.ok(!answer.message!.includes("TOPSECRET"), answer.message);
    await daemon.close();
  },
});

Deno.test({
  name:
    "M6: sudo kconnect up (through the daemon, and --foreground) runs the user's exec plugin as SUDO_UID, never as root",
  ...opts,
  fn: async () => {
    await using cluster = await TestCluster.start();
    await using paths = await daemonPaths();
    const laptop = cluster.laptop;
    const user = await makeTestUser(paths.dir, 4001, []);
    const uids = `${paths.dir}/plugin-uids`;
    await Deno.writeTextFile(uids, "");
    await Deno.chmod(uids, 0o666);
    const kubeconfig = `${user.home}/kubeconfig`;
    await Deno.writeTextFile(kubeconfig, cluster.kubeconfigText("exec", uids), { mode: 0o600 });
    await Deno.chown(kubeconfig, user.uid, user.gid);
    // What `sudo kconnect up` run by uid 4001 has in its environment.
    const sudoEnv = sudoEnvOf(user, paths.env);
    try {
      const up = await kconnect(laptop, ["up", "--kubeconfig", kubeconfig, "--dns", "off"], {
        env: sudoEnv,
      });
      assert.equal(up.code, 0, up.stderr + up.stdout);
      const ran = (await Deno.readTextFile(uids)).trim().split("\n");
      assert.deepEqual([...new Set(ran)], ["4001"], "through the daemon: only as uid 4001");
      assert.match(
        up.stdout,
        /✓ kubeconfig: context "exec", user "exec-user" \(.*credentials as uid 4001\)/,
      );
      assert.match(up.stdout, /^ready: /m);
      const down = await kconnect(laptop, ["down"], { env: paths.env });
      assert.equal(down.code, 0, down.stderr);
    } finally {
      await kconnect(laptop, ["down"], { env: paths.env });
    }
    const viaDaemon = (await Deno.readTextFile(uids)).trim().split("\n");
    assert.ok(viaDaemon.length >= 1 && viaDaemon[0] !== "");
    assert.deepEqual([...new Set(viaDaemon)], ["4001"], "through the daemon: only as uid 4001");

    await Deno.writeTextFile(uids, "");
    const child = laptop.spawn([
      ...DENO_RUN,
      "-A",
      `${ROOT}main.ts`,
      "up",
      "--foreground",
      "--kubeconfig",
      kubeconfig,
      "--dns",
      "off",
      "--state-dir",
      paths.stateDir,
    ], { env: { ...sudoEnv, DENO_NO_UPDATE_CHECK: "1" }, stdout: "piped", stderr: "piped" });
    const out = new LineWatcher(child.stdout), err = new LineWatcher(child.stderr);
    try {
      await out.waitFor(/^ready/, 45_000).catch((e) => {
        throw new Error(`${e.message}\n${out.text()}\n${err.text()}`);
      });
      assert.match(out.text(), /credentials as uid 4001/);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.status;
      await Promise.all([out.done, err.done]);
    }
    const foreground = (await Deno.readTextFile(uids)).trim().split("\n");
    assert.deepEqual([...new Set(foreground)], ["4001"], "in the foreground: only as uid 4001");
  },
});

Deno.test({
  name: "L3: a credentials child that prints more than 1 MiB is stopped and its output dropped",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kc-flood-" });
    try {
      const kubeconfig = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        kubeconfig,
        execKubeconfig("https://127.0.0.1:9", "head -c 3000000 /dev/zero | tr '\\0' x >&2; exit 1"),
      );
      const t = Date.now();
      const err = await fetchMaterialAs(
        { uid: 0, gid: 0, env: { HOME: Deno.env.get("HOME") ?? "/root", ...denoDir() }, cwd: "/" },
        { kubeconfig, context: null },
      ).then(() => null, (e: Error) => e);
      assert.ok(err !== null, "it failed");
      assert.match(err.message, /printed more than 1 MiB and was stopped/);
      assert.ok(err.message.length < MAX_CHILD_OUTPUT, `${err.message.length} characters`);
      assert.ok(Date.now() - t < 30_000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function denoDir(): Record<string, string> {
  const d = Deno.env.get("DENO_DIR");
  return d ? { DENO_DIR: d } : {};
}
