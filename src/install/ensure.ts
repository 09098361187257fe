/**
 * `up`'s hook for the traffic manager: find it; install it when there is none and the user
 * agrees (`--install`, or yes at a prompt on a terminal); upgrade it when kconnect installed it
 * and its version or code differs from this client's (unless told not to). Returns the pod to
 * port-forward to.
 *
 * Version identity is the client's VERSION plus the sha256 of its manager bundle: the
 * Deployment's pod template carries both (label `app.kubernetes.io/version`, annotation
 * `kconnect.io/bundle-sha256`). A manager kconnect did not install (no
 * `app.kubernetes.io/managed-by=kconnect` Deployment) is used as it is, with a warning that it
 * cannot be checked, and another when its version label differs.
 *
 * The pod is always one `findTrafficManager` vouches for (run by kconnect's Deployment, when
 * there is one), also right after an install or upgrade: a pod someone else labelled is never
 * the one port-forwarded to.
 *
 * @module
 */
import type { Progress } from "../log.ts";
import { findTrafficManager, NoTrafficManagerError } from "../manager_identity/find.ts";
import {
  MANAGED_BY,
  MANAGED_BY_LABEL,
  MANAGER_NAME,
  type ManagerPod,
} from "../manager_identity/identity.ts";
import type { KubeClient } from "../k8s/client.ts";
import { VERSION } from "../version.ts";
import { getObject } from "./apply.ts";
import { type ManagerBundle, managerBundle } from "./bundle.ts";
import { installTrafficManager, templateBundle, templateVersion } from "./install.ts";
import { RESOURCES } from "./manifests.ts";

/** Options of {@linkcode ensureTrafficManager}. */
export interface EnsureManagerOptions {
  client: KubeClient;
  namespace: string;
  progress: Progress;
  /** Install when no manager is found. Default false (then ask on a terminal, see `confirm`). */
  install?: boolean;
  /** Upgrade a kconnect-installed manager of another version or code. Default true. */
  upgrade?: boolean;
  /** Image for an install or upgrade (default `denoland/deno:<Deno version>`). */
  image?: string;
  /**
   * Asks whether to install when none is found and `install` is false. Default: a yes/no
   * prompt when stdin and stdout are terminals, else no.
   */
  confirm?: (question: string) => Promise<boolean>;
  /** The bundle (default {@linkcode managerBundle}). */
  bundle?: () => Promise<ManagerBundle>;
  /** How long an install or upgrade waits for the pod. Default 180 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The default `confirm`: a prompt on a terminal, no otherwise. */
export function terminalConfirm(question: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) return Promise.resolve(false);
  return Promise.resolve(confirm(question));
}

/** Finds, installs or upgrades the traffic manager; see the module doc. */
export async function ensureTrafficManager(o: EnsureManagerOptions): Promise<ManagerPod> {
  const { client, namespace, progress } = o;
  const getBundle = o.bundle ?? managerBundle;
  let found: ManagerPod;
  const find = (prefer?: string) =>
    findTrafficManager(client, namespace, {
      warn: (m) => progress.warn(m),
      prefer,
      signal: o.signal,
    });
  try {
    found = await find();
  } catch (err) {
    if (!(err instanceof NoTrafficManagerError)) throw err;
    const ask = o.confirm ?? terminalConfirm;
    const yes = o.install ||
      await ask(`No traffic manager in namespace "${namespace}". Install it now?`);
    if (!yes) {
      throw new NoTrafficManagerError(
        `${err.message} To install it: kconnect install${
          namespace === "kconnect" ? "" : ` --manager-namespace ${namespace}`
        } (or kconnect up --install).`,
      );
    }
    progress.detail(`installing the traffic manager in namespace "${namespace}"`);
    const r = await installTrafficManager({
      client,
      namespace,
      progress,
      image: o.image,
      bundle: await getBundle(),
      timeoutMs: o.timeoutMs,
      signal: o.signal,
    });
    return await find(r.pod.name);
  }

  // Installed by kconnect? Only then is it ours to upgrade.
  let deploy = null;
  try {
    deploy = await getObject(client, RESOURCES.Deployment, MANAGER_NAME, namespace, o.signal);
  } catch {
    deploy = null; // may not read Deployments: treat it as someone else's manager
  }
  const ours = deploy !== null && deploy.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
  if (!ours) {
    if (found.version !== null && found.version !== VERSION) {
      progress.warn(
        `traffic manager ${namespace}/${found.name} is version ${found.version}, this client ` +
          `${VERSION}; it was not installed by kconnect install, so it is not upgraded`,
      );
    }
    return found;
  }
  const bundle = await getBundle();
  const liveVersion = templateVersion(deploy!);
  const liveBundle = templateBundle(deploy!);
  const podCurrent = found.version === VERSION;
  if (liveVersion === VERSION && liveBundle === bundle.sha256 && podCurrent) return found;
  const what = liveVersion !== VERSION || !podCurrent
    ? `version ${liveVersion ?? found.version ?? "unknown"}, this client ${VERSION}`
    : `same version ${VERSION}, different code (bundle sha256 ${
      (liveBundle ?? "none").slice(0, 12)
    }, this client's ${bundle.sha256.slice(0, 12)})`;
  if (o.upgrade === false) {
    progress.warn(
      `traffic manager differs from this client (${what}); not upgrading (--no-upgrade)`,
    );
    return found;
  }
  progress.warn(`traffic manager differs from this client (${what}): upgrading it`);
  const r = await installTrafficManager({
    client,
    namespace,
    progress,
    image: o.image,
    bundle,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
  });
  const pod = await find(r.pod.name);
  progress.done(
    "traffic manager upgraded",
    `${liveVersion ?? found.version ?? "unknown"} → ${VERSION}, now ${namespace}/${pod.name}`,
  );
  return pod;
}
