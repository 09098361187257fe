/**
 * The daemon and its client over the Windows control pipe, on any OS: the real `Daemon` and
 * `callDaemon`, with the named-pipe functions faked (`windows_pipe_fake.ts`: DACL checks,
 * overlapped I/O, impersonation). What only a real Windows shows (the kernel's own DACL
 * evaluation, real tokens) is not covered here.
 */
import assert from "node:assert/strict";
import { Daemon, type DaemonOptions } from "./server.ts";
import { callDaemon, DaemonUnavailableError, socketAnswers } from "./client.ts";
import { denyOnly, enabled, type FakeIdentity, FakePipes } from "./windows_pipe_fake.ts";
import { SID_ADMINISTRATORS, SID_SYSTEM } from "./windows_pipe_native.ts";
import type { StatusReport } from "./status.ts";
import type { AccessPolicy } from "./access.ts";
import type { TokenRunAs } from "../k8s/as_user_windows.ts";
import type { FetchOptions } from "../k8s/as_user.ts";
import { sampleMaterial } from "../k8s/_test_material.ts";

const PIPE = "\\\\.\\pipe\\kconnect-daemon-test";
const GROUP = "S-1-5-21-7-8-9-1010";
const MEMBER: FakeIdentity = {
  sid: "S-1-5-21-7-8-9-1001",
  groups: [enabled("S-1-5-32-545"), enabled(GROUP)],
};
const STRANGER: FakeIdentity = { sid: "S-1-5-21-7-8-9-1002", groups: [enabled("S-1-5-32-545")] };
/** An administrator in a terminal that was not opened as administrator (UAC-filtered token). */
const FILTERED_ADMIN: FakeIdentity = {
  sid: "S-1-5-21-7-8-9-500",
  groups: [enabled("S-1-5-32-545"), denyOnly(SID_ADMINISTRATORS)],
};
const ELEVATED_ADMIN: FakeIdentity = {
  sid: "S-1-5-21-7-8-9-500",
  groups: [enabled("S-1-5-32-545"), enabled(SID_ADMINISTRATORS)],
};
const POLICY: AccessPolicy = { gid: null, group: "kconnect", uids: [], sids: [GROUP] };

async function withDaemon(
  fn: (fake: FakePipes, daemon: Daemon, options: DaemonOptions) => Promise<void>,
  access: AccessPolicy = POLICY,
  extra: Partial<DaemonOptions> = {},
): Promise<void> {
  const fake = new FakePipes();
  const stateDir = await Deno.makeTempDir({ prefix: "kconnect-windaemon-" });
  const options: DaemonOptions = {
    socket: PIPE,
    access,
    stateDir,
    logFile: null,
    pipeNative: fake.native,
    ...extra,
  };
  const daemon = await Daemon.start(options);
  try {
    await fn(fake, daemon, options);
  } finally {
    await daemon.close();
    await Deno.remove(stateDir, { recursive: true });
  }
  // Give the closed connections' pending reads their turn.
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(fake.violations, []);
  assert.deepEqual(fake.leaks(), []);
}

Deno.test("windows daemon: a member of the group gets status over the pipe, and the report says who may use it", async () => {
  await withDaemon(async (fake) => {
    fake.identity = MEMBER;
    const report = await callDaemon(PIPE, { type: "status" }, {
      pipeNative: fake.native,
    }) as StatusReport;
    assert.equal(report.state, "disconnected");
    assert.equal(report.ownerSid, null);
    assert.deepEqual(report.daemon?.access?.sids, [GROUP]);
    assert.equal(await socketAnswers(PIPE, fake.native), true);
  });
});

Deno.test("windows daemon: users outside the group, and an administrator without elevation, are refused with how to get access", async () => {
  await withDaemon(async (fake) => {
    for (const who of [STRANGER, FILTERED_ADMIN]) {
      fake.identity = who;
      const err = await callDaemon(PIPE, { type: "status" }, { pipeNative: fake.native }).then(
        () => null,
        (e) => e,
      );
      assert(err instanceof DaemonUnavailableError, String(err));
      assert.equal(err.reason, "denied");
      assert.match(err.message, /net localgroup kconnect <user> \/add/);
    }
    fake.identity = ELEVATED_ADMIN;
    const report = await callDaemon(PIPE, { type: "status" }, {
      pipeNative: fake.native,
    }) as StatusReport;
    assert.equal(report.state, "disconnected");
  });
});

Deno.test("windows daemon: with no group only SYSTEM and elevated administrators get in; down works and names the user", async () => {
  await withDaemon(async (fake) => {
    fake.identity = MEMBER;
    await assert.rejects(
      () => callDaemon(PIPE, { type: "status" }, { pipeNative: fake.native }),
      (e) => e instanceof DaemonUnavailableError && e.reason === "denied",
    );
    fake.identity = ELEVATED_ADMIN;
    const down = await callDaemon(PIPE, { type: "down" }, { pipeNative: fake.native }) as {
      disconnected: string | null;
    };
    assert.equal(down.disconnected, null);
    fake.identity = { sid: SID_SYSTEM, groups: [enabled(SID_ADMINISTRATORS)] };
    const report = await callDaemon(PIPE, { type: "status" }, {
      pipeNative: fake.native,
    }) as StatusReport;
    assert.deepEqual(report.daemon?.access?.sids, []);
  }, { gid: null, group: null, uids: [], sids: [] });
});

Deno.test("windows daemon: a second daemon cannot take the pipe, and once the daemon stops no one answers", async () => {
  let fakeAfter: FakePipes | null = null;
  await withDaemon(async (fake, _daemon, options) => {
    fakeAfter = fake;
    await assert.rejects(() => Daemon.start(options), /exists already/);
  });
  const fake = fakeAfter!;
  fake.identity = MEMBER;
  assert.equal(await socketAnswers(PIPE, fake.native), false);
  await assert.rejects(
    () => callDaemon(PIPE, { type: "status" }, { pipeNative: fake.native }),
    (e) => e instanceof DaemonUnavailableError && e.reason === "absent",
  );
  assert.deepEqual(fake.leaks(), []);
});

Deno.test("windows daemon: a member's up fetches credentials with the member's own token and environment; the token is closed when the up fails", async () => {
  const seen: { sid: string; tokenOpen: boolean; env: Record<string, string>; cwd: string }[] = [];
  let fakeRef: FakePipes | null = null;
  const windowsCredentials = (who: TokenRunAs, _o: FetchOptions) => {
    seen.push({
      sid: who.sid,
      tokenOpen: fakeRef!.leaks().includes("handle token"),
      env: who.env,
      cwd: who.cwd,
    });
    // A cluster nobody listens on: the up fails after the credentials were fetched.
    return Promise.resolve(sampleMaterial({ server: "https://127.0.0.1:9" }));
  };
  await withDaemon(
    async (fake) => {
      fakeRef = fake;
      fake.identity = MEMBER;
      const env = { USERPROFILE: "C:\\Users\\member", KUBECONFIG: "C:\\Users\\member\\kc" };
      const err = await callDaemon(PIPE, {
        type: "up",
        kubeconfig: null,
        context: null,
        env,
        cwd: "C:\\Users\\member\\work",
        switch: false,
        flags: {},
        config: null,
      }, { pipeNative: fake.native }).then(() => null, (e) => e);
      assert(err instanceof Error, "the up failed (no cluster)");
      assert.deepEqual(seen, [{
        sid: MEMBER.sid,
        tokenOpen: true,
        env,
        cwd: "C:\\Users\\member\\work",
      }]);
      assert.deepEqual(fake.leaks().filter((l) => l === "handle token"), []);
    },
    POLICY,
    { windowsCredentials },
  );
});
