/** `status` tells the truth about resumption: held flows and time left, and the last outcome. */
import assert from "node:assert/strict";
import { formatStatus } from "./status.ts";
import { reportOf, sampleSession } from "./_test_status.ts";

const base = sampleSession({ tun: { name: "kconnect0", mtu: 65000 }, flows: { tcp: 3, udp: 1 } });

const report = reportOf;

Deno.test("formatStatus(): reconnecting with flows held says how many and how long is left", () => {
  const text = formatStatus(report({
    ...base,
    state: "reconnecting",
    resume: {
      mode: "on",
      graceSeconds: 300,
      retainLimit: 8 << 20,
      retainedBytes: 1 << 20,
      held: { streams: 5, flows: 4, bytes: 3 << 20, secondsLeft: 287 },
      last: null,
    },
  }));
  assert.match(text, /^state:\s+reconnecting \(4 flows held, 287 s left\)$/m);
  assert.match(
    text,
    /^resume:\s+on, flows held up to 300 s while the tunnel is down, 8\.0 MiB kept per transport at most \(now 1\.0 MiB\); now 4 flows held \(3\.0 MiB\), 287 s left$/m,
  );
});

Deno.test("formatStatus(): after a drop, how many flows came back, or were lost and why", () => {
  const back = formatStatus(report({
    ...base,
    resume: {
      mode: "on",
      graceSeconds: 300,
      retainLimit: 8 << 20,
      retainedBytes: 0,
      held: null,
      last: {
        at: "2026-12-06T10:00:00.000Z",
        outcome: "resumed",
        streams: 4,
        reason: "the tunnel came back",
        afterMs: 21_400,
      },
    },
  }));
  assert.match(back, /^state:\s+connected$/m);
  assert.match(back, /last drop 2026-12-06T10:00:00.000Z: 4 flows back after 21.4 s/);
  const lost = formatStatus(report({
    ...base,
    resume: {
      mode: "on",
      graceSeconds: 300,
      retainLimit: 8 << 20,
      retainedBytes: 0,
      held: null,
      last: {
        at: "2026-12-06T10:00:00.000Z",
        outcome: "refused",
        streams: 2,
        reason: "no such session here (the traffic manager restarted or was replaced)",
      },
    },
  }));
  assert.match(lost, /2 flows lost \(no such session here \(the traffic manager restarted/);
});

Deno.test("formatStatus(): a protocol-1 manager or --resume-grace 0 says flows end on a drop; old daemons' reports have no line", () => {
  const old = formatStatus(report({
    ...base,
    resume: {
      mode: "unsupported",
      graceSeconds: 0,
      retainLimit: 0,
      retainedBytes: 0,
      held: null,
      last: null,
    },
  }));
  assert.match(old, /^resume:\s+not supported by the traffic manager \(protocol 1\)/m);
  const off = formatStatus(report({
    ...base,
    resume: {
      mode: "off",
      graceSeconds: 0,
      retainLimit: 0,
      retainedBytes: 0,
      held: null,
      last: null,
    },
  }));
  assert.match(off, /^resume:\s+off \(--resume-grace 0\)/m);
  assert.doesNotMatch(formatStatus(report(base)), /^resume:/m);
});
