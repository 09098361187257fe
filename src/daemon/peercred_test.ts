/**
 * Security review M2: the daemon takes the client's uid from the kernel (SO_PEERCRED), so a
 * proof file another user's (or root's) file was hard-linked into cannot lend that user's
 * identity; where the file proof is still used, such a file is refused because it does not hold
 * the nonce; and the auth directory's sweeper removes entries whatever their mtime says.
 * Root only (other uids through setpriv; the hard-link attack with fs.protected_hardlinks off).
 */
import assert from "node:assert/strict";
import { PeerCredListener, peerCredSupported } from "./peercred.ts";
import { Daemon } from "./server.ts";
import { callDaemon } from "./client.ts";
import type { StatusReport } from "./status.ts";

const linuxRoot = Deno.build.os === "linux" && Deno.uid() === 0;
const opts = { ignore: !linuxRoot || !peerCredSupported(), sanitizeResources: false };

/** /usr/bin/python3: reachable by any uid (a pyenv shim under /root is not). */
const PYTHON = "/usr/bin/python3";

/** `setpriv` arguments that run `cmd` as `uid` (gid the same, no groups). */
function asUser(uid: number, cmd: string[]): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--",
    ...cmd,
  ];
}

/** A scratch directory other uids can traverse (mode 0755), removed afterwards. */
const withDir = (fn: (dir: string) => Promise<void>) =>
  withTempDir(fn, { prefix: "kc-peercred-", mode: 0o755 });

function openSockets(): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`).startsWith("socket:")) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

Deno.test({
  name: "PeerCredListener: each connection carries the uid the kernel saw; data flows; fds close",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      const path = `${dir}/s.sock`;
      const before = openSockets();
      const l = PeerCredListener.listen(path);
      await Deno.chmod(path, 0o666);
      try {
        // Root, through Deno's own client.
        const c = await Deno.connect({ transport: "unix", path });
        const a = (await l.accept())!;
        assert.equal(a.peer.uid, 0);
        assert.equal(a.peer.gid, 0);
        assert.equal(a.peer.pid, Deno.pid);
        const w = a.writable.getWriter();
        await w.write(new TextEncoder().encode("hello\n"));
        const buf = new Uint8Array(16);
        const n = await c.read(buf);
        assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "hello\n");
        await c.write(new TextEncoder().encode("back"));
        const r = a.readable.getReader();
        assert.equal(new TextDecoder().decode((await r.read()).value), "back");
        c.close();
        assert.equal((await r.read()).done, true, "EOF when the client closes");
        a.close();

        // uid 4001 and 4002, through python in a setpriv'ed process.
        for (const uid of [4001, 4002]) {
          const child = new Deno.Command(
            "setpriv",
            {
              args: asUser(uid, [
                PYTHON,
                "-c",
                "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);print(s.recv(64).decode())",
                path,
              ]),
              stdout: "piped",
              stderr: "piped",
            },
          ).spawn();
          const conn = (await l.accept())!;
          assert.equal(conn.peer.uid, uid);
          assert.equal(conn.peer.gid, uid);
          const wr = conn.writable.getWriter();
          await wr.write(new TextEncoder().encode(`you are ${conn.peer.uid}`));
          await wr.close();
          const out = await child.output();
          assert.equal(new TextDecoder().decode(out.stdout).trim(), `you are ${uid}`);
          conn.close();
        }
      } finally {
        l.close();
      }
      for (let i = 0; i < 50 && openSockets() > before; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(openSockets(), before, "every socket was closed");
    });
  },
});

Deno.test({
  name: "PeerCredListener.close() ends a pending accept()",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      const l = PeerCredListener.listen(`${dir}/s.sock`);
      const pending = l.accept();
      setTimeout(() => l.close(), 50);
      assert.equal(await pending, null);
    });
  },
});

/**
 * A raw client as another uid: reads `hello`, prints the nonce, waits for a line on stdin (the
 * test plants the proof meanwhile), sends a status request and prints the answer.
 */
const RAW_CLIENT = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
hello = json.loads(f.readline())
print(hello["nonce"], flush=True)
sys.stdin.readline()
f.write((json.dumps({"v": 1, "auth": hello["nonce"], "type": "status"}) + "\\n").encode())
f.flush()
print(f.readline().decode().strip(), flush=True)
`;
import { withTempDir } from "../host/_test_fs.ts";

/** Runs the raw client as `uid`; `plant(nonce)` runs before it sends its request. */
async function rawStatus(
  socket: string,
  uid: number,
  plant: (nonce: string) => Promise<void>,
): Promise<{ type: string; code?: string; message?: string; result?: StatusReport }> {
  const child = new Deno.Command("setpriv", {
    args: asUser(uid, [PYTHON, "-c", RAW_CLIENT, socket]),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const line = async () => {
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`the raw client ended: ${text}`);
      text += value;
    }
    const i = text.indexOf("\n");
    const l = text.slice(0, i);
    text = text.slice(i + 1);
    return l;
  };
  const nonce = await line();
  await plant(nonce);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
  const answer = JSON.parse(await line());
  await lines.cancel();
  await child.stderr.cancel();
  await child.status;
  return answer;
}

/** What a user could leave in auth/ with protected_hardlinks off: another user's file, linked. */
async function plantLinkedFile(authDir: string, nonce: string, ownerUid: number): Promise<void> {
  const original = `${authDir}/../victim-${nonce}`;
  await Deno.writeTextFile(original, "not the nonce\n");
  await Deno.chown(original, ownerUid, ownerUid);
  await Deno.chmod(original, 0o644);
  // As the attacker (4002), not root: link(2) of a file it does not own.
  const ln = await new Deno.Command(
    "setpriv",
    {
      args: [
        "--reuid=4002",
        "--regid=4002",
        "--clear-groups",
        "--",
        "ln",
        original,
        `${authDir}/${nonce}`,
      ],
      stderr: "piped",
    },
  ).output();
  assert.ok(ln.success, `ln as uid 4002: ${new TextDecoder().decode(ln.stderr)}`);
  await Deno.remove(original); // the owner removes its original: one link is left
  const st = await Deno.lstat(`${authDir}/${nonce}`);
  assert.equal(st.uid, ownerUid);
  assert.equal(st.nlink, 1);
}

async function withHardlinksUnprotected(fn: () => Promise<void>): Promise<void> {
  const knob = "/proc/sys/fs/protected_hardlinks";
  const saved = (await Deno.readTextFile(knob)).trim();
  await Deno.writeTextFile(knob, "0");
  try {
    await fn();
  } finally {
    await Deno.writeTextFile(knob, saved);
  }
}

for (const identify of ["kernel", "file"] as const) {
  Deno.test({
    name:
      `daemon (${identify}): a file of uid 4001 hard-linked in as the proof does not let uid 4002 in as 4001`,
    ...opts,
    fn: async () => {
      await withDir(async (dir) => {
        const socket = `${dir}/run/kconnect.sock`;
        // No group: root and uid 4001 may use the daemon, 4002 may not.
        await using daemon = await Daemon.start({
          socket,
          access: { gid: null, group: null, uids: [4001] },
          stateDir: `${dir}/state`,
          logFile: null,
          identify,
        });
        const authDir = `${dir}/run/auth`;
        let answer!: Awaited<ReturnType<typeof rawStatus>>;
        await withHardlinksUnprotected(async () => {
          answer = await rawStatus(
            socket,
            4002,
            (nonce) => plantLinkedFile(authDir, nonce, 4001),
          );
        });
        assert.equal(answer.type, "error", JSON.stringify(answer));
        if (identify === "kernel") {
          assert.equal(answer.code, "forbidden");
          assert.match(answer.message!, /^uid 4002 may not use this kconnect daemon/);
        } else {
          assert.equal(answer.code, "unauthorized");
          assert.match(answer.message!, /does not hold the nonce/);
        }
        // Root still gets in (through the normal client).
        const st = await callDaemon(socket, { type: "status" }) as StatusReport;
        assert.equal(st.state, "disconnected");
        assert.equal([...Deno.readDirSync(authDir)].length, 0, "no proof left behind");
        await daemon.close();
      });
    },
  });
}

Deno.test({
  name: "daemon: the sweeper removes auth entries no connection waits for, whatever their mtime",
  ...opts,
  fn: async () => {
    await withDir(async (dir) => {
      const socket = `${dir}/run/kconnect.sock`;
      await using daemon = await Daemon.start({
        socket,
        access: { gid: null, group: null, uids: [] },
        stateDir: `${dir}/state`,
        logFile: null,
        authSweepMs: 100,
      });
      const authDir = `${dir}/run/auth`;
      const names = ["0123456789abcdef0123456789abcdef", "junk", "dir"];
      await Deno.writeTextFile(`${authDir}/${names[0]}`, "x");
      await Deno.writeTextFile(`${authDir}/${names[1]}`, "x".repeat(4096));
      await Deno.mkdir(`${authDir}/${names[2]}`);
      await Deno.writeTextFile(`${authDir}/${names[2]}/inner`, "x");
      for (const n of names) {
        // touch -d 2099-01-01: a member can set mtime and atime, never ctime.
        await Deno.utime(`${authDir}/${n}`, new Date("2099-01-01"), new Date("2099-01-01"));
      }
      for (let i = 0; i < 100 && [...Deno.readDirSync(authDir)].length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual([...Deno.readDirSync(authDir)].map((e) => e.name), []);
      await daemon.close();
    });
  },
});
