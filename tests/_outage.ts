/**
 * Outages of the path between a test cluster's laptop and its API server, the one path the
 * tunnel takes (laptop → `https://100.64.0.1:6443` → kubelet → manager):
 *
 * - {@linkcode blackHole}: iptables in the laptop namespace silently drops everything between
 *   the laptop and the API server's port, both ways, until lifted. Nothing is reset: only a
 *   keepalive can notice (TCP alone would retransmit for many minutes). Like a laptop asleep,
 *   or a Wi-Fi that stopped passing packets.
 * - {@linkcode killApiConnections}: every TCP connection between the laptop and the API server
 *   is aborted at once (`ss -K` in the laptop namespace: the laptop's side gets an error, the
 *   API server's a reset), while the API server stays up. Like a network change.
 *
 * (The third kind, the API server restarting, is `TestCluster.restartApiServer()`: its
 * connections close, and it comes back with the fixture's pods, the manager's included.)
 *
 * @example
 * ```ts ignore
 * import { blackHole } from "./_outage.ts";
 * {
 *   await using hole = await blackHole(cluster.laptop);
 *   await sleep(20_000);
 * } // lifted here, also when the block throws
 * ```
 *
 * @module
 */
import type { Runner } from "./_netns.ts";
import { API_LAPTOP_IP, API_PORT } from "./cluster/topology.ts";

/** Which traffic an outage cuts: the API server as the laptop reaches it. */
export interface ApiPath {
  /** Default {@linkcode API_LAPTOP_IP} (every laptop of the test cluster reaches it there). */
  address?: string;
  /** Default {@linkcode API_PORT}. */
  port?: number;
}

/** A black hole in place; `await using` it, or {@linkcode BlackHole.lift} it. */
export interface BlackHole extends AsyncDisposable {
  /** `performance.now()` when the rules were in place. */
  readonly since: number;
  /** True once lifted. */
  readonly lifted: boolean;
  /**
   * Removes the rules and returns `performance.now()` when they were gone; later calls return
   * the same. Throws when iptables cannot remove them (dispose then tries again, quietly).
   */
  lift(): Promise<number>;
}

/** Marks the rules, so that lifting removes exactly these and nothing a test added. */
const COMMENT = "kconnect-test-black-hole";

function rules(path: ApiPath): string[][] {
  const address = `${path.address ?? API_LAPTOP_IP}/32`;
  const port = String(path.port ?? API_PORT);
  const mark = ["-m", "comment", "--comment", COMMENT, "-j", "DROP"];
  return [
    ["OUTPUT", "-d", address, "-p", "tcp", "--dport", port, ...mark],
    ["INPUT", "-s", address, "-p", "tcp", "--sport", port, ...mark],
  ];
}

/**
 * Drops the traffic between `laptop` (its namespace) and the API server, both ways, from now
 * until lifted. If putting the rules in place fails, the ones already in are removed before the
 * error is thrown.
 *
 * @throws {Error} when iptables fails (not root, no iptables).
 */
export async function blackHole(laptop: Runner, path: ApiPath = {}): Promise<BlackHole> {
  const added: string[][] = [];
  const remove = async (check: boolean) => {
    const failures: string[] = [];
    while (added.length > 0) {
      const r = await laptop.exec(["iptables", "-w", "-D", ...added[added.length - 1]], {
        check: false,
      });
      // "Bad rule" / "does a matching rule exist": gone already, which is what is wanted.
      if (r.code !== 0 && !/does a matching rule exist|Bad rule/i.test(r.stderr)) {
        failures.push(r.stderr.trim());
        if (check) break;
      }
      added.pop();
    }
    if (check && failures.length > 0) {
      throw new Error(`Cannot lift the black hole: iptables -D failed: ${failures.join("; ")}`);
    }
  };
  try {
    for (const r of rules(path)) {
      // -I: ahead of anything else in the chain, so no earlier ACCEPT lets packets through.
      await laptop.exec(["iptables", "-w", "-I", ...r]);
      added.push(r);
    }
  } catch (err) {
    await remove(false).catch(() => {});
    throw err;
  }
  const since = performance.now();
  let liftedAt: number | null = null;
  const hole: BlackHole = {
    since,
    get lifted() {
      return liftedAt !== null;
    },
    async lift() {
      if (liftedAt !== null) return liftedAt;
      await remove(true);
      liftedAt = performance.now();
      return liftedAt;
    },
    async [Symbol.asyncDispose]() {
      if (liftedAt !== null) return;
      await remove(false).catch(() => {});
      liftedAt = performance.now();
    },
  };
  return hole;
}

/**
 * Aborts every TCP connection between `laptop` (its namespace) and the API server (`ss -K`):
 * the laptop's sockets fail with ECONNABORTED, the API server's side gets a reset. Returns how
 * many there were. (kconnect may have connected again by the time this returns.)
 *
 * @throws {Error} when `ss` fails, or when a connection it should have killed is still there (a
 *   kernel without `CONFIG_INET_DIAG_DESTROY` lets `ss -K` kill nothing).
 */
export async function killApiConnections(laptop: Runner, path: ApiPath = {}): Promise<number> {
  const filter = ["dst", path.address ?? API_LAPTOP_IP, "dport", "=", `:${path.port ?? API_PORT}`];
  const established = async () => {
    const r = await laptop.exec(["ss", "-H", "-tn", "state", "established", ...filter]);
    // Columns without a state: Recv-Q Send-Q Local Peer; a connection is its two addresses.
    return new Set(
      r.stdout.split("\n").map((l) => l.trim().split(/\s+/).slice(2, 4).join(" ")).filter((l) =>
        l !== ""
      ),
    );
  };
  const before = await established();
  const killed = await laptop.exec(["ss", "-K", "-H", "-tn", ...filter]);
  const count = killed.stdout.split("\n").filter((l) => l.trim() !== "").length;
  const left = [...await established()].filter((c) => before.has(c));
  if (left.length > 0) {
    throw new Error(
      `ss -K left connections to the API server open (a kernel without INET_DIAG_DESTROY?): ${
        left.join(", ")
      }`,
    );
  }
  return count;
}
