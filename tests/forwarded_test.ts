/**
 * Security review M7: only this machine's own traffic rides the tunnel. A "LAN host" namespace
 * routes the cluster prefixes via the "laptop" namespace, which runs `kconnect forward` with
 * IP forwarding on (as Docker, libvirt and k3s hosts have it): its packets reach the TUN, and
 * the flow engine must drop them, while the laptop's own connections keep working.
 * Root only.
 */
import assert from "node:assert/strict";
import { dataplaneHost } from "./_dataplane.ts";
import { isRoot, Netns } from "./_netns.ts";

const opts = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

/** Python: a TCP exchange and a UDP exchange with `host`, printing what happened to each. */
function exchange(host: string, port: number): string {
  return `import socket
h, p = ${JSON.stringify(host)}, ${port}
fam = socket.AF_INET6 if ":" in h else socket.AF_INET
try:
    c = socket.create_connection((h, p), timeout=3)
    c.sendall(b"ping")
    print("tcp", c.recv(16).decode() or "EOF")
except socket.timeout:
    print("tcp TIMEOUT")
except OSError as e:
    print("tcp", type(e).__name__)
u = socket.socket(fam, socket.SOCK_DGRAM)
u.settimeout(3)
try:
    u.sendto(b"pong", (h, p))
    print("udp", u.recv(16).decode())
except socket.timeout:
    print("udp TIMEOUT")
except OSError as e:
    print("udp", type(e).__name__)
`;
}

Deno.test({
  name: "packets forwarded from another host get no answer through the TUN; the host's own do",
  ...opts,
  fn: async () => {
    await using laptop = await dataplaneHost("fwd", ["--log-level", "info"]);
    await using lan = await Netns.create("fwdlan");
    await lan.veth(laptop.ns, {
      address: ["192.0.2.2/24", "fd00:1::2/64"],
      peerAddress: ["192.0.2.1/24", "fd00:1::1/64"],
    });
    await laptop.ns.exec([
      "sysctl",
      "-qw",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
    ]);
    await lan.exec(["ip", "route", "add", "10.96.0.0/12", "via", "192.0.2.1"]);
    await lan.exec(["ip", "-6", "route", "add", "fd00:96::/64", "via", "fd00:1::1"]);
    // TCP and UDP echo on port 7000 in the laptop; the forward maps 10.96.0.1 onto it.
    await laptop.probeServer("echo-server", 7000);

    // The LAN host reaches the laptop itself (the link and its routes work)…
    const direct = await lan.exec(["python3", "-c", exchange("192.0.2.1", 7000)]);
    assert.equal(direct.stdout, "tcp ping\nudp pong\n", "LAN host to the laptop's own address");

    // …the laptop's own connections ride the tunnel…
    for (const h of ["10.96.0.1", "fd00:96::1"]) {
      const own = await laptop.ns.exec(["python3", "-c", exchange(h, 7000)]);
      assert.equal(own.stdout, "tcp ping\nudp pong\n", `the laptop's own traffic to ${h}`);
    }

    // …but what the LAN host sends through the laptop gets no answer at all.
    const hosts = ["10.96.0.1", "fd00:96::1"];
    const forwarded = await Promise.all(
      hosts.map((h) => lan.exec(["python3", "-c", exchange(h, 7000)])),
    );
    for (const [i, h] of hosts.entries()) {
      assert.equal(forwarded[i].stdout, "tcp TIMEOUT\nudp TIMEOUT\n", `forwarded traffic to ${h}`);
    }

    // The laptop's own traffic still works after the flood of foreign packets.
    const after = await laptop.ns.exec(["python3", "-c", exchange("10.96.0.1", 7000)]);
    assert.equal(after.stdout, "tcp ping\nudp pong\n", "the laptop's own traffic afterwards");

    // The drops were the engine's, counted in its stats (logged when kconnect forward stops).
    assert.equal(await laptop.stopForward(), 0);
    const stats = /stopping: .* notLocal=(\d+)/.exec(laptop.forward.err.text());
    assert.ok(stats !== null, `no stats line in:\n${laptop.forward.err.text()}`);
    assert.ok(Number(stats[1]) >= 4, `notLocal=${stats[1]}: the forwarded SYNs and datagrams`);
  },
});
