import assert from "node:assert/strict";
import { isRoot, Netns, STALE_STATE_ROOT, sweepStaleNamespaces } from "./_netns.ts";

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

async function namespaces(): Promise<string[]> {
  return (await ip("netns", "list")).split("\n").map((l) => l.split(" ")[0]).filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

const root = { ignore: !isRoot, sanitizeOps: true, sanitizeResources: true };

Deno.test({
  ...root,
  name: "Netns.create() makes a uniquely named namespace with lo up",
  async fn() {
    let name: string;
    {
      await using a = await Netns.create("create");
      await using b = await Netns.create("create");
      name = a.name;
      assert.match(a.name, new RegExp(`^kc-create-${Deno.pid}-\\d+$`));
      assert.notEqual(a.name, b.name);
      assert.ok((await namespaces()).includes(a.name));
      const lo = await a.exec(["ip", "-o", "link", "show", "lo"]);
      assert.match(lo.stdout, /<[^>]*\bUP\b[^>]*>/);
    }
    assert.equal((await namespaces()).includes(name), false, "deleted on dispose");
  },
});

Deno.test({
  ...root,
  name: "Netns.create() rejects a prefix that would make a bad name",
  async fn() {
    await assert.rejects(() => Netns.create("a/b"), TypeError);
    await assert.rejects(() => Netns.create(""), TypeError);
  },
});

Deno.test({
  ...root,
  name: "Netns.exec() returns output and throws with stderr on failure unless check is false",
  async fn() {
    await using ns = await Netns.create("exec");
    const ok = await ns.exec(["sh", "-c", "echo out; echo err >&2"]);
    assert.deepEqual(ok, { code: 0, stdout: "out\n", stderr: "err\n" });
    const cat = await ns.exec(["cat"], { stdin: "piped in" });
    assert.equal(cat.stdout, "piped in");
    await assert.rejects(
      () => ns.exec(["sh", "-c", "echo broken >&2; exit 3"]),
      /exited with code 3: broken/,
    );
    const failed = await ns.exec(["sh", "-c", "exit 4"], { check: false });
    assert.equal(failed.code, 4);
    // Really inside the namespace: only lo is there.
    const links = await ns.exec(["ip", "-o", "link", "show"]);
    assert.deepEqual(links.stdout.trim().split("\n").map((l) => l.split(": ")[1]), ["lo"]);
  },
});

Deno.test({
  ...root,
  name: "Netns.veth() links two namespaces with IPv4 and IPv6 addresses",
  async fn() {
    await using a = await Netns.create("veth");
    await using b = await Netns.create("veth");
    const link = await a.veth(b, {
      address: ["192.0.2.1/24", "fd00:6b63::1/64"],
      peerAddress: ["192.0.2.2/24", "fd00:6b63::2/64"],
      mtu: 9000,
    });
    assert.deepEqual(link, { name: "veth0", peerName: "veth0" });
    const second = await a.veth(b, { address: "198.51.100.1/24", peerAddress: "198.51.100.2/24" });
    assert.deepEqual(second, { name: "veth1", peerName: "veth1" });
    const show = await b.exec(["ip", "-o", "link", "show", "veth0"]);
    assert.match(show.stdout, /mtu 9000/);
    await a.exec(["ping", "-c1", "-W2", "192.0.2.2"]);
    await a.exec(["ping", "-c1", "-W2", "fd00:6b63::2"]);
    await b.exec(["ping", "-c1", "-W2", "198.51.100.1"]);
  },
});

Deno.test({
  ...root,
  name: "Netns.spawn() children are killed on dispose, with SIGKILL when SIGTERM is ignored",
  async fn() {
    let pids: number[];
    {
      await using ns = await Netns.create("spawn", { graceMs: 300 });
      const polite = ns.spawn(["sleep", "600"]);
      const stubborn = ns.spawn(["sh", "-c", "trap '' TERM; echo ready; sleep 600 & wait"], {
        stdout: "piped",
      });
      // Wait until the trap is set before disposing.
      const reader = stubborn.stdout.getReader();
      const { value } = await reader.read();
      assert.equal(new TextDecoder().decode(value), "ready\n");
      reader.releaseLock();
      pids = [polite.pid, stubborn.pid];
      const inside = (await ip("netns", "pids", ns.name)).split(/\s+/).filter(Boolean);
      assert.ok(inside.length >= 3, `sleep, sh and its sleep: ${inside}`);
      assert.ok(pids.every(alive));
    }
    assert.ok(!pids.some(alive), "children gone");
  },
});

Deno.test({
  ...root,
  name: "Netns dispose never throws, even twice or when the namespace is already gone",
  async fn() {
    const ns = await Netns.create("dispose");
    await ip("netns", "delete", ns.name);
    await ns[Symbol.asyncDispose]();
    await ns[Symbol.asyncDispose]();
  },
});

Deno.test({
  ...root,
  name:
    "sweepStaleNamespaces() deletes kc-* namespaces and state directories of dead processes only",
  async fn() {
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    const stale = `kc-sweep-${gone.pid}-0`;
    await ip("netns", "add", stale);
    await using live = await Netns.create("sweep");
    const staleDir = `${STALE_STATE_ROOT}/${stale}`;
    const liveDir = `${STALE_STATE_ROOT}/${live.name}`;
    await Deno.mkdir(staleDir, { recursive: true });
    await Deno.mkdir(liveDir, { recursive: true });
    try {
      const deleted = await sweepStaleNamespaces();
      assert.ok(deleted.includes(stale), `deleted ${deleted}`);
      assert.ok(!deleted.includes(live.name));
      const left = await namespaces();
      assert.ok(!left.includes(stale));
      assert.ok(left.includes(live.name));
      assert.ok(deleted.includes(staleDir), `deleted ${deleted}`);
      await assert.rejects(Deno.stat(staleDir), Deno.errors.NotFound);
      assert.ok((await Deno.stat(liveDir)).isDirectory, "a live namespace's state stays");
    } finally {
      await ip("netns", "delete", stale).catch(() => {});
      await Deno.remove(staleDir, { recursive: true }).catch(() => {});
      await Deno.remove(liveDir, { recursive: true }).catch(() => {});
      await Deno.remove(STALE_STATE_ROOT).catch(() => {});
    }
  },
});
