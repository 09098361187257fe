/**
 * `kconnect up`: connect this machine to a cluster.
 *
 * By default `up` asks the kconnect daemon (see `src/daemon/`) to connect, prints the steps it
 * streams back and returns once connected; as root with no daemon running it starts one in the
 * background first (that daemon exits again once disconnected). `up --foreground` does the work
 * in this process instead and stays attached until Ctrl-C or SIGTERM, which undo everything;
 * service managers and debugging use it.
 *
 * A daemon `up` starts serves root and the user who ran sudo (`SUDO_UID` of this root process,
 * passed as `--allow-uid`), or the members of a group when one is named (`--group`,
 * `KCONNECT_GROUP`, `"group"` in the config file); a named group that does not exist is refused
 * before anything starts. The daemon's stdout and stderr go to its log file, which `up` creates
 * first; when the daemon does not come up, `up` prints what it said and where the log is.
 *
 * Under sudo (`SUDO_UID` set), the invoking user's credentials are fetched as that user, the way
 * the daemon fetches a member's (`src/k8s/as_user.ts`): their exec plugins and token files
 * are never run or read as root. The daemon's log file is created only below directories no
 * other user can change (`src/host/safe_path.ts`).
 *
 * Settings come from the flags, else the user's config file (`src/config/config.ts`), else the
 * defaults.
 *
 * @module
 */
import type { Command } from "commander";
import { isWindowsAbsolute } from "../host/windows_run_as_structs.ts";
import {
  defaultHome,
  KUBECONFIG_SEPARATOR,
  kubeconfigPaths,
  loadKubeconfig,
} from "../k8s/access.ts";
import { checkTrustedParents } from "../host/safe_path.ts";
import { Journal, stateDir } from "../journal/journal.ts";
import { removeUpRecord, runningUp, writeUpRecord } from "../journal/pidfile.ts";
import { undoLeftovers } from "../connect/leftovers.ts";
import { DNS_MODES, type DnsMode } from "../resolver/select.ts";
import { UpConnection, upConnectionOptions } from "../connect/up_connection.ts";
import { logger, type Progress } from "../log.ts";
import { Cidr } from "../wire/address.ts";
import {
  checkFlag,
  configPath,
  DEFAULT_SETTINGS,
  loadConfig,
  resolveSettings,
  SettingsError,
  type UpSettings,
} from "../config/config.ts";
import { callDaemon, DaemonUnavailableError, socketAnswers } from "../daemon/client.ts";
import { logFilePath, socketPath } from "../daemon/paths.ts";
import { chooseGroup, describeAccess, type NamedGroup, resolveGroup } from "../daemon/access.ts";
import { sudoUid } from "../host/sudo.ts";
import { createLogFile } from "../log_file.ts";
import type { ProgressEvent, UpResult } from "../daemon/protocol.ts";
import { selfCommand } from "../host/self.ts";
import { printLine } from "../cmdline/output.ts";
import { consoleProgress } from "./progress.ts";
import { UsageError } from "../cmdline/program.ts";
import { untilSignal } from "../cmdline/signals.ts";

const log = logger("up");

/** Options of `kconnect up`. Settings left undefined come from the config file or defaults. */
export interface UpOptions {
  kubeconfig?: string;
  context?: string;
  managerNamespace?: string;
  alsoProxy?: string[];
  neverProxy?: string[];
  allowRouteConflicts?: boolean;
  tunName?: string;
  mtu?: string;
  transports?: string;
  resumeGrace?: string;
  tunNet4?: string;
  tunNet6?: string;
  namespace?: string;
  dns?: string;
  stateDir?: string;
  config?: string;
  foreground?: boolean;
  switch?: boolean;
  socket?: string;
  logFile?: string;
  group?: string;
  install?: boolean;
  upgrade?: boolean;
  managerImage?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").filter((v) => v !== "")];
}

function checkCidrs(texts: string[], flag: string): string[] {
  for (const t of texts) {
    if (Cidr.parse(t) === null) {
      throw new UsageError(`Invalid ${flag} "${t}": expected a CIDR like 10.0.0.0/8`);
    }
  }
  return texts;
}

/** The settings given on the command line, checked; undefined where not given. */
export function flagSettings(opts: UpOptions): Partial<UpSettings> {
  const out: Partial<UpSettings> = {};
  if (opts.alsoProxy !== undefined) out.alsoProxy = checkCidrs(opts.alsoProxy, "--also-proxy");
  if (opts.neverProxy !== undefined) out.neverProxy = checkCidrs(opts.neverProxy, "--never-proxy");
  // The ranges are the config file's (one rule, one wording); a bad value is a usage error.
  const flag = (name: string, key: "mtu" | "transports" | "resumeGrace", text: string): number => {
    try {
      return checkFlag(name, key, text) as number;
    } catch (e) {
      throw e instanceof SettingsError ? new UsageError(e.message) : e;
    }
  };
  if (opts.mtu !== undefined) out.mtu = flag("mtu", "mtu", opts.mtu);
  if (opts.transports !== undefined) {
    out.transports = flag("transports", "transports", opts.transports);
  }
  if (opts.resumeGrace !== undefined) {
    out.resumeGrace = flag("resume-grace", "resumeGrace", opts.resumeGrace);
  }
  if (opts.dns !== undefined) {
    if (!(DNS_MODES as readonly string[]).includes(opts.dns)) {
      throw new UsageError(`Invalid --dns "${opts.dns}": expected one of ${DNS_MODES.join(", ")}`);
    }
    out.dns = opts.dns as DnsMode;
  }
  if (opts.managerNamespace !== undefined) out.managerNamespace = opts.managerNamespace;
  if (opts.namespace !== undefined) out.namespace = opts.namespace;
  if (opts.allowRouteConflicts) out.allowRouteConflicts = true;
  if (opts.tunName !== undefined) out.tunName = opts.tunName;
  if (opts.tunNet4 !== undefined) out.tunNet4 = opts.tunNet4;
  if (opts.tunNet6 !== undefined) out.tunNet6 = opts.tunNet6;
  if (opts.install) out.installManager = true;
  if (opts.upgrade === false) out.upgradeManager = false;
  if (opts.managerImage !== undefined) out.managerImage = opts.managerImage;
  return out;
}

function absolute(path: string): string {
  if (Deno.build.os === "windows") {
    return isWindowsAbsolute(path) ? path : `${Deno.cwd()}\\${path}`;
  }
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** Runs `kconnect up`: through the daemon, or in this process with `--foreground`. */
export function runUp(opts: UpOptions, progress: Progress = consoleProgress): Promise<void> {
  return opts.foreground ? runUpForeground(opts, progress) : runUpViaDaemon(opts, progress);
}

async function userConfig(opts: UpOptions) {
  return await loadConfig(configPath(opts.config, defaultHome()), opts.config !== undefined);
}

function showEvent(progress: Progress, e: ProgressEvent): void {
  if (e.kind === "done") progress.done(e.name, e.detail);
  else if (e.kind === "detail") progress.detail(e.text);
  else progress.warn(e.text);
}

/** How long a daemon `up` starts gets to listen. */
const DAEMON_START_MS = 20_000;

/** The last `n` non-empty lines of what was written to `f` after its read position. */
function lastLines(f: Deno.FsFile, n: number): string[] {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  for (let r = f.readSync(buf); r !== null && r > 0; r = f.readSync(buf)) {
    text = (text + decoder.decode(buf.subarray(0, r), { stream: true })).slice(-256 * 1024);
  }
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "").slice(-n);
}

/** The daemon's log file, created now and open at its end (see `createLogFile`). */
async function openDaemonLog(path: string): Promise<Deno.FsFile> {
  try {
    await checkTrustedParents(path.startsWith("/") ? path : absolute(path), "the daemon's log");
    return createLogFile(path);
  } catch (err) {
    throw new Error(
      `Cannot create the kconnect daemon's log file ${path}: ${
        (err as Error).message
      } (pass --log-file with another path)`,
    );
  }
}

/**
 * Starts a daemon in the background for this `up` (root only); resolves once it listens.
 *
 * Its stdout and stderr are appended to its log file (created here first, so the path exists
 * whatever happens), so an error it prints before or after its logger is set up is kept; when
 * it exits or does not listen in time, the error says why with its last lines and names the log.
 */
async function startDaemon(
  opts: UpOptions,
  socket: string,
  group: NamedGroup | null,
): Promise<void> {
  const logFile = logFilePath(opts.logFile);
  using out = await openDaemonLog(logFile);
  const sudo = sudoUid(Deno.env.toObject());
  const [program, ...lead] = selfCommand();
  const args = [
    ...lead,
    "daemon",
    "--socket",
    socket,
    ...(group !== null
      ? ["--group", group.group]
      : sudo !== null
      ? ["--allow-uid", `${sudo}`]
      : []),
    "--log-file",
    logFile,
    "--exit-when-idle",
    ...(opts.stateDir ? ["--state-dir", opts.stateDir] : []),
  ];
  // sh only redirects (the daemon keeps its pid through exec): Deno cannot hand a file to a
  // child as its stdout, and a pipe would break once this up exits.
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" >>"$log" 2>&1',
      "kconnect-daemon",
      logFile,
      program,
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  let status: Deno.CommandStatus | null = null;
  child.status.then((s) => status = s);
  const until = Date.now() + DAEMON_START_MS;
  while (Date.now() < until && status === null) {
    if (await socketAnswers(socket)) {
      log.info("started a kconnect daemon", { pid: child.pid, socket, logFile });
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let why: string;
  if (status === null) {
    try {
      child.kill("SIGTERM");
    } catch { /* exited meanwhile */ }
    await Promise.race([child.status, new Promise((r) => setTimeout(r, 2000))]);
    why = `it did not listen on ${socket} within ${DAEMON_START_MS / 1000} s and was stopped`;
  } else {
    const s = status as Deno.CommandStatus;
    why = s.signal ? `it was killed by ${s.signal}` : `it exited with status ${s.code}`;
  }
  const said = lastLines(out, 15);
  throw new Error(
    `Cannot start the kconnect daemon (pid ${child.pid}): ${why}. ${
      said.length
        ? `Its last output:\n${said.map((l) => `  ${l}`).join("\n")}\n`
        : "It printed nothing. "
    }Its log: ${logFile}`,
  );
}

async function runUpViaDaemon(opts: UpOptions, progress: Progress): Promise<void> {
  const flags = flagSettings(opts);
  const config = await userConfig(opts);
  const socket = socketPath(opts.socket);
  const root = Deno.uid() === 0;
  // A daemon this up may start: its group is checked before anything else happens.
  const group = chooseGroup(opts.group, Deno.env.get("KCONNECT_GROUP"), config);
  if (root && group !== null) await resolveGroup(group);
  if (root && opts.logFile === "-") {
    throw new UsageError(
      "A daemon that up starts runs in the background: --log-file needs a path (kconnect daemon --log-file - logs to a terminal)",
    );
  }
  if (!root && opts.group !== undefined) {
    progress.warn(
      "--group applies only to a daemon that sudo kconnect up starts; this up uses the running daemon as it is",
    );
  }
  const kubeconfig =
    (opts.kubeconfig ? opts.kubeconfig.split(KUBECONFIG_SEPARATOR) : kubeconfigPaths())
      .filter((p) => p !== "").map(absolute).join(KUBECONFIG_SEPARATOR);
  const body = {
    type: "up" as const,
    kubeconfig,
    context: opts.context ?? null,
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    switch: opts.switch ?? false,
    flags,
    config,
  };
  const call = () =>
    callDaemon(socket, body, { onProgress: (e) => showEvent(progress, e) }) as Promise<UpResult>;
  let result: UpResult;
  let started = false;
  try {
    result = await call();
  } catch (err) {
    if (!(err instanceof DaemonUnavailableError) || err.reason !== "absent") throw err;
    if (Deno.build.os === "windows") {
      throw new Error(
        `No kconnect daemon is running (${socket}): install the service once from a terminal opened as administrator (kconnect service install), or run kconnect up --foreground there`,
      );
    }
    if (!root) {
      throw new Error(
        `No kconnect daemon is running (${socket}): run sudo kconnect up (it starts one), or install the service once with sudo kconnect service install`,
      );
    }
    await startDaemon(opts, socket, group);
    started = true;
    result = await call();
  }
  const access = result.status.daemon?.access;
  if (root && !started && group !== null && access && access.group !== group.group) {
    progress.warn(
      `group "${group.group}" (from ${group.from}) was not applied: a kconnect daemon was already running, for ${
        describeAccess(access)
      }; the group applies to a daemon that up starts`,
    );
  }
  printLine(
    `ready: connected to context "${result.context}" through the kconnect daemon (pid ${result.status.daemon?.pid}); kconnect down disconnects`,
  );
}

/** Runs `kconnect up` in the foreground until a signal. */
async function runUpForeground(opts: UpOptions, progress: Progress): Promise<void> {
  const flags = flagSettings(opts);
  const config = await userConfig(opts);
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      "kconnect up must run as root: it creates a TUN device and routes (try: sudo kconnect up)",
    );
  }
  const dir = stateDir(opts.stateDir);
  const running = await runningUp(dir);
  if (running !== null) {
    throw new Error(
      `kconnect is already connected (context "${running.context}", pid ${running.pid}, since ${running.startedAt}): run kconnect down first`,
    );
  }
  const journal = await Journal.open(dir);
  for (const done of await undoLeftovers(journal)) {
    progress.warn(`cleaned up after an earlier run that did not exit cleanly: ${done}`);
  }
  // Under sudo, fetched as the user who ran sudo; otherwise by root, in a child process too, so
  // this long-lived process does not carry the kubeconfig library (see loadKubeconfig).
  const access = await loadKubeconfig({
    kubeconfig: opts.kubeconfig,
    context: opts.context,
    outOfProcess: true,
  });
  progress.done(
    "kubeconfig",
    `context "${access.context}", user "${access.userName}" (${access.source}${
      access.credentialsUid === undefined ? "" : `, credentials as uid ${access.credentialsUid}`
    })`,
  );
  const settings = resolveSettings(flags, config, access.context);
  await writeUpRecord(dir, access.context);
  const signalled = new AbortController();
  const stop = untilSignal(signalled.signal);
  try {
    await using connection = await UpConnection.start(
      upConnectionOptions(settings, access, journal),
      progress,
    );
    printLine(`ready: connected to context "${access.context}"; press Ctrl-C to disconnect`);
    const statsTimer = setInterval(() => {
      const m = Deno.memoryUsage();
      const st = connection.status();
      log.debug("stats", {
        rssMiB: (m.rss / 1048576).toFixed(1),
        heapMiB: (m.heapUsed / 1048576).toFixed(1),
        tcpFlows: st.flows.tcp,
        udpFlows: st.flows.udp,
        streams: st.transports.reduce((n, t) => n + t.streams, 0),
        dnsQueries: connection.dnsStats.queries,
        dnsDropped: connection.dnsStats.dropped,
      });
    }, 5000);
    const why = await Promise.race([stop, connection.done]);
    clearInterval(statsTimer);
    log.info(`disconnecting: ${why}`);
  } finally {
    signalled.abort();
    await removeUpRecord(dir);
  }
  printLine("disconnected");
}

/** Registers `kconnect up`. */
export function registerUp(program: Command): void {
  const d = DEFAULT_SETTINGS;
  program
    .command("up")
    .description(
      "connect this machine to the cluster of the current kube context (through the kconnect daemon; --foreground to run in this process)",
    )
    .option("--kubeconfig <path>", "kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "kube context to use (default: the current context)")
    .option(
      "--manager-namespace <ns>",
      `namespace of the traffic manager (default ${d.managerNamespace})`,
    )
    .option("--also-proxy <cidr>", "route this prefix into the cluster too (repeatable)", collect)
    .option(
      "--never-proxy <cidr>",
      "never route this prefix into the cluster (repeatable)",
      collect,
    )
    .option("--install", "install the traffic manager when the cluster has none")
    .option("--no-upgrade", "keep a traffic manager of another version instead of upgrading it")
    .option("--manager-image <image>", "image for installing or upgrading the traffic manager")
    .option(
      "--allow-route-conflicts",
      "route cluster CIDRs even where they overlap this machine's routes",
    )
    .option("--tun-name <name>", `TUN interface name (default ${d.tunName})`)
    .option("--mtu <bytes>", `TUN MTU (default ${d.mtu})`)
    .option(
      "--transports <n>",
      `port-forward connections to spread flows over (default ${d.transports})`,
    )
    .option(
      "--resume-grace <seconds>",
      `hold open connections this long while the tunnel is down, resuming them when it returns; 0: end them at once (default ${d.resumeGrace})`,
    )
    .option("--tun-net4 <cidr>", `the TUN's own IPv4 prefix (default ${d.tunNet4})`)
    .option("--tun-net6 <cidr>", `the TUN's own IPv6 prefix (default ${d.tunNet6})`)
    .option(
      "-n, --namespace <ns>",
      "namespace whose services short names resolve in (default: the context's)",
    )
    .option("--dns <mode>", `resolver configuration: ${DNS_MODES.join(", ")} (default ${d.dns})`)
    .option(
      "--config <file>",
      "config file (default: KCONNECT_CONFIG, else ~/.config/kconnect/config.json)",
    )
    .option("--foreground", "connect in this process and stay attached until Ctrl-C or SIGTERM")
    .option("--switch", "if already connected, disconnect and connect to this context instead")
    .option(
      "--socket <path>",
      "the daemon's control socket (default: KCONNECT_SOCKET, else /run/kconnect/kconnect.sock)",
    )
    .option(
      "--log-file <path>",
      "log file of a daemon that up starts (default /var/log/kconnect/daemon.log)",
    )
    .option(
      "--group <name|gid>",
      "members of this group may use a daemon that up starts (default: KCONNECT_GROUP, else the config file's group, else none: root and the user who ran sudo)",
    )
    .option(
      "--state-dir <dir>",
      "where the journal of host changes lives (default /var/lib/kconnect)",
    )
    .action((opts: UpOptions) => runUp(opts));
}
