import assert from "node:assert/strict";
import {
  type AccessPolicy,
  accessPolicy,
  chooseGroup,
  decideAccess,
  describeAccess,
  type GroupLookup,
  resolveGroup,
  socketModes,
} from "./access.ts";
import { parseConfig, SettingsError } from "../config/config.ts";

/** A group database holding only `groups`. */
function groupsOf(groups: Record<string, number>): GroupLookup {
  return (name) => Promise.resolve(groups[name] ?? null);
}

const noGroups = groupsOf({});

Deno.test("decideAccess() with no group lets in root and the allowed uids only, and tells others how to get in", () => {
  const p: AccessPolicy = { gid: null, group: null, uids: [1000] };
  assert.deepEqual(decideAccess(p, 0), { allowed: true });
  assert.deepEqual(decideAccess(p, 1000), { allowed: true });
  for (const uid of [1001, 65534, 999]) {
    const d = decideAccess(p, uid);
    assert.equal(d.allowed, false, `uid ${uid}`);
    if (d.allowed) continue;
    assert.match(d.message, new RegExp(`^uid ${uid} may not use this kconnect daemon`));
    assert.match(
      d.message,
      /it runs with no group and lets in only root and uid 1000 \(who ran sudo\)\. To let other users in/,
    );
    assert.match(d.message, /sudo kconnect service install/);
    assert.match(d.message, /group "kconnect"/);
    assert.match(d.message, /sudo kconnect up --group <group>/);
  }
  const rootOnly = decideAccess({ gid: null, group: null, uids: [] }, 1000);
  assert.equal(rootOnly.allowed, false);
  assert.match((rootOnly as { message: string }).message, /lets in only root\./);
});

Deno.test("decideAccess() with a group lets in whoever the kernel let connect", () => {
  // The socket is 0660 root:<gid>: only members and root reach the uid proof at all.
  const p: AccessPolicy = { gid: 4242, group: "devs", uids: [] };
  for (const uid of [0, 1000, 4001]) assert.deepEqual(decideAccess(p, uid), { allowed: true });
});

Deno.test("socketModes() keeps a group's socket to the group and opens a groupless one for the daemon to decide", () => {
  assert.deepEqual(socketModes({ gid: 4242, group: "4242", uids: [] }), {
    gid: 4242,
    runDir: 0o750,
    authDir: 0o1730,
    socket: 0o660,
  });
  assert.deepEqual(socketModes({ gid: null, group: null, uids: [1000] }), {
    gid: 0,
    runDir: 0o711,
    authDir: 0o1733,
    socket: 0o666,
  });
});

Deno.test("chooseGroup() takes the flag, else KCONNECT_GROUP, else the config file, else none", () => {
  const config = { group: "cfg", path: "/home/a/.config/kconnect/config.json" };
  assert.deepEqual(chooseGroup("flag", "env", config), { group: "flag", from: "--group" });
  assert.deepEqual(chooseGroup(undefined, "env", config), { group: "env", from: "KCONNECT_GROUP" });
  assert.deepEqual(chooseGroup(undefined, undefined, config), {
    group: "cfg",
    from: "config file /home/a/.config/kconnect/config.json",
  });
  assert.equal(chooseGroup(undefined, undefined, null), null);
  assert.equal(chooseGroup("", "", { path: "/c.json" }), null, "empty values name no group");
});

Deno.test("resolveGroup() takes gids as they are, looks names up, and refuses a missing group with the fix", async () => {
  assert.equal(await resolveGroup({ group: "4242", from: "--group" }, noGroups), 4242);
  assert.equal(
    await resolveGroup({ group: "devs", from: "--group" }, groupsOf({ devs: 1234 })),
    1234,
  );
  await assert.rejects(
    () => resolveGroup({ group: "kconnect", from: "KCONNECT_GROUP" }, noGroups),
    (err: Error) => {
      assert.match(err.message, /^Group "kconnect" \(from KCONNECT_GROUP\) does not exist/);
      assert.match(err.message, /sudo groupadd kconnect/);
      assert.match(err.message, /sudo kconnect service install --group kconnect/);
      assert.match(err.message, /name no group: then root and the user who ran sudo/);
      return true;
    },
  );
});

Deno.test("accessPolicy(): no group means root and the sudo user; a group means its members; never both", async () => {
  assert.deepEqual(await accessPolicy({}, { SUDO_UID: "1000" }, noGroups), {
    gid: null,
    group: null,
    uids: [1000],
  });
  assert.deepEqual(await accessPolicy({}, {}, noGroups), { gid: null, group: null, uids: [] });
  assert.deepEqual(
    await accessPolicy({ allowUids: ["1001", "1001", "1002"] }, { SUDO_UID: "1000" }, noGroups),
    { gid: null, group: null, uids: [1001, 1002] },
    "--allow-uid replaces SUDO_UID",
  );
  assert.deepEqual(
    await accessPolicy({}, { KCONNECT_GROUP: "devs", SUDO_UID: "1000" }, groupsOf({ devs: 77 })),
    { gid: 77, group: "devs", uids: [] },
  );
  await assert.rejects(
    () => accessPolicy({ group: "nope" }, {}, noGroups),
    /Group "nope" \(from --group\) does not exist/,
  );
  await assert.rejects(
    () => accessPolicy({ group: "4242", allowUids: ["1000"] }, {}, noGroups),
    RangeError,
  );
  await assert.rejects(() => accessPolicy({ allowUids: ["0"] }, {}, noGroups), RangeError);
  await assert.rejects(() => accessPolicy({ allowUids: ["bob"] }, {}, noGroups), RangeError);
});

Deno.test("describeAccess() says who may use the daemon", () => {
  assert.equal(
    describeAccess({ gid: 77, group: "devs", uids: [] }),
    'root and members of group "devs"',
  );
  assert.equal(describeAccess({ gid: null, group: null, uids: [1000] }), "root and uid 1000");
  assert.equal(describeAccess({ gid: null, group: null, uids: [] }), "root only");
});

Deno.test("parseConfig() reads a top-level group (name or gid) for a daemon up starts", () => {
  assert.equal(parseConfig('{"group": "devs"}', "/c.json").group, "devs");
  assert.equal(parseConfig('{"group": 4242}', "/c.json").group, "4242");
  assert.equal(parseConfig("{}", "/c.json").group, undefined);
  const c = parseConfig('{"group": "devs", "defaults": {"dns": "off"}}', "/c.json");
  assert.deepEqual(chooseGroup(undefined, undefined, c), {
    group: "devs",
    from: "config file /c.json",
  });
  for (const bad of ['"a b"', '""', "-1", "true", '["devs"]', '"../x"']) {
    assert.throws(
      () => parseConfig(`{"group": ${bad}}`, "/c.json"),
      (err: Error) =>
        err instanceof SettingsError && err.field === "group" &&
        /^Invalid config file \/c\.json: group: expected a group name or a gid/.test(err.message),
      bad,
    );
  }
});
