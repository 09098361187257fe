import assert from "node:assert/strict";
import {
  installService,
  realHost,
  serviceFile,
  type ServiceHost,
  serviceText,
  uninstallService,
  windowsCodePaths,
} from "./install.ts";
import {
  quoteWindowsArg,
  schtasks,
  splitWindowsArgs,
  TASK_NAMESPACE,
  TaskCommandError,
  taskFileBytes,
  taskXml,
  utf16le,
} from "./windows_task.ts";

// --- a small XML reader, enough for task definitions -------------------------------------------

interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

function unescapeXml(s: string): string {
  return s.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e]!,
  );
}

/** Parses a document (declaration, one root element); throws on anything unbalanced. */
function parseXml(doc: string): { decl: string; root: El } {
  const declMatch = /^<\?xml ([^?]*)\?>/.exec(doc);
  assert.ok(declMatch, "an XML declaration first");
  let i = declMatch[0].length;
  const skipSpace = () => {
    while (/\s/.test(doc[i] ?? "")) i++;
  };
  const element = (): El => {
    const open = /^<([A-Za-z][\w.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/.exec(doc.slice(i));
    assert.ok(open, `an element at ${i}: ${JSON.stringify(doc.slice(i, i + 30))}`);
    i += open[0].length;
    const attrs: Record<string, string> = {};
    for (const a of open[2].matchAll(/([\w:.-]+)="([^"]*)"/g)) attrs[a[1]] = unescapeXml(a[2]);
    const el: El = { name: open[1], attrs, children: [], text: "" };
    if (open[3] === "/") return el;
    while (true) {
      const textEnd = doc.indexOf("<", i);
      assert.ok(textEnd >= 0, `${el.name} is closed`);
      el.text += unescapeXml(doc.slice(i, textEnd));
      i = textEnd;
      if (doc.startsWith(`</${el.name}>`, i)) {
        i += el.name.length + 3;
        if (el.children.length > 0) {
          assert.equal(el.text.trim(), "", `${el.name}: no text beside elements`);
        }
        return el;
      }
      assert.ok(!doc.startsWith("</", i), `${el.name} closed by ${doc.slice(i, i + 20)}`);
      el.children.push(element());
    }
  };
  skipSpace();
  const root = element();
  skipSpace();
  assert.equal(i, doc.length, "nothing after the root element");
  return { decl: declMatch[1], root };
}

/** The element at `path` (names below `el`), which must be the only one of its name each step. */
function at(el: El, ...path: string[]): El {
  let cur = el;
  for (const name of path) {
    const found = cur.children.filter((c) => c.name === name);
    assert.equal(found.length, 1, `exactly one ${name} in ${cur.name}`);
    cur = found[0];
  }
  return cur;
}

const PROGRAM = "C:\\Program Files\\kconnect\\kconnect.exe";
const COMMAND = [PROGRAM, "daemon", "--group", "kconnect"];

// --- the task definition -----------------------------------------------------------------------

Deno.test("taskXml() is a boot task as SYSTEM, highest privileges, restarted, never timed out", () => {
  const { decl, root } = parseXml(taskXml({ command: COMMAND }));
  assert.match(decl, /encoding="UTF-16"/);
  assert.equal(root.name, "Task");
  assert.equal(root.attrs.xmlns, TASK_NAMESPACE);
  assert.equal(root.attrs.version, "1.2");

  const triggers = at(root, "Triggers");
  assert.deepEqual(triggers.children.map((c) => c.name), ["BootTrigger"], "only at boot");
  assert.equal(at(triggers, "BootTrigger", "Enabled").text, "true");

  const principals = at(root, "Principals");
  assert.equal(principals.children.length, 1);
  const principal = at(principals, "Principal");
  assert.equal(at(principal, "UserId").text, "S-1-5-18");
  assert.equal(at(principal, "RunLevel").text, "HighestAvailable");
  assert.equal(
    at(root, "Actions").attrs.Context,
    principal.attrs.id,
    "the action runs as that principal",
  );

  const settings = at(root, "Settings");
  const setting = (...p: string[]) => at(settings, ...p).text;
  assert.equal(setting("MultipleInstancesPolicy"), "IgnoreNew");
  assert.equal(setting("ExecutionTimeLimit"), "PT0S", "no execution time limit");
  assert.equal(setting("RestartOnFailure", "Interval"), "PT1M");
  assert.equal(setting("RestartOnFailure", "Count"), "999");
  assert.equal(setting("DisallowStartIfOnBatteries"), "false", "starts on a laptop's battery");
  assert.equal(setting("StopIfGoingOnBatteries"), "false");
  assert.equal(setting("IdleSettings", "StopOnIdleEnd"), "false");
  assert.equal(setting("Enabled"), "true");
  assert.equal(setting("Priority"), "4", "normal priority, not the tasks' default 7");

  const exec = at(root, "Actions", "Exec");
  assert.equal(at(exec, "Command").text, PROGRAM);
  assert.deepEqual(splitWindowsArgs(at(exec, "Arguments").text), COMMAND.slice(1));
  assert.equal(at(exec, "WorkingDirectory").text, "C:\\Program Files\\kconnect");
});

Deno.test("taskXml() matches the golden definition, line for line, with CRLF", () => {
  const x = taskXml({
    command: ["C:\\K & Co\\kconnect.exe", "daemon", "--group", "my group"],
    description: "d <1>",
  });
  assert.ok(!/[^\r]\n/.test(x), "every line ends in CRLF");
  assert.deepEqual(x.split("\r\n"), [
    '<?xml version="1.0" encoding="UTF-16"?>',
    '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
    "  <RegistrationInfo>",
    "    <Author>kconnect</Author>",
    "    <Description>d &lt;1&gt;</Description>",
    "    <URI>\\kconnect-daemon</URI>",
    "  </RegistrationInfo>",
    "  <Triggers>",
    "    <BootTrigger>",
    "      <Enabled>true</Enabled>",
    "    </BootTrigger>",
    "  </Triggers>",
    "  <Principals>",
    '    <Principal id="Author">',
    "      <UserId>S-1-5-18</UserId>",
    "      <RunLevel>HighestAvailable</RunLevel>",
    "    </Principal>",
    "  </Principals>",
    "  <Settings>",
    "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
    "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
    "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
    "    <AllowHardTerminate>true</AllowHardTerminate>",
    "    <StartWhenAvailable>true</StartWhenAvailable>",
    "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>",
    "    <IdleSettings>",
    "      <StopOnIdleEnd>false</StopOnIdleEnd>",
    "      <RestartOnIdle>false</RestartOnIdle>",
    "    </IdleSettings>",
    "    <AllowStartOnDemand>true</AllowStartOnDemand>",
    "    <Enabled>true</Enabled>",
    "    <Hidden>false</Hidden>",
    "    <RunOnlyIfIdle>false</RunOnlyIfIdle>",
    "    <WakeToRun>false</WakeToRun>",
    "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
    "    <Priority>4</Priority>",
    "    <RestartOnFailure>",
    "      <Interval>PT1M</Interval>",
    "      <Count>999</Count>",
    "    </RestartOnFailure>",
    "  </Settings>",
    '  <Actions Context="Author">',
    "    <Exec>",
    "      <Command>C:\\K &amp; Co\\kconnect.exe</Command>",
    "      <Arguments>daemon --group &quot;my group&quot;</Arguments>",
    "      <WorkingDirectory>C:\\K &amp; Co</WorkingDirectory>",
    "    </Exec>",
    "  </Actions>",
    "</Task>",
    "",
  ]);
});

Deno.test("the task file is UTF-16 LE with a byte-order mark", () => {
  assert.deepEqual(
    utf16le("<é😀"),
    new Uint8Array([0xff, 0xfe, 0x3c, 0x00, 0xe9, 0x00, 0x3d, 0xd8, 0x00, 0xde]),
  );
  const program = "C:\\Programme\\kçnnect\\kconnect.exe";
  const bytes = taskFileBytes({ command: [program, "daemon"] });
  assert.deepEqual([...bytes.slice(0, 8)], [0xff, 0xfe, 0x3c, 0x00, 0x3f, 0x00, 0x78, 0x00]);
  assert.equal(bytes.length % 2, 0);
  // A decoder that honours the BOM reads back exactly the definition.
  const text = new TextDecoder("utf-16le", { ignoreBOM: false }).decode(bytes);
  assert.equal(text, taskXml({ command: [program, "daemon"] }));
  assert.equal(at(parseXml(text).root, "Actions", "Exec", "Command").text, program);
});

Deno.test("Windows argument quoting: the C runtime's own examples split as documented, and words round-trip", () => {
  // Microsoft's "Parsing C command-line arguments" table.
  assert.deepEqual(splitWindowsArgs('"abc" d e'), ["abc", "d", "e"]);
  assert.deepEqual(splitWindowsArgs('a\\\\b d"e f"g h'), ["a\\\\b", "de fg", "h"]);
  assert.deepEqual(splitWindowsArgs('a\\\\\\"b c d'), ['a\\"b', "c", "d"]);
  assert.deepEqual(splitWindowsArgs('a\\\\\\\\"b c" d e'), ["a\\\\b c", "d", "e"]);
  assert.deepEqual(splitWindowsArgs('a"b"" c d'), ['ab" c d']);

  const words = [
    "C:\\Program Files\\kconnect\\kconnect.exe",
    'say "hi"',
    "trailing\\",
    "space and trailing\\",
    "\\\\server\\share\\k.exe",
    "",
    'a\\\\"b',
    "plain",
    "tab\there",
  ];
  assert.deepEqual(splitWindowsArgs(words.map(quoteWindowsArg).join(" ")), words);
  assert.equal(quoteWindowsArg("--group"), "--group", "plain words are not quoted");
  assert.equal(
    quoteWindowsArg("a b\\"),
    '"a b\\\\"',
    "a trailing backslash doubled before the quote",
  );
});

Deno.test("taskXml() refuses what Task Scheduler would change: %…%, control characters, a relative program", () => {
  assert.throws(
    () => taskXml({ command: [PROGRAM, "daemon", "--group", "%USERNAME%"] }),
    (e: Error) => e instanceof TaskCommandError && /would expand %…%/.test(e.message),
  );
  assert.throws(
    () => taskXml({ command: [PROGRAM, "daemon\r\n"] }),
    (e: Error) => e instanceof TaskCommandError && /control character/.test(e.message),
  );
  assert.throws(
    () => taskXml({ command: ["kconnect.exe", "daemon"] }),
    (e: Error) => e instanceof TaskCommandError && /absolute Windows path/.test(e.message),
  );
  assert.throws(() => taskXml({ command: [] }), TaskCommandError);
  taskXml({ command: ["\\\\server\\share\\kconnect.exe"] }); // a UNC path is absolute
});

Deno.test("schtasks argument lists", () => {
  assert.deepEqual(schtasks.create("C:\\PF\\kconnect\\kconnect-daemon.xml"), [
    "schtasks.exe",
    "/Create",
    "/TN",
    "kconnect-daemon",
    "/XML",
    "C:\\PF\\kconnect\\kconnect-daemon.xml",
    "/F",
  ]);
  assert.deepEqual(schtasks.run(), ["schtasks.exe", "/Run", "/TN", "kconnect-daemon"]);
  assert.deepEqual(schtasks.end(), ["schtasks.exe", "/End", "/TN", "kconnect-daemon"]);
  assert.deepEqual(schtasks.delete(), ["schtasks.exe", "/Delete", "/TN", "kconnect-daemon", "/F"]);
  assert.deepEqual(schtasks.query(), ["schtasks.exe", "/Query", "/TN", "kconnect-daemon"]);
});

// --- install and uninstall through install.ts --------------------------------------------------

interface FakeWindows {
  /** schtasks argument lists (after the program) that fail, with the output they print. */
  fail?: Map<string, string>;
  /** Paths others than administrators could change, with why. */
  open?: Map<string, string>;
  /** Whether the task exists before anything runs. */
  taskExists?: boolean;
  /** Local groups that exist, with their members. */
  groups?: Map<string, Set<string>>;
  /** Whether the started daemon answers on its pipe. Default true. */
  answers?: boolean;
}

/** A Windows machine: a recording schtasks (that keeps whether the task exists) and files. */
function fakeWindows(f: FakeWindows = {}) {
  const ran: string[][] = [];
  const files = new Map<string, Uint8Array>();
  const checked: string[] = [];
  const dirs: string[] = [];
  let taskExists = f.taskExists ?? false;
  const groups = f.groups ?? new Map<string, Set<string>>();
  const probed: string[] = [];
  const host: ServiceHost = {
    os: "windows",
    run: (cmd) => {
      ran.push(cmd);
      if (cmd[0] === "net" && cmd[1] === "localgroup") {
        if (cmd.length === 3) {
          return groups.has(cmd[2])
            ? Promise.resolve()
            : Promise.reject(new Error("System error 1376 has occurred."));
        }
        if (cmd[3] === "/add") {
          groups.set(cmd[2], new Set());
          return Promise.resolve();
        }
      }
      assert.equal(cmd[0], "schtasks.exe", "only schtasks and net run on Windows");
      const said = f.fail?.get(cmd.slice(1).join(" "));
      if (said !== undefined) {
        return Promise.reject(new Error(`\`${cmd.join(" ")}\` failed (exit 1): ${said}`));
      }
      if (cmd[1] === "/Create") taskExists = true;
      if (cmd[1] === "/Delete") taskExists = false;
      if ((cmd[1] === "/Query" || cmd[1] === "/End" || cmd[1] === "/Run") && !taskExists) {
        return Promise.reject(new Error("ERROR: The system cannot find the file specified."));
      }
      return Promise.resolve();
    },
    output: (cmd) => {
      ran.push(cmd);
      if (cmd[0] === "net" && cmd[4] === "/add") {
        const members = groups.get(cmd[2]);
        if (members === undefined) return Promise.resolve("System error 1376 has occurred.");
        if (members.has(cmd[3])) return Promise.resolve("System error 1378 has occurred.");
        members.add(cmd[3]);
        return Promise.resolve("The command completed successfully.");
      }
      return Promise.resolve("(task details)");
    },
    groupExists: () => Promise.reject(new Error("no groups on Windows")),
    writeFile: () => Promise.reject(new Error("the task file is written as bytes")),
    writeBytes: (p, b) => {
      files.set(p, b);
      return Promise.resolve();
    },
    removeFile: (p) => Promise.resolve(files.delete(p)),
    makeDir: (p) => {
      dirs.push(p);
      return Promise.resolve();
    },
    listening: (p) => {
      probed.push(p);
      return Promise.resolve(taskExists && (f.answers ?? true));
    },
    sleep: () => Promise.resolve(),
    adminOnlyProblem: (p) => {
      checked.push(p);
      return Promise.resolve(f.open?.get(p) ?? null);
    },
  };
  return { host, ran, files, checked, dirs, groups, probed, exists: () => taskExists };
}

const FILE = "C:\\PF\\kconnect\\kconnect-daemon.xml";

Deno.test("installService() on Windows writes the task file, creates and starts the task; uninstall stops and deletes it", async () => {
  const w = fakeWindows();
  const done = await installService(w.host, {
    unitDir: "C:\\PF\\kconnect\\",
    command: [PROGRAM],
    user: "PC\\alice",
  });
  assert.deepEqual(w.ran, [
    ["net", "localgroup", "kconnect"],
    [
      "net",
      "localgroup",
      "kconnect",
      "/add",
      "/comment:kconnect users: may use the kconnect daemon",
    ],
    ["net", "localgroup", "kconnect", "PC\\alice", "/add"],
    ["schtasks.exe", "/Create", "/TN", "kconnect-daemon", "/XML", FILE, "/F"],
    ["schtasks.exe", "/Run", "/TN", "kconnect-daemon"],
  ]);
  assert.deepEqual([...w.groups.get("kconnect")!], ["PC\\alice"]);
  assert.deepEqual(w.probed, ["\\\\.\\pipe\\kconnect"], "it waited for the daemon's pipe");
  assert.match(done.join("\n"), /the daemon is listening/);
  assert.ok(w.exists());
  assert.deepEqual(w.dirs, ["C:\\PF\\kconnect"]);
  assert.deepEqual(w.checked, [PROGRAM, "C:\\Program Files\\kconnect", "C:\\PF\\kconnect"]);
  const bytes = w.files.get(FILE);
  assert.ok(bytes, "the task file was written");
  assert.deepEqual([...bytes.slice(0, 2)], [0xff, 0xfe]);
  const exec = at(parseXml(new TextDecoder("utf-16le").decode(bytes)).root, "Actions", "Exec");
  assert.equal(at(exec, "Command").text, PROGRAM);
  assert.deepEqual(splitWindowsArgs(at(exec, "Arguments").text), ["daemon", "--group", "kconnect"]);
  assert.match(done.join("\n"), /wrote C:\\PF\\kconnect\\kconnect-daemon\.xml/);
  assert.match(done.join("\n"), /kconnect-daemon created \(at boot, as SYSTEM\) and started/);

  w.ran.length = 0;
  const gone = await uninstallService(w.host, { unitDir: "C:\\PF\\kconnect", removeGroup: true });
  assert.deepEqual(w.ran, [
    ["schtasks.exe", "/Query", "/TN", "kconnect-daemon"],
    ["schtasks.exe", "/End", "/TN", "kconnect-daemon"],
    ["schtasks.exe", "/Delete", "/TN", "kconnect-daemon", "/F"],
  ]);
  assert.ok(!w.exists());
  assert.equal(w.files.size, 0, "the task file removed");
  assert.deepEqual(gone, ["scheduled task kconnect-daemon stopped and deleted", `removed ${FILE}`]);

  // Again: nothing left to stop or delete, and that is no error.
  w.ran.length = 0;
  assert.deepEqual(await uninstallService(w.host, { unitDir: "C:\\PF\\kconnect" }), [
    "no scheduled task kconnect-daemon",
  ]);
  assert.deepEqual(w.ran, [["schtasks.exe", "/Query", "/TN", "kconnect-daemon"]]);
});

Deno.test("installService() on Windows with --no-service-manager only writes the file", async () => {
  const w = fakeWindows();
  await installService(w.host, {
    unitDir: "C:\\PF\\kconnect",
    command: [PROGRAM],
    noServiceManager: true,
  });
  assert.deepEqual(w.ran.filter((c) => c[0] !== "net"), [], "no schtasks (the group is made)");
  assert.ok(w.files.has(FILE));
});

Deno.test("a failing schtasks is reported with its output", async () => {
  const denied = "ERROR: Access is denied.";
  const w = fakeWindows({
    fail: new Map([[`/Create /TN kconnect-daemon /XML ${FILE} /F`, denied]]),
  });
  await assert.rejects(
    () => installService(w.host, { unitDir: "C:\\PF\\kconnect", command: [PROGRAM] }),
    (e: Error) => e.message.includes(denied) && e.message.includes("/Create"),
  );
  assert.equal(
    w.ran.filter((c) => c[0] === "schtasks.exe").length,
    1,
    "not started after a failed create",
  );

  const d = fakeWindows({
    taskExists: true,
    fail: new Map([["/Delete /TN kconnect-daemon /F", denied]]),
  });
  d.files.set(FILE, new Uint8Array([1]));
  await assert.rejects(
    () => uninstallService(d.host, { unitDir: "C:\\PF\\kconnect" }),
    (e: Error) => e.message.includes(denied) && e.message.includes("/Delete"),
  );
  assert.ok(d.files.has(FILE), "the file stays while the task does");

  // The real runner puts a failed command's output into its error.
  await assert.rejects(
    () => realHost.run(["sh", "-c", `echo '${denied}' >&2; exit 5`]),
    (e: Error) => e.message.includes("failed (exit 5): ERROR: Access is denied."),
  );
});

Deno.test("installService() on Windows refuses, before writing, what others than administrators could change", async () => {
  const w = fakeWindows({
    open: new Map([["C:\\Users\\alice\\Downloads", "others may change it: S-1-5-21-1-2-3-1001"]]),
  });
  await assert.rejects(
    () =>
      installService(w.host, {
        unitDir: "C:\\PF\\kconnect",
        command: ["C:\\Users\\alice\\Downloads\\kconnect.exe"],
      }),
    /would run as SYSTEM from C:\\Users\\alice\\Downloads, and others may change it: S-1-5-21/,
  );
  assert.deepEqual([w.ran, w.files.size, w.dirs], [[], 0, []]);

  // The folder the definition goes to counts too: it could be swapped before schtasks reads it.
  const t = fakeWindows({ open: new Map([["C:\\Temp", "its owner is S-1-5-21-9"]]) });
  await assert.rejects(
    () => installService(t.host, { unitDir: "C:\\Temp", command: [PROGRAM] }),
    /from C:\\Temp, and its owner is S-1-5-21-9/,
  );
  assert.deepEqual([t.ran, t.files.size], [[], 0]);
});

Deno.test("windowsCodePaths() names the program, a checkout's code, and their folders", () => {
  assert.deepEqual(
    windowsCodePaths([
      "C:\\deno\\deno.exe",
      "run",
      "-A",
      "--config",
      "D:\\src\\kconnect\\deno.json",
      "D:\\src\\kconnect\\main.ts",
      "daemon",
    ]),
    [
      "C:\\deno\\deno.exe",
      "C:\\deno",
      "D:\\src\\kconnect\\deno.json",
      "D:\\src\\kconnect",
      "D:\\src\\kconnect\\main.ts",
      "D:\\src\\kconnect\\src",
      "D:\\src\\kconnect\\deno.lock",
    ],
  );
  assert.deepEqual(windowsCodePaths(["C:\\kconnect.exe"]), ["C:\\kconnect.exe", "C:\\"]);
  // A Unix-form path is named too (and so refused when unreadable), not skipped.
  assert.deepEqual(windowsCodePaths(["C:\\d\\deno.exe", "run", "/C:/src/main.ts"]), [
    "C:\\d\\deno.exe",
    "C:\\d",
    "/C:/src/main.ts",
    "/C:/src",
    "/C:/src/src",
    "/C:/src/deno.json",
    "/C:/src/deno.lock",
  ]);
});

Deno.test("serviceText() and serviceFile() pick the task for Windows, as they pick the unit and plist", () => {
  const x = serviceText("windows", { command: [PROGRAM], group: "devs" });
  const exec = at(parseXml(x).root, "Actions", "Exec");
  assert.deepEqual(splitWindowsArgs(at(exec, "Arguments").text), ["daemon", "--group", "devs"]);
  assert.doesNotMatch(serviceText("linux", { command: ["/bin/k"] }), /<Task/);
  assert.equal(serviceFile("windows", "D:\\k"), "D:\\k\\kconnect-daemon.xml");
  assert.match(serviceFile("windows"), /^[A-Z]:\\.*\\kconnect\\kconnect-daemon\.xml$/);
});

Deno.test("installService() on Windows keeps an existing group and member, and says when the daemon does not answer", async () => {
  const w = fakeWindows({ groups: new Map([["devs", new Set(["PC\\alice"])]]), answers: false });
  await assert.rejects(
    () =>
      installService(w.host, {
        unitDir: "C:\\PF\\kconnect",
        command: [PROGRAM],
        group: "devs",
        user: "PC\\alice",
        startTimeoutMs: 400,
      }),
    (e: Error) =>
      e.message.includes("scheduled task kconnect-daemon was installed and started") &&
      e.message.includes("not listening on \\\\.\\pipe\\kconnect") &&
      e.message.includes("(task details)") && e.message.includes("daemon.log"),
  );
  assert.ok(
    !w.ran.some((c) =>
      c[0] === "net" && c[3] === "/add" && c.length === 5 && c[4]?.startsWith("/comment")
    ),
    "no group created",
  );
  const w2 = fakeWindows({ groups: new Map([["devs", new Set(["PC\\alice"])]]) });
  const done = await installService(w2.host, {
    unitDir: "C:\\PF\\kconnect",
    command: [PROGRAM],
    group: "devs",
    user: "PC\\alice",
  });
  assert.match(done.join("\n"), /user PC\\alice is already in group devs/);
});
