/**
 * Network namespaces for root-only tests: each test gets its own hosts, links and routes, and
 * `await using` removes them again, processes included.
 *
 * Names are `kc-<prefix>-<pid>-<counter>`, so a namespace left behind by a test run that was
 * killed can be told apart from a live one: {@linkcode sweepStaleNamespaces} deletes those
 * whose creating process is gone.
 *
 * @example
 * ```ts ignore
 * import { isRoot, Netns } from "./_netns.ts";
 *
 * Deno.test({ name: "ping across a veth", ignore: !isRoot }, async () => {
 *   await using a = await Netns.create("ping");
 *   await using b = await Netns.create("ping");
 *   await a.veth(b, { address: "192.0.2.1/24", peerAddress: "192.0.2.2/24" });
 *   await a.exec(["ping", "-c1", "-W2", "192.0.2.2"]);
 * });
 * ```
 *
 * @module
 */

/** True when the tests run as root, which namespaces need; use it as `ignore: !isRoot`. */
export const isRoot: boolean = Deno.build.os === "linux" && Deno.uid() === 0;

const decoder = new TextDecoder();
const NAME_RE = /^kc-(.+)-(\d+)-(\d+)$/;
let counter = 0;

/** What a finished command returned. */
export interface ExecResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode Netns.exec}. */
export interface ExecOptions {
  /** Throw when the command exits non-zero. Default true. */
  check?: boolean;
  /** Bytes or text written to the command's stdin, which is then closed. Default: no stdin. */
  stdin?: string | Uint8Array;
  /** Extra environment variables. Default none. */
  env?: Record<string, string>;
  /** Working directory. Default: the test's. */
  cwd?: string;
  /** Kill the command (SIGTERM) when this aborts, e.g. `AbortSignal.timeout(5000)`. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Netns.spawn}: those of `Deno.Command` that make sense here. */
export type SpawnOptions = Pick<
  Deno.CommandOptions,
  "stdin" | "stdout" | "stderr" | "env" | "cwd"
>;

/** Options of {@linkcode Netns.veth}. */
export interface VethOptions {
  /** Address(es) with prefix for this end, e.g. `"192.0.2.1/24"` or `["…/24", "fd00::1/64"]`. */
  address?: string | string[];
  /** Address(es) with prefix for the other end. */
  peerAddress?: string | string[];
  /** Interface name in this namespace. Default `veth<n>`, unique within it. */
  name?: string;
  /** Interface name in the other namespace. Default `veth<n>`, unique within it. */
  peerName?: string;
  /** MTU of both ends. Default: the kernel's (1500). */
  mtu?: number;
}

/** Options of {@linkcode Netns.create}. */
export interface NetnsOptions {
  /** How long a spawned process gets after SIGTERM before SIGKILL, in ms. Default 2000. */
  graceMs?: number;
}

/** Runs a command to completion (on the host); throws with its output on failure unless `check: false`. */
export async function run(cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
    cwd: options.cwd,
    signal: options.signal,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(
        typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
      );
      await writer.close();
    } catch {
      // the command exited without reading all of its input; its status says what happened
    }
  }
  const out = await child.output();
  const result = {
    code: out.signal ? 128 + signalNumber(out.signal) : out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if ((options.check ?? true) && result.code !== 0) {
    throw new Error(
      `Command \`${cmd.join(" ")}\` exited with code ${result.code}: ${
        result.stderr.trim() || result.stdout.trim() || "(no output)"
      }`,
    );
  }
  return result;
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGUSR1: 10,
    SIGSEGV: 11,
    SIGUSR2: 12,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 0;
}

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Kills every process inside namespace `name` with SIGKILL (the namespace itself stays). */
async function killAllIn(name: string): Promise<void> {
  const pids = await run(["ip", "netns", "pids", name], { check: false });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Deletes a namespace and kills what runs in it; never throws. */
async function deleteNamespace(name: string): Promise<void> {
  try {
    await killAllIn(name);
    await run(["ip", "netns", "delete", name], { check: false });
  } catch {
    // best effort: never throw from cleanup
  }
}

/** Names of the namespaces `ip netns list` shows. */
async function listNamespaces(): Promise<string[]> {
  const out = await run(["ip", "netns", "list"], { check: false });
  return out.stdout.split("\n").map((line) => line.split(" ")[0]).filter(Boolean);
}

/**
 * A network namespace that is deleted, with everything running in it, on dispose.
 *
 * Create one with {@linkcode Netns.create}; it starts with only `lo`, and `lo` is up.
 */
export class Netns implements AsyncDisposable {
  /** The namespace's name, as `ip netns` knows it. */
  readonly name: string;
  readonly #graceMs: number;
  readonly #children = new Set<Deno.ChildProcess>();
  #interfaces = 0;
  #disposed = false;

  private constructor(name: string, graceMs: number) {
    this.name = name;
    this.#graceMs = graceMs;
  }

  /**
   * Creates a namespace named `kc-<prefix>-<pid>-<counter>` and brings its `lo` up.
   *
   * @throws {TypeError} when `prefix` is empty or has characters other than letters, digits,
   *   `_`, `.` and `-`.
   * @throws {Error} when `ip netns add` fails (not root, no `ip`).
   */
  static async create(prefix: string, options: NetnsOptions = {}): Promise<Netns> {
    if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) {
      throw new TypeError(`Cannot create namespace: invalid prefix "${prefix}"`);
    }
    const name = `kc-${prefix}-${Deno.pid}-${counter++}`;
    await run(["ip", "netns", "add", name]);
    const ns = new Netns(name, options.graceMs ?? 2000);
    try {
      await run(["ip", "-n", name, "link", "set", "lo", "up"]);
    } catch (err) {
      await deleteNamespace(name);
      throw err;
    }
    return ns;
  }

  /**
   * Runs `cmd` inside the namespace (`ip netns exec <name> …`) and waits for it.
   *
   * @throws {Error} with the command's stderr when it exits non-zero, unless `check: false`.
   */
  exec(cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return run(["ip", "netns", "exec", this.name, ...cmd], options);
  }

  /**
   * Starts `cmd` inside the namespace without waiting. Its stdio defaults to `"null"`; pass
   * `"piped"` to read it. The process is tracked and killed on dispose (SIGTERM, then SIGKILL
   * after the grace period); end it earlier yourself if the test needs to.
   */
  spawn(cmd: string[], options: SpawnOptions = {}): Deno.ChildProcess {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...cmd],
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "null",
      stderr: options.stderr ?? "null",
      env: options.env,
      cwd: options.cwd,
    }).spawn();
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child)).catch(() => {});
    return child;
  }

  /**
   * Creates a veth pair between this namespace and `other`, assigns the addresses (IPv6 ones
   * without duplicate address detection, so they are usable at once) and brings both ends up.
   * Returns the two interface names.
   *
   * @throws {Error} when an `ip` command fails (e.g. a name already taken).
   */
  async veth(
    other: Netns,
    options: VethOptions = {},
  ): Promise<{ name: string; peerName: string }> {
    const name = options.name ?? `veth${this.#interfaces++}`;
    const peerName = options.peerName ?? `veth${other.#interfaces++}`;
    // Created inside the namespaces, so names cannot clash with the host or other test runs.
    await run([
      "ip",
      "-n",
      this.name,
      "link",
      "add",
      name,
      ...(options.mtu ? ["mtu", String(options.mtu)] : []),
      "type",
      "veth",
      "peer",
      "name",
      peerName,
      "netns",
      other.name,
      ...(options.mtu ? ["mtu", String(options.mtu)] : []),
    ]);
    const ends: [Netns, string, string[]][] = [
      [this, name, asList(options.address)],
      [other, peerName, asList(options.peerAddress)],
    ];
    for (const [ns, dev, addresses] of ends) {
      for (const address of addresses) {
        const nodad = address.includes(":") ? ["nodad"] : [];
        await run(["ip", "-n", ns.name, "addr", "add", address, "dev", dev, ...nodad]);
      }
      await run(["ip", "-n", ns.name, "link", "set", dev, "up"]);
    }
    return { name, peerName };
  }

  /**
   * Kills the tracked processes (SIGTERM, then SIGKILL after the grace period), then anything
   * else left in the namespace, and deletes it. Never throws; safe to call twice.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const children = [...this.#children];
    await Promise.all(children.map((child) => this.#stop(child)));
    await deleteNamespace(this.name);
  }

  async #stop(child: Deno.ChildProcess): Promise<void> {
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
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), this.#graceMs)),
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
      // Streams the caller never read would leak resources; close them.
      for (const which of ["stdout", "stderr"] as const) {
        try {
          await child[which].cancel();
        } catch {
          // not piped, or already read or locked by the caller
        }
      }
    } catch {
      // never throw from cleanup
    }
  }
}

/**
 * Deletes `kc-*` namespaces whose creating process (the pid in the name) no longer exists,
 * killing whatever still runs in them, and their state directories under
 * {@linkcode STALE_STATE_ROOT}: the leftovers of a test run that crashed. Returns what it
 * deleted. Never throws.
 *
 * @example
 * ```ts ignore
 * import { isRoot, sweepStaleNamespaces } from "./_netns.ts";
 * if (isRoot) await sweepStaleNamespaces();
 * ```
 */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const deleted: string[] = [];
  try {
    for (const name of await listNamespaces()) {
      const match = NAME_RE.exec(name);
      if (!match) continue;
      const pid = Number(match[2]);
      if (pid === Deno.pid || await processExists(pid)) continue;
      await deleteNamespace(name);
      deleted.push(name);
    }
  } catch {
    // best effort
  }
  // The state directories tests/_up.ts gives each laptop namespace, left by a killed run.
  try {
    for await (const e of Deno.readDir(STALE_STATE_ROOT)) {
      const match = NAME_RE.exec(e.name);
      if (!match || !e.isDirectory) continue;
      const pid = Number(match[2]);
      if (pid === Deno.pid || await processExists(pid)) continue;
      await Deno.remove(`${STALE_STATE_ROOT}/${e.name}`, { recursive: true });
      deleted.push(`${STALE_STATE_ROOT}/${e.name}`);
    }
  } catch {
    // best effort: none there
  }
  return deleted;
}

/** Where tests/_up.ts keeps each laptop namespace's state directory. */
export const STALE_STATE_ROOT = "/tmp/kconnect-test-state";

async function processExists(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Something that runs commands in a network namespace (a {@linkcode Netns}, or an env in one). */
export interface Runner {
  exec(cmd: string[], options?: ExecOptions): Promise<ExecResult>;
}

/**
 * Whether link `name` exists in `ns`: true when `ip link show` finds it, false when it says the
 * device does not exist. Any other failure (no `ip`, a wrong namespace) throws, so a negative
 * answer never comes from a command that could not run.
 */
export async function linkExists(ns: Runner, name: string): Promise<boolean> {
  const r = await ns.exec(["ip", "link", "show", name], { check: false });
  if (r.code === 0) return true;
  if (/does not exist/.test(r.stderr)) return false;
  throw new Error(`ip link show ${name} failed (${r.code}) for another reason: ${r.stderr.trim()}`);
}

/**
 * Whether `child` still runs: its status has not settled and `/proc` shows it alive (not a
 * zombie). Use it where "the process survived" is the claim; a pid alone proves nothing.
 */
export async function stillRunning(child: Deno.ChildProcess): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    child.status.then(() => true, () => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 100)),
  ]);
  clearTimeout(timer);
  if (settled) return false;
  try {
    const stat = await Deno.readTextFile(`/proc/${child.pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}
