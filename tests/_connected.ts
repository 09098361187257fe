/**
 * The connected laptop most end-to-end tests start from: a {@linkcode TestCluster} and
 * `kconnect up --foreground --kubeconfig <the cluster's>` in its laptop namespace, ready (the
 * steps printed, routes in place). Disposing of it stops `up`, then removes the cluster.
 *
 * @module
 */
import { isRoot, type Netns } from "./_netns.ts";
import { TestCluster, type TestClusterOptions } from "./cluster/cluster.ts";
import { startUp, type UpProcess } from "./_up.ts";

/**
 * Options of an end-to-end test: it needs root (network namespaces, a TUN) and leaves child
 * processes and their pipes to the fixtures' own clean-up.
 */
export const E2E_TEST = { ignore: !isRoot, sanitizeResources: false, sanitizeOps: false };

/** A test cluster with `kconnect up` running and ready on its laptop. */
export interface ConnectedLaptop extends AsyncDisposable {
  cluster: TestCluster;
  /** The cluster's laptop namespace, where `up` runs. */
  laptop: Netns;
  up: UpProcess;
}

/** Options for {@linkcode connectedLaptop}. */
export interface ConnectedLaptopOptions {
  /** The cluster's options. Default `{ k8sVersion: "1.33" }`. */
  cluster?: TestClusterOptions;
  /** Arguments of `up` after `--kubeconfig <the cluster's>`. Default none. */
  up?: string[];
  /** Runs once the cluster is up and before `up` starts (e.g. to check the laptop before). */
  beforeUp?: (cluster: TestCluster) => Promise<void>;
}

/** Starts a test cluster and `kconnect up` on its laptop, and waits for `up` to be ready. */
export async function connectedLaptop(
  options: ConnectedLaptopOptions = {},
): Promise<ConnectedLaptop> {
  const cluster = await TestCluster.start(options.cluster ?? { k8sVersion: "1.33" });
  try {
    await options.beforeUp?.(cluster);
    const up = await startUp(cluster.laptop, [
      "--kubeconfig",
      cluster.kubeconfig,
      ...(options.up ?? []),
    ]);
    return {
      cluster,
      laptop: cluster.laptop,
      up,
      async [Symbol.asyncDispose]() {
        try {
          await up[Symbol.asyncDispose]();
        } finally {
          await cluster[Symbol.asyncDispose]();
        }
      },
    };
  } catch (e) {
    await cluster[Symbol.asyncDispose]();
    throw e;
  }
}
