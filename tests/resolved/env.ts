/**
 * A real systemd-resolved, with its own D-Bus system bus, confined to a test's network
 * namespace and a private mount namespace: split-DNS tests run `resolvectl`, `getent`, `dig`,
 * `curl` and `kconnect up` against it exactly as on a laptop with resolved, and nothing of the
 * host changes.
 *
 * ## What it runs
 *
 * - A holder process (`sleep infinity`) started with `ip netns exec <ns> unshare --mount
 *   --propagation private`, so its mount namespace is a private copy of the one `ip netns exec`
 *   makes (with `/sys` for the network namespace). In it:
 *   - `/etc` is an overlay (lower: the host's `/etc`; upper: a tmpfs that exists only in this
 *     mount namespace): every write to `/etc` inside the env, `/etc/resolv.conf` included, lands
 *     in the tmpfs and vanishes with the env. The overlay holds `/etc/systemd/resolved.conf`
 *     (written from the options, drop-in directories removed), the `systemd-resolve` user and
 *     group when the host has none, and `/etc/resolv.conf` as resolved's own distribution
 *     set-up has it: a symlink to `/run/systemd/resolve/stub-resolv.conf` (see
 *     {@linkcode ResolvedEnvOptions.resolvConf} for the other modes).
 *   - `/run` is a fresh tmpfs with `/run/dbus` and `/run/systemd`.
 * - `dbus-daemon` with a system-bus configuration written here: the stock policy (method calls
 *   denied unless a service's policy allows them), resolved's own policy file
 *   (`org.freedesktop.resolve1.conf` from the package) included, no `<user>` (runs as root), no
 *   service activation, listening on `/run/dbus/system_bus_socket` in the private `/run`.
 * - `systemd-resolved` itself, as root: it binds its stub listeners (127.0.0.53 and
 *   127.0.0.54, port 53), creates `/run/systemd/resolve` owned by `systemd-resolve`, then drops
 *   privileges to that user, keeping CAP_NET_RAW and CAP_NET_BIND_SERVICE. It finds its
 *   `libsystemd-shared-252.so` through `LD_LIBRARY_PATH` in the unpacked package (the binary's
 *   RUNPATH names /usr/lib/…/systemd, which holds the host's copy or nothing). Without systemd
 *   as PID 1 there is no `NOTIFY_SOCKET`, no watchdog, no D-Bus activation and no polkit: D-Bus
 *   clients running as root pass resolved's privilege checks by their capabilities
 *   (CAP_NET_ADMIN), as `resolvectl` run by root does on a real system.
 *
 * The package is not installed: `scripts/setup.sh` unpacks the systemd-resolved,
 * libsystemd-shared and systemd .debs (same version, the installed libsystemd-shared's when apt
 * has it) into {@linkcode RESOLVED_DIR} (`$KCONNECT_RESOLVED_DIR`, default
 * `/var/cache/kconnect-test/systemd-resolved`). `resolvectl` and `busctl` (from the systemd
 * .deb: a fresh Debian image has none) are reached through wrappers in
 * {@linkcode ResolvedEnv.binDir}, first on `PATH` for {@linkcode ResolvedEnv.exec} and
 * {@linkcode ResolvedEnv.spawn}, so the unpacked ones run, never the host's.
 *
 * Commands run "inside" through `nsenter --mount=/proc/<holder>/ns/mnt
 * --net=/proc/<holder>/ns/net`: same users, same `/proc`, `/tmp`, `/work`, `/root` (the Deno
 * cache) as the host, but the env's `/etc`, `/run` and network. Dispose stops everything started
 * inside (and anything else left in the mount namespace), then the holder, so the mounts go
 * with the namespace; only the scratch directory under the temp dir is left to remove.
 *
 * What resolved does here (measured with 252.38):
 * - With no link that has carrier and a routable address it answers every query with SERVFAIL
 *   at once ("network-down") without asking any server; veth carrier can lag a second or more
 *   behind `ip link set up` on a busy machine, so wait for it (the TestCluster's laptops do).
 * - A link is used for DNS only while it is UP with carrier (a TUN needs its fd open) and has an
 *   address; until then `resolvectl status` shows `Current Scopes: none` and queries for its
 *   routing domains go to the global servers instead.
 * - Per-link DNS servers are contacted from a socket bound to the link (SO_BINDTOIFINDEX): the
 *   server address needs no route and need not be on the link's subnet.
 * - `~domain` routes only; a plain domain routes and is also a search domain (it appears on the
 *   stub resolv.conf's `search` line, which glibc uses). Single-label names sent to the stub
 *   without search (e.g. `dig web`) are refused; `resolvectl query web` applies the search list.
 * - That `search` line lists the global `Domains=` first, then the links' (in ifindex order), so
 *   glibc tries `web.corp.example` at the laptop's upstream before `web.default.svc.cluster.local`.
 * - `.local` names go to unicast DNS only through a link whose domains cover them
 *   (`~cluster.local` or `cluster.local`); a single-label `~default` routes `web.default`.
 * - Per-link settings survive a restart of resolved (it saves them under
 *   `/run/systemd/resolve/netif/`); they go with the link, or with `resolvectl revert`.
 *
 * @example
 * ```ts ignore
 * import { Netns } from "../_netns.ts";
 * import { ResolvedEnv } from "./env.ts";
 *
 * await using ns = await Netns.create("laptop");
 * await using env = await ResolvedEnv.start(ns, { dns: ["100.64.0.2"] });
 * await env.exec(["resolvectl", "status"]);
 * const r = await env.exec(["getent", "hosts", "www.example.com"]);
 * // kconnect itself, seeing resolved as on a laptop:
 * const up = env.spawn(["deno", "run", "-A", "main.ts", "up", "--kubeconfig", kubeconfig,
 *   "--dns", "resolved", "--state-dir", `${env.dir}/state`], { stdout: "piped" });
 * ```
 *
 * @module
 */
import { LineWatcher } from "../_lines.ts";
import {
  type ExecOptions,
  type ExecResult,
  type Netns,
  run,
  type SpawnOptions,
} from "../_netns.ts";

export type { ExecOptions, ExecResult, SpawnOptions };

/** Where `scripts/setup.sh` unpacks systemd-resolved (`root/`, `VERSION`). */
export const RESOLVED_DIR: string = Deno.env.get("KCONNECT_RESOLVED_DIR") ??
  "/var/cache/kconnect-test/systemd-resolved";

/** The D-Bus system bus address inside the env. */
export const SYSTEM_BUS_ADDRESS = "unix:path=/run/dbus/system_bus_socket";

/** Where resolved's stub resolv.conf is, inside the env. */
export const STUB_RESOLV_CONF = "/run/systemd/resolve/stub-resolv.conf";

/** Options of {@linkcode ResolvedEnv.start}. */
export interface ResolvedEnvOptions {
  /** Global DNS servers (`DNS=` in resolved.conf). Default `["100.64.0.2"]`, the laptop's. */
  dns?: string[];
  /** Global search and routing domains (`Domains=`). Default none. */
  domains?: string[];
  /** `FallbackDNS=`. Default empty: no compiled-in public fallback servers. */
  fallbackDns?: string[];
  /** More `[Resolve]` lines, e.g. `"ResolveUnicastSingleLabel=yes"`. */
  extraConfig?: string[];
  /**
   * What `/etc/resolv.conf` is inside the env. Default `"stub"`.
   * - `"stub"`: a symlink to `/run/systemd/resolve/stub-resolv.conf` (127.0.0.53 and the
   *   search domains of all links; Debian's and Ubuntu's set-up).
   * - `"uplink"`: a symlink to `/run/systemd/resolve/resolv.conf` (the real servers; glibc
   *   bypasses resolved).
   * - `"static"`: a regular file naming 127.0.0.53 (`/usr/lib/systemd/resolv.conf`'s content).
   * - `"foreign"`: a regular file, the network namespace's own resolv.conf
   *   (`/etc/netns/<ns>/resolv.conf` when there is one); resolved reads its servers from it.
   */
  resolvConf?: "stub" | "uplink" | "static" | "foreign";
  /** resolved's log level (`SYSTEMD_LOG_LEVEL`). Default `"info"`. */
  logLevel?: "debug" | "info" | "notice" | "warning" | "err";
  /** Directory with the unpacked packages. Default {@linkcode RESOLVED_DIR}. */
  resolvedDir?: string;
  /** How long to wait for resolved to answer on D-Bus, in ms. Default 15000. */
  readyMs?: number;
  /** Grace period between SIGTERM and SIGKILL when stopping processes, in ms. Default 2000. */
  graceMs?: number;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The unpacked tools the env puts first on `PATH` (wrappers in {@linkcode ResolvedEnv.binDir}). */
export const WRAPPED = ["resolvectl", "busctl"] as const;

/** Reads `VERSION` and finds the binaries and library directory under `dir`. */
async function locate(dir: string): Promise<{ version: string; root: string; libDir: string }> {
  const root = `${dir}/root`;
  let version: string;
  try {
    version = (await Deno.readTextFile(`${dir}/VERSION`)).trim();
  } catch {
    throw new Error(
      `Cannot start systemd-resolved: ${dir}/VERSION is missing; run \`sudo bash scripts/setup.sh\``,
    );
  }
  for (const f of ["lib/systemd/systemd-resolved", ...WRAPPED.map((b) => `usr/bin/${b}`)]) {
    if (!await exists(`${root}/${f}`)) {
      throw new Error(
        `Cannot start systemd-resolved: ${root}/${f} is missing; remove ${dir} and run \`sudo bash scripts/setup.sh\``,
      );
    }
  }
  for await (const arch of Deno.readDir(`${root}/usr/lib`)) {
    const libDir = `${root}/usr/lib/${arch.name}/systemd`;
    if (!arch.isDirectory || !await exists(libDir)) continue;
    for await (const f of Deno.readDir(libDir)) {
      if (/^libsystemd-shared-\d+\.so$/.test(f.name)) return { version, root, libDir };
    }
  }
  throw new Error(`Cannot start systemd-resolved: no libsystemd-shared under ${root}/usr/lib`);
}

/** A free id below 1000 for a system user or group, or the host's own for `name`. */
async function systemId(file: string, name: string): Promise<number> {
  const taken = new Set<number>();
  for (const line of (await Deno.readTextFile(file)).split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return Number(f[2]);
    if (f.length > 2) taken.add(Number(f[2]));
  }
  for (let id = 990; id > 100; id--) if (!taken.has(id)) return id;
  throw new Error(`Cannot start systemd-resolved: no free id in ${file}`);
}

function dbusConfig(resolvedRoot: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- kconnect tests: a private system bus for systemd-resolved (tests/resolved/env.ts). -->
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>${SYSTEM_BUS_ADDRESS}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <include ignore_missing="no">${resolvedRoot}/usr/share/dbus-1/system.d/org.freedesktop.resolve1.conf</include>
</busconfig>
`;
}

const STATIC_RESOLV_CONF = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";

function setupScript(dir: string, mode: string, uid: number, gid: number): string {
  const d = shellQuote(dir);
  const link = mode === "uplink" ? "/run/systemd/resolve/resolv.conf" : STUB_RESOLV_CONF;
  return `set -eu
D=${d}
# The network namespace's resolv.conf, as ip netns exec mounted it (for resolvConf "foreign").
cat /etc/resolv.conf > "$D/netns-resolv.conf" 2>/dev/null || : > "$D/netns-resolv.conf"
mount -t tmpfs -o mode=0700 kc-resolved-etc "$D/overlay"
mkdir "$D/overlay/upper" "$D/overlay/work"
mount -t overlay kc-resolved-etc \\
  -o "lowerdir=/etc,upperdir=$D/overlay/upper,workdir=$D/overlay/work" /etc
mount -t tmpfs -o mode=0755,nosuid,nodev kc-resolved-run /run
mkdir -p /run/dbus /run/systemd /run/lock /etc/systemd
rm -rf /etc/systemd/resolved.conf.d
cp "$D/resolved.conf" /etc/systemd/resolved.conf
grep -q '^systemd-resolve:' /etc/passwd ||
  echo 'systemd-resolve:x:${uid}:${gid}:systemd Resolver:/:/usr/sbin/nologin' >> /etc/passwd
grep -q '^systemd-resolve:' /etc/group || echo 'systemd-resolve:x:${gid}:' >> /etc/group
rm -f /etc/resolv.conf
case ${shellQuote(mode)} in
  stub|uplink) ln -s ${link} /etc/resolv.conf ;;
  static) printf '%s' ${shellQuote(STATIC_RESOLV_CONF)} > /etc/resolv.conf ;;
  foreign) cp "$D/netns-resolv.conf" /etc/resolv.conf ;;
esac
echo ready
exec sleep infinity
`;
}

/** A process the env started and watches. */
interface Daemon {
  child: Deno.ChildProcess;
  out: LineWatcher;
  err: LineWatcher;
}

/**
 * systemd-resolved and a D-Bus system bus in `ns` plus a private mount namespace. Start with
 * {@linkcode ResolvedEnv.start}; `await using` it.
 */
export class ResolvedEnv implements AsyncDisposable {
  /** The network namespace. */
  readonly ns: Netns;
  /** Scratch directory on the host (config files, the overlay's mount point). */
  readonly dir: string;
  /** The systemd-resolved package version, e.g. `252.38-1~deb12u1`. */
  readonly version: string;
  /** Directory with the `resolvectl` and `busctl` wrappers; first on `PATH` inside. */
  readonly binDir: string;
  /** The mount namespace, as `readlink /proc/<pid>/ns/mnt` shows it (`mnt:[…]`). */
  readonly mountNamespace: string;
  readonly #options: ResolvedEnvOptions;
  readonly #root: string;
  readonly #libDir: string;
  readonly #holder: Daemon;
  readonly #children = new Set<Deno.ChildProcess>();
  #dbus: Daemon | null = null;
  #resolved: Daemon | null = null;
  #disposed = false;

  private constructor(
    ns: Netns,
    dir: string,
    found: { version: string; root: string; libDir: string },
    holder: Daemon,
    mountNamespace: string,
    options: ResolvedEnvOptions,
  ) {
    this.ns = ns;
    this.dir = dir;
    this.version = found.version;
    this.#root = found.root;
    this.#libDir = found.libDir;
    this.binDir = `${dir}/bin`;
    this.#holder = holder;
    this.mountNamespace = mountNamespace;
    this.#options = options;
  }

  /**
   * Sets up the mount namespace in `ns`, starts the bus and resolved, and resolves once
   * `resolvectl status` answers. On failure everything started is stopped and the error names
   * the failing step with its stderr.
   *
   * @throws {Error} when the package is not unpacked (run `scripts/setup.sh`), not root, or a
   *   daemon does not start.
   */
  static async start(ns: Netns, options: ResolvedEnvOptions = {}): Promise<ResolvedEnv> {
    const found = await locate(options.resolvedDir ?? RESOLVED_DIR);
    const dir = await Deno.makeTempDir({ prefix: "kc-resolved-" });
    let env: ResolvedEnv | null = null;
    let holder: Daemon | null = null;
    try {
      const mode = options.resolvConf ?? "stub";
      await Deno.mkdir(`${dir}/overlay`);
      await Deno.mkdir(`${dir}/bin`);
      await Deno.writeTextFile(`${dir}/resolved.conf`, resolvedConf(options));
      await Deno.writeTextFile(`${dir}/dbus.conf`, dbusConfig(found.root));
      for (const tool of WRAPPED) {
        await Deno.writeTextFile(
          `${dir}/bin/${tool}`,
          `#!/bin/sh\nLD_LIBRARY_PATH=${
            shellQuote(found.libDir)
          }\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ` +
            `exec ${shellQuote(`${found.root}/usr/bin/${tool}`)} "$@"\n`,
          { mode: 0o755 },
        );
      }
      const uid = await systemId("/etc/passwd", "systemd-resolve");
      const gid = await systemId("/etc/group", "systemd-resolve");
      await Deno.writeTextFile(`${dir}/setup.sh`, setupScript(dir, mode, uid, gid));
      const child = ns.spawn(
        ["unshare", "--mount", "--propagation", "private", "sh", `${dir}/setup.sh`],
        { stdout: "piped", stderr: "piped" },
      );
      holder = { child, out: new LineWatcher(child.stdout), err: new LineWatcher(child.stderr) };
      try {
        await holder.out.waitFor(/^ready$/, 10_000);
      } catch (err) {
        throw new Error(
          `Cannot set up the mount namespace for systemd-resolved: ${(err as Error).message}\n` +
            `stderr:\n${holder.err.text()}`,
        );
      }
      const mnt = await Deno.readLink(`/proc/${child.pid}/ns/mnt`);
      if (mnt === await Deno.readLink("/proc/self/ns/mnt")) {
        throw new Error(
          "Cannot set up systemd-resolved: the holder shares the host's mount namespace",
        );
      }
      env = new ResolvedEnv(ns, dir, found, holder, mnt, options);
      await env.#startDbus();
      await env.startResolved();
      return env;
    } catch (err) {
      if (env) await env[Symbol.asyncDispose]();
      else {
        if (holder) await stopChild(holder.child, options.graceMs ?? 2000);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
      throw err;
    }
  }

  /** The holder's pid: `/proc/<pid>/ns/{mnt,net}` are the env's namespaces. */
  get pid(): number {
    return this.#holder.child.pid;
  }

  /** The pid of the running systemd-resolved, or null. */
  get resolvedPid(): number | null {
    return this.#resolved?.child.pid ?? null;
  }

  /** resolved's log (its stderr, line by line), or null when it is not running. */
  get resolvedLog(): LineWatcher | null {
    return this.#resolved?.err ?? null;
  }

  /** The `nsenter` prefix that runs `cmd` inside the env; `cwd` must be absolute. */
  command(cmd: string[], cwd: string = Deno.cwd()): string[] {
    return [
      "nsenter",
      `--mount=/proc/${this.pid}/ns/mnt`,
      `--net=/proc/${this.pid}/ns/net`,
      `--wdns=${cwd}`,
      "--",
      ...cmd,
    ];
  }

  #env(extra?: Record<string, string>): Record<string, string> {
    return {
      PATH: `${this.binDir}:${Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
      DBUS_SYSTEM_BUS_ADDRESS: SYSTEM_BUS_ADDRESS,
      // Deno's update check would otherwise look up dl.deno.land through resolved, which
      // shows up in the upstream's query log.
      DENO_NO_UPDATE_CHECK: "1",
      ...extra,
    };
  }

  /**
   * Runs `cmd` inside the env (its `/etc`, `/run`, network; `resolvectl` on `PATH`) and waits.
   *
   * @throws {Error} with the command's stderr when it exits non-zero, unless `check: false`.
   */
  exec(cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return run(this.command(cmd, options.cwd), { ...options, env: this.#env(options.env) });
  }

  /**
   * Starts `cmd` inside the env without waiting; stdio defaults to `"null"`. The process is
   * stopped on dispose (SIGTERM, then SIGKILL after the grace period).
   */
  spawn(cmd: string[], options: SpawnOptions = {}): Deno.ChildProcess {
    const cwd = options.cwd instanceof URL ? options.cwd.pathname : options.cwd;
    const [bin, ...args] = this.command(cmd, cwd);
    const child = new Deno.Command(bin, {
      args,
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "null",
      stderr: options.stderr ?? "null",
      env: this.#env(options.env),
    }).spawn();
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child)).catch(() => {});
    return child;
  }

  /** `resolvectl <args>` inside the env; its stdout. */
  async resolvectl(...args: string[]): Promise<string> {
    return (await this.exec(["resolvectl", ...args])).stdout;
  }

  /** A file's text as seen inside the env (symlinks resolved there), e.g. `/etc/resolv.conf`. */
  async readFile(path: string): Promise<string> {
    return (await this.exec(["cat", "--", path])).stdout;
  }

  async #startDbus(): Promise<void> {
    const child = this.#spawnDaemon([
      "dbus-daemon",
      `--config-file=${this.dir}/dbus.conf`,
      "--nofork",
      "--nopidfile",
      "--nosyslog",
      "--print-address=1",
    ], {});
    this.#dbus = child;
    try {
      await child.out.waitFor(/^unix:/, 10_000);
    } catch (err) {
      throw new Error(
        `Cannot start the D-Bus system bus: ${
          (err as Error).message
        }\nstderr:\n${child.err.text()}`,
      );
    }
  }

  #spawnDaemon(cmd: string[], env: Record<string, string>): Daemon {
    // `env -u` drops what a service manager may have left in the test's environment.
    const clean = [
      "env",
      ...["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC"]
        .flatMap((v) => ["-u", v]),
      ...["WATCHDOG_PID", "INVOCATION_ID", "RUNTIME_DIRECTORY", "CREDENTIALS_DIRECTORY"]
        .flatMap((v) => ["-u", v]),
    ];
    const [bin, ...args] = this.command([...clean, ...cmd], "/");
    const child = new Deno.Command(bin, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { ...this.#env(), ...env },
    }).spawn();
    return { child, out: new LineWatcher(child.stdout), err: new LineWatcher(child.stderr) };
  }

  /**
   * Starts systemd-resolved (after {@linkcode stopResolved}); resolves when it answers on
   * D-Bus and its stub resolv.conf exists. resolved reloads per-link settings it saved in
   * `/run/systemd/resolve/netif/`, as after `systemctl restart systemd-resolved`.
   */
  async startResolved(): Promise<void> {
    if (this.#resolved) return;
    const d = this.#spawnDaemon([`${this.#root}/lib/systemd/systemd-resolved`], {
      LD_LIBRARY_PATH: this.#libDir,
      SYSTEMD_LOG_LEVEL: this.#options.logLevel ?? "info",
      SYSTEMD_LOG_TARGET: "console",
      SYSTEMD_LOG_COLOR: "0",
      SYSTEMD_LOG_TIME: "1",
    });
    this.#resolved = d;
    const exited: { code: number | null } = { code: null };
    d.child.status.then((s) => exited.code = s.code).catch(() => {});
    const ms = this.#options.readyMs ?? 15_000;
    const deadline = Date.now() + ms;
    let last = "";
    while (exited.code === null) {
      const r = await this.exec(["resolvectl", "status"], { check: false });
      last = r.stderr.trim();
      if (r.code === 0) {
        const stub = await this.exec(["test", "-s", STUB_RESOLV_CONF], { check: false });
        if (stub.code === 0) return;
        last = `${STUB_RESOLV_CONF} does not exist`;
      }
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const why = exited.code !== null
      ? `it exited with code ${exited.code}`
      : `it does not answer after ${ms} ms (${last})`;
    await this.stopResolved();
    throw new Error(`Cannot start systemd-resolved ${this.version}: ${why}\n${d.err.text()}`);
  }

  /** Stops systemd-resolved (SIGTERM, like `systemctl stop`); the bus keeps running. */
  async stopResolved(): Promise<void> {
    const d = this.#resolved;
    if (!d) return;
    this.#resolved = null;
    await stopChild(d.child, this.#options.graceMs ?? 2000);
    await Promise.all([d.out.done, d.err.done]);
  }

  /** Stops and starts systemd-resolved. */
  async restartResolved(): Promise<void> {
    await this.stopResolved();
    await this.startResolved();
  }

  /**
   * Stops what runs inside (the commands spawned here, resolved, the bus, then anything else
   * left in the mount namespace) and the holder, so the namespace and its mounts go away, and
   * removes the scratch directory. Never throws; safe to call twice. The network namespace is
   * the caller's and stays.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const grace = this.#options.graceMs ?? 2000;
    try {
      await Promise.all([...this.#children].map((c) => stopChild(c, grace)));
      await this.stopResolved().catch(() => {});
      const dbus = this.#dbus;
      this.#dbus = null;
      if (dbus) {
        await stopChild(dbus.child, grace);
        await Promise.all([dbus.out.done, dbus.err.done]);
      }
      await killOthersIn(this.mountNamespace, this.pid);
      await stopChild(this.#holder.child, grace);
      await Promise.all([this.#holder.out.done, this.#holder.err.done]);
    } catch {
      // never throw from cleanup
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** The resolved.conf the env writes. */
export function resolvedConf(options: ResolvedEnvOptions = {}): string {
  return [
    "# kconnect tests (tests/resolved/env.ts)",
    "[Resolve]",
    `DNS=${(options.dns ?? ["100.64.0.2"]).join(" ")}`,
    `Domains=${(options.domains ?? []).join(" ")}`,
    `FallbackDNS=${(options.fallbackDns ?? []).join(" ")}`,
    "LLMNR=no",
    "MulticastDNS=no",
    "DNSSEC=no",
    "DNSOverTLS=no",
    ...(options.extraConfig ?? []),
    "",
  ].join("\n");
}

/** SIGTERM, then SIGKILL after `graceMs`; waits for the exit; never throws. */
async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  try {
    const done = child.status.then(() => true, () => true);
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      done,
      new Promise<false>((r) => timer = setTimeout(() => r(false), graceMs)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
      await done;
    }
    for (const which of ["stdout", "stderr"] as const) {
      try {
        await child[which].cancel();
      } catch {
        // not piped, or read by a LineWatcher
      }
    }
  } catch {
    // never throw from cleanup
  }
}

/** Pids of the processes whose mount namespace is `mnt` (`mnt:[…]`). */
export async function pidsInMountNamespace(mnt: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (await Deno.readLink(`/proc/${e.name}/ns/mnt`) === mnt) pids.push(Number(e.name));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/** SIGKILLs every process in mount namespace `mnt` except `keep`. */
async function killOthersIn(mnt: string, keep: number): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = (await pidsInMountNamespace(mnt)).filter((p) => p !== keep);
    if (pids.length === 0) return;
    for (const p of pids) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
