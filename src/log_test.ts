import assert from "node:assert/strict";
import {
  escapeControls,
  formatLogLine,
  getLogLevel,
  isLogEnabled,
  logger,
  setLogLevel,
  setLogWriter,
} from "./log.ts";

Deno.test("logger() writes only at or above the level set, quiet (warn) by default", () => {
  assert.equal(getLogLevel(), "warn");
  const lines: string[] = [];
  const previous = setLogWriter((line) => lines.push(line));
  try {
    const log = logger("test");
    const table: [string, string[]][] = [
      ["error", ["ERROR"]],
      ["warn", ["ERROR", "WARN"]],
      ["info", ["ERROR", "WARN", "INFO"]],
      ["debug", ["ERROR", "WARN", "INFO", "DEBUG"]],
    ];
    for (const [level, want] of table) {
      lines.length = 0;
      setLogLevel(level);
      log.error("e");
      log.warn("w");
      log.info("i");
      log.debug("d");
      assert.deepEqual(lines.map((l) => l.split(" ")[1]), want, `level ${level}`);
    }
    setLogLevel("info");
    assert.equal(isLogEnabled("info"), true);
    assert.equal(isLogEnabled("debug"), false);
  } finally {
    setLogLevel("warn");
    setLogWriter(previous);
  }
});

Deno.test("setLogLevel() rejects an unknown level", () => {
  assert.throws(() => setLogLevel("trace"), TypeError);
  assert.equal(getLogLevel(), "warn");
});

Deno.test("formatLogLine() puts time, level, scope, message and fields on one line", () => {
  const line = formatLogLine(new Date(0), "info", "dns", "listening", {
    port: 53,
    addr: "127.0.0.1",
    note: "two words",
    err: new Error("boom"),
    big: 5n,
  });
  assert.equal(
    line,
    '1970-01-01T00:00:00.000Z INFO  dns: listening port=53 addr=127.0.0.1 note="two words" ' +
      'err="boom" big=5\n',
  );
});

Deno.test("formatLogLine() escapes control characters and indents continuation lines: no forged records", () => {
  const hostile =
    "manager says hi\n2025-01-01T00:00:00.000Z ERROR daemon: forged\r\x1b]0;owned\x07" +
    "\x1b[2J\u009b31m\u202eevil\u2028x\x7f";
  const line = formatLogLine(new Date(0), "warn", "session", hostile, {
    warning: hostile,
    plain: "ok",
    err: new Error(hostile),
    obj: { w: "\u0085\u2066" },
  });
  const lines = line.slice(0, -1).split("\n");
  assert.ok(line.endsWith("\n"));
  assert.equal(lines.length, 2, `the message's own newline only: ${JSON.stringify(line)}`);
  assert.equal(lines[0], "1970-01-01T00:00:00.000Z WARN  session: manager says hi");
  // The forged record is a continuation: indented, never at the start of a line.
  assert.match(
    lines[1],
    /^ {2}2025-01-01T00:00:00\.000Z ERROR daemon: forged\\r\\u001b]0;owned\\u0007/,
  );
  assert.doesNotMatch(
    line.slice(0, -1),
    // deno-lint-ignore no-control-regex
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
  );
  assert.ok(line.includes("plain=ok"));
  // Values are JSON on the record's line: they parse back to what was logged.
  const warning = /warning=("(?:[^"\\]|\\.)*")/.exec(lines[1])![1];
  assert.equal(JSON.parse(warning), hostile);
  assert.deepEqual(JSON.parse(/obj=(\{.*\})$/.exec(lines[1])![1]), { w: "\u0085\u2066" });
  // A trailing newline adds no empty continuation.
  assert.equal(
    formatLogLine(new Date(0), "info", "x", "done\n"),
    "1970-01-01T00:00:00.000Z INFO  x: done\n",
  );
});

Deno.test("escapeControls() keeps text, tabs and (if asked) newlines, and escapes the rest", () => {
  assert.equal(escapeControls("plain ünïcödé ✓\ttab"), "plain ünïcödé ✓\ttab");
  assert.equal(escapeControls("a\nb\rc"), "a\\nb\\rc");
  assert.equal(escapeControls("a\nb\rc", { keepNewlines: true }), "a\nb\\rc");
  assert.equal(escapeControls("\x1b[31mred\x9b0m\x00"), "\\u001b[31mred\\u009b0m\\u0000");
});
