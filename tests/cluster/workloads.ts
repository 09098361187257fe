/**
 * The inside of the test cluster's network namespace: pod and service addresses, kube-proxy's
 * DNAT rules, and the workloads (HTTP, Redis, TCP/UDP echo, a UDP echo that names the sender,
 * the headless `db` pods, and dnsmasq as the cluster DNS), all from Debian packages.
 *
 * This machine's kernel has no `dummy` link type, so the addresses sit on one end of a veth
 * pair (`kube0`) whose other end stays in the namespace: like kube-proxy IPVS mode's
 * `kube-ipvs0` dummy, it only holds addresses.
 *
 * @module
 */
import type { Netns } from "../_netns.ts";
import { LineWatcher } from "../_lines.ts";
import {
  API_CLUSTER_IP,
  dnsHosts,
  IPS,
  POD_CIDR,
  SERVICE_IPS,
  SERVICES,
  UDP_PEER_PORT,
} from "./topology.ts";

/**
 * The UDP echo that names the sender (`python3 -c UDP_PEER_ECHO <address> <port>`): one socket,
 * so every answer leaves from the port asked, and each datagram comes back as
 * `<payload without its trailing newline> from <address>:<port>\n`.
 */
const UDP_PEER_ECHO = [
  "import socket, sys",
  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
  "s.bind((sys.argv[1], int(sys.argv[2])))",
  "while True:",
  "    data, peer = s.recvfrom(65535)",
  "    s.sendto(data.rstrip(b'\\n') + (' from %s:%d\\n' % peer).encode(), peer)",
].join("\n");

/** Adds the addresses (`kube0`) and the service DNAT rules to the cluster namespace. */
export async function setUpClusterNetwork(ns: Netns, podIPs: string[]): Promise<void> {
  const ip = (...args: string[]) => ns.exec(["ip", ...args]);
  await ip("link", "add", "kube0", "type", "veth", "peer", "name", "kube0p");
  await ip("link", "set", "kube0", "up");
  await ip("link", "set", "kube0p", "up");
  const addresses = new Set([...podIPs, ...Object.values(SERVICE_IPS)]);
  for (const a of addresses) await ip("addr", "add", `${a}/32`, "dev", "kube0");
  // The node's own pod range, as a CNI bridge would route it.
  await ip("route", "add", POD_CIDR, "dev", "kube0p");
  const rules = [
    ["-t", "nat", "-N", "KUBE-SERVICES"],
    [
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-m",
      "comment",
      "--comment",
      "kubernetes service portals",
      "-j",
      "KUBE-SERVICES",
    ],
    [
      "-t",
      "nat",
      "-A",
      "PREROUTING",
      "-m",
      "comment",
      "--comment",
      "kubernetes service portals",
      "-j",
      "KUBE-SERVICES",
    ],
    // Locally originated traffic DNATed to the API server leaves with a service IP as source.
    ["-t", "nat", "-A", "POSTROUTING", "-d", `${API_CLUSTER_IP}/32`, "-j", "MASQUERADE"],
  ];
  for (const svc of SERVICES) {
    for (const [key, to] of Object.entries(svc.to ?? {})) {
      const [proto, port] = key.split("/");
      rules.push([
        "-t",
        "nat",
        "-A",
        "KUBE-SERVICES",
        "-d",
        `${svc.clusterIPs[0]}/32`,
        "-p",
        proto,
        "-m",
        proto,
        "--dport",
        port,
        "-m",
        "comment",
        "--comment",
        `${svc.namespace}/${svc.name}:${key} cluster IP`,
        "-j",
        "DNAT",
        "--to-destination",
        to,
      ]);
    }
  }
  for (const r of rules) await ns.exec(["iptables", "-w", ...r]);
}

/** A process started in the cluster namespace, with its output. */
export interface Workload {
  name: string;
  child: Deno.ChildProcess;
  out: LineWatcher;
  err: LineWatcher;
}

/** What {@linkcode startWorkloads} needs. */
export interface WorkloadOptions {
  /** Directory the web pod serves. */
  webDir: string;
  /** Scratch directory for config files. */
  dir: string;
}

/** Starts a command in `ns` with piped output. */
export function startProcess(
  ns: Netns,
  name: string,
  cmd: string[],
  env?: Record<string, string>,
): Workload {
  const child = ns.spawn(cmd, { stdout: "piped", stderr: "piped", env });
  return { name, child, out: new LineWatcher(child.stdout), err: new LineWatcher(child.stderr) };
}

/** Starts the standard workloads; returns them once each listens. */
export async function startWorkloads(ns: Netns, options: WorkloadOptions): Promise<Workload[]> {
  const { dir, webDir } = options;
  await Deno.writeTextFile(`${dir}/dns-hosts`, dnsHosts().join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/dnsmasq.conf`,
    [
      "port=53",
      `listen-address=${IPS.coredns}`,
      "bind-interfaces",
      "no-resolv",
      "no-hosts",
      "no-poll",
      "user=root",
      "pid-file=",
      `addn-hosts=${dir}/dns-hosts`,
      "srv-host=_http._tcp.web.default.svc.cluster.local,web.default.svc.cluster.local,80,0,100",
      "srv-host=_dns._udp.kube-dns.kube-system.svc.cluster.local,kube-dns.kube-system.svc.cluster.local,53,0,100",
      // Authoritative for the cluster domain and the reverse zones, like CoreDNS: negative
      // answers carry the SOA (ns.dns.cluster.local / hostmaster.cluster.local, TTL 30).
      "auth-server=ns.dns.cluster.local,kube0",
      "auth-zone=cluster.local,10.96.0.0/12,10.244.0.0/16",
      "auth-soa=1,hostmaster.cluster.local,7200,1800,86400",
      "auth-ttl=30",
      "local-ttl=30",
      "",
    ].join("\n"),
  );
  const py = await firstExisting(["/usr/bin/python3", "python3"]);
  const started: Workload[] = [
    startProcess(ns, "dns", ["dnsmasq", "-k", "-C", `${dir}/dnsmasq.conf`, "--log-facility=-"]),
    startProcess(ns, "web", [
      py,
      "-m",
      "http.server",
      "8080",
      "--bind",
      IPS.web,
      "--directory",
      webDir,
    ]),
    startProcess(ns, "redis", [
      "redis-server",
      "--bind",
      IPS.redis,
      "--port",
      "6379",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no",
      "--daemonize",
      "no",
      "--dir",
      dir,
    ]),
    // socat listens with a backlog of 5 unless told: too few for 200 clients at once.
    startProcess(ns, "echo-tcp", [
      "socat",
      `TCP-LISTEN:7,bind=${IPS.echo},fork,reuseaddr,backlog=1024`,
      "PIPE",
    ]),
    startProcess(ns, "echo-udp", [
      "socat",
      "-T",
      "5",
      `UDP-RECVFROM:7,bind=${IPS.echo},fork`,
      "PIPE",
    ]),
    startProcess(ns, "echo-udp-peer", [py, "-c", UDP_PEER_ECHO, IPS.echo, String(UDP_PEER_PORT)]),
    ...[IPS.db0, IPS.db1].map((ip, i) =>
      startProcess(
        ns,
        `db-${i}`,
        ["socat", `TCP-LISTEN:5432,bind=${ip},fork,reuseaddr`, `SYSTEM:echo db-${i}`],
      )
    ),
  ];
  const waits: [Workload, string, number, "tcp" | "udp"][] = [
    [started[0], IPS.coredns, 53, "udp"],
    [started[1], IPS.web, 8080, "tcp"],
    [started[2], IPS.redis, 6379, "tcp"],
    [started[3], IPS.echo, 7, "tcp"],
    [started[4], IPS.echo, 7, "udp"],
    [started[5], IPS.echo, UDP_PEER_PORT, "udp"],
    [started[6], IPS.db0, 5432, "tcp"],
    [started[7], IPS.db1, 5432, "tcp"],
  ];
  await Promise.all(waits.map(([w, addr, port, proto]) => waitListening(ns, w, addr, port, proto)));
  return started;
}

async function firstExisting(paths: string[]): Promise<string> {
  for (const p of paths) {
    try {
      await Deno.stat(p);
      return p;
    } catch {
      // next
    }
  }
  return paths[paths.length - 1];
}

/**
 * Waits until something listens on `addr:port` in `ns`; fails early, with the process's
 * stderr, when `w` exits first.
 */
export async function waitListening(
  ns: Netns,
  w: Workload | null,
  addr: string,
  port: number,
  proto: "tcp" | "udp" = "tcp",
  ms = 15_000,
): Promise<void> {
  const state: { exited: Deno.CommandStatus | null } = { exited: null };
  w?.child.status.then((s) => state.exited = s).catch(() => {});
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await ns.exec(["ss", "-Hln", proto === "tcp" ? "-t" : "-u", `sport = :${port}`], {
      check: false,
    });
    if (
      r.stdout.split("\n").some((l) =>
        l.includes(`${addr}:${port}`) || l.includes(`*:${port}`) || l.includes(`0.0.0.0:${port}`)
      )
    ) {
      return;
    }
    if (state.exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const what = w ? `${w.name} (${w.child.pid})` : "a process";
  const why = state.exited
    ? `exited with code ${state.exited.code}`
    : `does not listen after ${ms} ms`;
  throw new Error(
    `Cannot start the test cluster: ${what} ${why} on ${proto} ${addr}:${port}` +
      (w ? `\nstderr:\n${w.err.text()}\nstdout:\n${w.out.text()}` : ""),
  );
}
