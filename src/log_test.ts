import assert from "node:assert/strict";
import {
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
