/**
 * The Windows control pipe, server and client, driven through a fake of the named-pipe
 * functions that models DACL checks, overlapped I/O and impersonation (`windows_pipe_fake.ts`).
 * Real named pipes are only exercised on Windows.
 */
import assert from "node:assert/strict";
import { connectPipe, type PipeConn, PipeListener, PipeUnavailableError } from "./windows_pipe.ts";
import { denyOnly, enabled, type FakeIdentity, FakePipes } from "./windows_pipe_fake.ts";
import {
  CLIENT_ACCESS,
  FILE_CREATE_PIPE_INSTANCE,
  FILE_FLAG_FIRST_PIPE_INSTANCE,
  FILE_FLAG_OVERLAPPED,
  INFINITE,
  OPEN_EXISTING,
  overlapped,
  OVERLAPPED_HEVENT,
  OVERLAPPED_SIZE,
  OWNER_SECURITY_INFORMATION,
  PIPE_ACCESS_DUPLEX,
  PIPE_ASYNC_SYMBOLS,
  PIPE_MODE,
  PIPE_SYMBOLS,
  PIPE_UNLIMITED_INSTANCES,
  pipeSddl,
  readTokenGroups,
  SE_GROUP_ENABLED,
  SE_GROUP_USE_FOR_DENY_ONLY,
  SE_KERNEL_OBJECT,
  SECURITY_IMPERSONATION,
  SECURITY_SQOS_PRESENT,
  SID_ADMINISTRATORS,
  SID_SYSTEM,
  TOKEN_ACCESS,
  TOKEN_GROUPS_CLASS,
  TOKEN_USER_CLASS,
} from "./windows_pipe_native.ts";
import { WIN32_ERRORS } from "../host/win32_errors.ts";
import { SECURITY_ATTRIBUTES_SIZE, securityAttributes } from "../host/windows_run_as_structs.ts";
import { assertWindowsHeaders, hasMingw } from "../host/_test_mingw.ts";

const PIPE = "\\\\.\\pipe\\kconnect-test";
const GROUP = "S-1-5-21-100-200-300-1010";
const SYSTEM: FakeIdentity = { sid: SID_SYSTEM, groups: [enabled(SID_ADMINISTRATORS)] };
const MEMBER: FakeIdentity = {
  sid: "S-1-5-21-100-200-300-1001",
  groups: [enabled("S-1-5-32-545"), enabled(GROUP), denyOnly(SID_ADMINISTRATORS)],
};
const STRANGER: FakeIdentity = {
  sid: "S-1-5-21-100-200-300-1002",
  groups: [enabled("S-1-5-32-545")],
};

function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E> = new (...args: any[]) => E;

function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>, text?: string): E {
  try {
    fn();
  } catch (err) {
    assert(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (text !== undefined) assert((err as Error).message.includes(text), (err as Error).message);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected a throw" });
}

async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: ErrorClass<E>,
  text?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    assert(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (text !== undefined) assert((err as Error).message.includes(text), (err as Error).message);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected a rejection" });
}

/** A member connects to `listener`; both ends, once the daemon accepted. */
async function memberConnects(
  fake: FakePipes,
  listener: PipeListener,
): Promise<{ client: PipeConn; server: PipeConn }> {
  const accepted = listener.accept();
  fake.identity = MEMBER;
  const client = await connectPipe(fake.native, PIPE);
  const server = await accepted;
  assert(server !== null);
  return { client, server };
}

function fatalThrows(message: string): never {
  throw new Error(`fatal: ${message}`);
}

async function readLine(conn: PipeConn): Promise<string> {
  const reader = conn.readable.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

async function send(conn: PipeConn, text: string): Promise<void> {
  const w = conn.writable.getWriter();
  await w.write(new TextEncoder().encode(text));
  w.releaseLock();
}

Deno.test("pipe: the DACL gives SYSTEM and Administrators all, the group only read/write (never FILE_CREATE_PIPE_INSTANCE)", () => {
  assertEquals(
    pipeSddl([GROUP]),
    `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x120083;;;${GROUP})`,
  );
  assertEquals(CLIENT_ACCESS & 0x4, 0);
  assertThrows(() => pipeSddl(["S-1-5;(A;;GA;;;WD)"]), TypeError, "Not a SID");
  assertEquals(SECURITY_ATTRIBUTES_SIZE, 24);
  const sa = new DataView(securityAttributes(false, 0xabcdn).buffer);
  assertEquals([sa.getUint32(0, true), sa.getBigUint64(8, true), sa.getUint32(16, true)], [
    24,
    0xabcdn,
    0,
  ]);
  assertEquals(new DataView(overlapped(7n).buffer).getBigUint64(24, true), 7n);
});

Deno.test("pipe: a member's request goes through; the daemon learns its user and enabled groups from the kernel", async () => {
  const fake = new FakePipes();
  fake.identity = SYSTEM;
  const listener = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  const { client, server } = await memberConnects(fake, listener);
  await send(server, "hello\n");
  assertEquals(await readLine(client), "hello\n");
  await send(client, "request\n");
  assertEquals(await readLine(server), "request\n");
  const peer = server.identify();
  assertEquals(peer.sid, MEMBER.sid);
  // The UAC-filtered Administrators entry is deny-only: it must not count as a group.
  assertEquals(peer.groups, ["S-1-5-32-545", GROUP]);
  assert(fake.calls.includes("RevertToSelf"));
  assertEquals(fake.listening(PIPE), 1, "a new instance waits for the next client");
  // The client asked for exactly read/write/read-owner, with impersonation allowed.
  assert(
    fake.calls.some((c) => c.startsWith(`CreateFileW ${PIPE} access=0x120083 flags=0x40120000`)),
  );
  await client.close();
  assertEquals(await readLine(server), "", "the server sees the client's end");
  await server.close();
  await listener.close();
  assertEquals(fake.violations, []);
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: a user outside the group is refused by the kernel (access denied), and the instance stays free", async () => {
  const fake = new FakePipes();
  const listener = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  fake.identity = STRANGER;
  const err = await assertRejects(() => connectPipe(fake.native, PIPE), PipeUnavailableError);
  assertEquals(err.reason, "denied");
  assertEquals(fake.listening(PIPE), 1);
  // Nor can the stranger, or a member, add an instance of the daemon's pipe.
  for (const who of [STRANGER, MEMBER]) {
    fake.serverIdentity = who;
    assertThrows(
      () => PipeListener.listen(fake.native, PIPE, { allowed: [], fatal: fatalThrows }),
      Error,
      "exists already",
    );
  }
  await listener.close();
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: no daemon: the client says none is listening", async () => {
  const fake = new FakePipes();
  const err = await assertRejects(() => connectPipe(fake.native, PIPE), PipeUnavailableError);
  assertEquals(err.reason, "absent");
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: a name taken before the daemon starts: the daemon refuses to start, and a client sends nothing to the squatter", async () => {
  const fake = new FakePipes();
  fake.serverIdentity = STRANGER;
  const squatter = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  fake.serverIdentity = SYSTEM;
  assertThrows(
    () => PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows }),
    Error,
    "exists already",
  );
  fake.identity = MEMBER;
  await assertRejects(() => connectPipe(fake.native, PIPE), Error, `belongs to ${STRANGER.sid}`);
  assertEquals(fake.calls.filter((c) => c.startsWith("WriteFile client")), []);
  fake.serverIdentity = STRANGER;
  const conn = await squatter.accept();
  assert(conn !== null);
  assertEquals(await readLine(conn), "", "the client hung up without a byte");
  await conn.close();
  await squatter.close();
  assertEquals(fake.violations, []);
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: identifying a client before anything was read is refused; a failed RevertToSelf stops the process", async () => {
  const fake = new FakePipes();
  const listener = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  const { client, server } = await memberConnects(fake, listener);
  assertThrows(() => server.identify(), Error, "ERROR_CANNOT_IMPERSONATE");
  await send(client, "x\n");
  await readLine(server);
  fake.revertResult = 0;
  assertThrows(() => server.identify(), Error, "fatal: RevertToSelf failed");
  fake.revertResult = 1;
  await client.close();
  await server.close();
  await listener.close();
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: two clients at once: the second waits for the next instance (ERROR_PIPE_BUSY, WaitNamedPipeW)", async () => {
  const fake = new FakePipes();
  const listener = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  fake.identity = MEMBER;
  const first = await connectPipe(fake.native, PIPE);
  const second = connectPipe(fake.native, PIPE, 2000);
  await new Promise((r) => setTimeout(r, 20));
  fake.identity = SYSTEM;
  const a = (await listener.accept())!;
  const b = (await listener.accept())!;
  const c2 = await second;
  await send(c2, "two\n");
  await send(first, "one\n");
  assertEquals(await readLine(a), "one\n");
  assertEquals(await readLine(b), "two\n");
  for (const c of [first, c2, a, b]) await c.close();
  await listener.close();
  assertEquals(fake.violations, []);
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: closing the listener ends a pending accept; a taken token outlives the connection", async () => {
  const fake = new FakePipes();
  const listener = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  const pending = listener.accept();
  await listener.close();
  assertEquals(await pending, null);
  assertEquals(fake.leaks(), []);

  const l2 = PipeListener.listen(fake.native, PIPE, { allowed: [GROUP], fatal: fatalThrows });
  const { client, server } = await memberConnects(fake, l2);
  await send(client, "x\n");
  await readLine(server);
  server.identify();
  const token = server.takeToken();
  await client.close();
  await server.close();
  await l2.close();
  assertEquals(fake.leaks(), ["handle token"]);
  fake.native.sym.CloseHandle(token);
  assertEquals(fake.leaks(), []);
});

Deno.test("pipe: TOKEN_GROUPS is read through its pointers", () => {
  // Two entries whose SIDs follow the array, as GetTokenInformation lays them out.
  const buf = new Uint8Array(8 + 32 + 12 + 16);
  const v = new DataView(buf.buffer);
  const base = 0x10000n;
  v.setUint32(0, 2, true);
  v.setBigUint64(8, base + 40n, true);
  v.setUint32(16, 4, true);
  v.setBigUint64(24, base + 52n, true);
  v.setUint32(32, 0x10, true);
  buf.set([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0], 40);
  buf.set([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0], 52);
  assertEquals(readTokenGroups(buf, base), [
    { sid: "S-1-5-18", attributes: 4 },
    { sid: "S-1-5-32-544", attributes: 0x10 },
  ]);
  v.setBigUint64(24, base + 4096n, true);
  assertThrows(() => readTokenGroups(buf, base), RangeError, "outside the buffer");
});

Deno.test({
  name:
    "pipe: layouts, constants, error codes and prototypes match the Windows headers (mingw-w64)",
  ignore: !hasMingw,
  fn: async () => {
    const checks = [
      `_Static_assert(sizeof(OVERLAPPED) == ${OVERLAPPED_SIZE}, "OVERLAPPED");`,
      `_Static_assert(offsetof(OVERLAPPED, hEvent) == ${OVERLAPPED_HEVENT}, "hEvent");`,
      `_Static_assert(sizeof(SECURITY_ATTRIBUTES) == ${SECURITY_ATTRIBUTES_SIZE}, "SA");`,
      `_Static_assert(offsetof(SECURITY_ATTRIBUTES, lpSecurityDescriptor) == 8, "SA.sd");`,
      `_Static_assert(offsetof(SECURITY_ATTRIBUTES, bInheritHandle) == 16, "SA.inherit");`,
      `_Static_assert(sizeof(SID_AND_ATTRIBUTES) == 16, "SID_AND_ATTRIBUTES");`,
      `_Static_assert(offsetof(SID_AND_ATTRIBUTES, Attributes) == 8, "Attributes");`,
      `_Static_assert(offsetof(TOKEN_GROUPS, Groups) == 8, "TOKEN_GROUPS.Groups");`,
      `_Static_assert(PIPE_ACCESS_DUPLEX == ${PIPE_ACCESS_DUPLEX}, "duplex");`,
      `_Static_assert(FILE_FLAG_FIRST_PIPE_INSTANCE == ${FILE_FLAG_FIRST_PIPE_INSTANCE}, "first");`,
      `_Static_assert(FILE_FLAG_OVERLAPPED == ${FILE_FLAG_OVERLAPPED}, "overlapped");`,
      `_Static_assert((PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS) == ${PIPE_MODE}, "mode");`,
      `_Static_assert(PIPE_UNLIMITED_INSTANCES == ${PIPE_UNLIMITED_INSTANCES}, "instances");`,
      `_Static_assert(OPEN_EXISTING == ${OPEN_EXISTING}, "open");`,
      `_Static_assert(SECURITY_SQOS_PRESENT == ${SECURITY_SQOS_PRESENT}, "sqos");`,
      `_Static_assert(SECURITY_IMPERSONATION == ${SECURITY_IMPERSONATION}, "impersonation");`,
      `_Static_assert((FILE_READ_DATA | FILE_WRITE_DATA | FILE_READ_ATTRIBUTES | READ_CONTROL | SYNCHRONIZE) == ${CLIENT_ACCESS}, "client access");`,
      `_Static_assert(FILE_CREATE_PIPE_INSTANCE == ${FILE_CREATE_PIPE_INSTANCE}, "create instance");`,
      `_Static_assert((FILE_GENERIC_WRITE & FILE_CREATE_PIPE_INSTANCE) != 0, "GENERIC_WRITE would grant it");`,
      `_Static_assert(SE_KERNEL_OBJECT == ${SE_KERNEL_OBJECT}, "kernel object");`,
      `_Static_assert(OWNER_SECURITY_INFORMATION == ${OWNER_SECURITY_INFORMATION}, "owner");`,
      `_Static_assert((TOKEN_QUERY | TOKEN_DUPLICATE | TOKEN_IMPERSONATE) == ${TOKEN_ACCESS}, "token access");`,
      `_Static_assert(TokenUser == ${TOKEN_USER_CLASS} && TokenGroups == ${TOKEN_GROUPS_CLASS}, "classes");`,
      `_Static_assert(SE_GROUP_ENABLED == ${SE_GROUP_ENABLED}, "enabled");`,
      `_Static_assert(SE_GROUP_USE_FOR_DENY_ONLY == ${SE_GROUP_USE_FOR_DENY_ONLY}, "deny only");`,
      `_Static_assert(INFINITE == ${INFINITE}u, "infinite");`,
      ...Object.entries(WIN32_ERRORS).map(([name, code]) =>
        `_Static_assert(${name} == ${code}, "${name}");`
      ),
      ...Object.keys(PIPE_SYMBOLS).map((name) =>
        `_Static_assert(sizeof(&${name}) == 8, "${name} is declared");`
      ),
      ...Object.keys(PIPE_ASYNC_SYMBOLS).map((name) =>
        `_Static_assert(sizeof(&${name}) == 8, "${name} is declared");`
      ),
    ];
    await assertWindowsHeaders(["windows.h", "sddl.h", "aclapi.h"], checks, 70);
  },
});
