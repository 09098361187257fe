/**
 * The Linux TUN driver against the real kernel. Needs root. Every device lives in a network
 * namespace made for the test and deleted afterwards: the driver runs in a child process
 * (`ip netns exec <ns> deno run …`), so this process never changes the host's network.
 */

import assert from "node:assert/strict";
import { DENO_RUN } from "./_dataplane.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;
const FIXTURES = new URL("./fixtures/", import.meta.url);
const decoder = new TextDecoder();
let namespaces = 0;

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, ...args: string[]): Promise<Output> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function mustRun(command: string, ...args: string[]): Promise<string> {
  const out = await run(command, ...args);
  assert.equal(out.code, 0, `${command} ${args.join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

/** Runs `fn` with a fresh network namespace, deleted afterwards whatever happens. */
async function withNamespace(fn: (ns: string) => Promise<void>): Promise<void> {
  const ns = `kc-tun-${Deno.pid}-${namespaces++}`;
  await mustRun("ip", "netns", "add", ns);
  try {
    await mustRun("ip", "-n", ns, "link", "set", "lo", "up");
    await fn(ns);
  } finally {
    await mustRun("ip", "netns", "delete", ns);
  }
}

function fixtureCommand(ns: string, script: string, args: string[], prefix: string[] = []) {
  const path = new URL(script, FIXTURES).pathname;
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...prefix, ...DENO_RUN, "-A", path, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a fixture to completion and returns its JSON lines. */
async function runFixture(
  ns: string,
  script: string,
  args: string[],
  prefix: string[] = [],
): Promise<Record<string, unknown>[]> {
  const child = fixtureCommand(ns, script, args, prefix).spawn();
  await child.stdin.close();
  const out = await child.output();
  assert.equal(out.code, 0, `${script} failed: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout).trim().split("\n").map((line) => JSON.parse(line));
}

async function tunDevices(ns: string): Promise<string> {
  return (await mustRun("ip", "-n", ns, "-o", "link", "show", "type", "tun")).trim();
}

/** Reads JSON lines from a stream, one at a time. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#buffer.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("fixture said nothing in time")),
          deadline - Date.now(),
        );
      });
      try {
        const { value, done } = await Promise.race([this.#reader.read(), timeout]);
        if (done) throw new Error(`fixture ended its output; partial line: ${this.#buffer}`);
        this.#buffer += value;
      } finally {
        clearTimeout(timer);
      }
    }
    const end = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 1);
    return JSON.parse(line);
  }
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}

Deno.test({
  name: "openLinuxTun() makes a configured TUN that answers ping and goes away on close",
  ignore,
  async fn() {
    await withNamespace(async (ns) => {
      const child = fixtureCommand(ns, "tun_echo.ts", []).spawn();
      const lines = new Lines(child.stdout);
      const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let exited = false;
      try {
        const ready = await lines.next(30_000);
        assert.equal(ready.event, "ready");
        const name = String(ready.name);
        assert.match(name, /^tun\d+$/, "the kernel picks the name when none is given");

        const [link] = JSON.parse(await mustRun("ip", "-n", ns, "-j", "addr", "show", "dev", name));
        assert.equal(link.ifname, name);
        assert.equal(link.mtu, 1400);
        assert.equal(link.txqlen, 2000, "transmit queue raised from the kernel default of 500");
        assert.ok(link.flags.includes("UP"), `flags: ${link.flags}`);
        const addrs = (link.addr_info as AddrInfo[]).map((a) => `${a.local}/${a.prefixlen}`);
        assert.ok(addrs.includes("198.18.0.1/30"), `addresses: ${addrs}`);
        assert.ok(addrs.includes("fd00:6b63::1/126"), `addresses: ${addrs}`);

        for (const target of ["198.18.0.2", "fd00:6b63::2"]) {
          const ping = await run(
            "ip",
            ...["netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", target],
          );
          assert.equal(ping.code, 0, `ping ${target} failed:\n${ping.stdout}${ping.stderr}`);
          assert.match(ping.stdout, /3 packets transmitted, 3 received/);
        }

        // The fixture closes the device while a read is pending: close must return and the
        // read resolve 0 (a hang fails here; a generous bound for a busy machine). How fast
        // close wakes the read is measured by bench/tun_io.ts ("close with a read pending").
        await child.stdin.close();
        const closed = await lines.next(30_000);
        assert.equal(closed.event, "closed");
        assert.equal(closed.readReturned, 0, "a pending read resolves 0 on close");
        assert.equal(closed.fd, -1);
        const stats = closed.stats as Record<string, number>;
        assert.ok(stats.readPackets >= 6, `stats: ${JSON.stringify(stats)}`);
        assert.ok(stats.writtenPackets >= 6, `stats: ${JSON.stringify(stats)}`);
        assert.equal(stats.writeErrors, 0);

        const status = await child.status;
        exited = true;
        assert.equal(status.code, 0);
        assert.equal(await tunDevices(ns), "", "the TUN is gone once closed");
      } catch (error) {
        const { value } = await Promise.race([
          stderr.read(),
          new Promise<{ value: string }>((r) => setTimeout(() => r({ value: "" }), 500)),
        ]);
        throw new Error(`${(error as Error).message}\nfixture stderr: ${value ?? ""}`, {
          cause: error,
        });
      } finally {
        if (!exited) {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
          await child.status;
        }
        await lines.cancel();
        await stderr.cancel().catch(() => {});
      }
    });
  },
});

Deno.test({
  name: "openLinuxTun() reports bad options and kernel refusals clearly, leaving no device",
  ignore,
  async fn() {
    await withNamespace(async (ns) => {
      await mustRun("ip", "-n", ns, "link", "add", "kcveth0", "type", "veth", "peer", "kcveth1");
      const results = await runFixture(ns, "tun_errors.ts", ["all", "kcveth0"]);
      const byCase = new Map(results.map((r) => [r.case, r]));
      const expect: [string, string, RegExp][] = [
        ["name too long", "TypeError", /"kconnect-too-long": must be 1 to 15 bytes, got 17/],
        ["name with slash", "TypeError", /must not be "\." or "\.\." nor contain "\/"/],
        ["mtu too large", "RangeError", /Invalid TUN MTU 70000: must be an integer from 68/],
        ["bad address", "TypeError", /"198\.18\.0\.300": not an IPv4 or IPv6 address/],
        ["not a tun", "TypeError", /^TUNSETIFF on \/dev\/net\/tun: .* \(EINVAL\) — is kcveth0/],
        ["busy", "Busy", /^TUNSETIFF on \/dev\/net\/tun: .* \(EBUSY\) — another process holds/],
        [
          "multicast address after open",
          "AddrNotAvailable",
          /^SIOCSIFADDR ff0e::1\/64 on kchalf0: .* \(EADDRNOTAVAIL\)$/,
        ],
      ];
      for (const [name, error, message] of expect) {
        const result = byCase.get(name);
        assert.ok(result, `no result for ${name}`);
        assert.equal(result.error, error, `${name}: ${JSON.stringify(result)}`);
        assert.match(String(result.message), message);
      }
      assert.deepStrictEqual(byCase.get("tuns while held")?.tuns, ["kcbusy0"]);
      assert.deepStrictEqual(byCase.get("tuns after close")?.tuns, []);
      assert.equal(await tunDevices(ns), "");
    });
  },
});

Deno.test({
  name: "openLinuxTun() without CAP_NET_ADMIN fails with EPERM and says what to do",
  ignore,
  async fn() {
    await withNamespace(async (ns) => {
      const drop = ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"];
      const [result] = await runFixture(ns, "tun_errors.ts", ["unprivileged"], drop);
      assert.equal(result.error, "PermissionDenied");
      assert.equal(result.code, "EPERM");
      assert.equal(
        result.message,
        "TUNSETIFF on /dev/net/tun: Operation not permitted (EPERM) — run as root or grant " +
          "CAP_NET_ADMIN",
      );
      assert.equal(await tunDevices(ns), "");
    });
  },
});
