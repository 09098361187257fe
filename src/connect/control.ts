/**
 * The client end of the control stream: the traffic manager's cluster info, first and on every
 * change. The manager is not trusted: each info is checked here, at the boundary
 * ({@linkcode parseInfo}), and what is invalid is left out and listed in `refused`.
 *
 * @module
 */
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import { checkInfo, quote, type TrustPolicy } from "../trust/trust.ts";
import { FrameReader } from "../tunnel/length_prefixed.ts";
import { encodeOpenRequest } from "../tunnel/open_request.ts";
import type { StreamOpener } from "../dial/tunnel.ts";

/** An open control stream. */
export interface Control {
  /** The first cluster info. */
  info: ClusterInfo;
  /** Resolves when the stream ends (the session went away). */
  done: Promise<void>;
  close(): void;
}

/**
 * Parses one cluster info and checks every entry (see `src/trust/`): a cluster domain that is not
 * a DNS name is replaced, namespaces that are not DNS labels and prefixes that do not parse are
 * dropped, text is cleaned; each is listed in `refused` with the reason. With `policy` the
 * domain and prefix policy applies too (the session applies it with the user's settings).
 *
 * @throws {TypeError} when it is not cluster info at all; {@linkcode Error} with the manager's
 *   reason when it refused the session.
 */
export function parseInfo(bytes: Uint8Array, policy?: TrustPolicy): ClusterInfo {
  let v;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    v = null;
  }
  if (typeof v === "object" && v !== null && v.type === "error" && typeof v.message === "string") {
    // The manager refused this session (e.g. its session budget is full): say why.
    throw new Error(`the traffic manager refused the session: ${quote(v.message, 300)}`);
  }
  if (
    typeof v !== "object" || v === null || v.type !== "info" || !Array.isArray(v.serviceCidrs) ||
    !Array.isArray(v.podCidrs)
  ) {
    throw new TypeError("the traffic manager sent session info kconnect does not understand");
  }
  const { info, refused } = checkInfo(v as ClusterInfo, policy);
  return { ...info, refused };
}

/** Opens the control stream and waits for the first info; `onUpdate` gets later ones. */
export async function openControl(
  opener: StreamOpener,
  onUpdate: (info: ClusterInfo) => void,
  signal?: AbortSignal,
): Promise<Control> {
  const stream = await opener.open({ signal, initial: encodeOpenRequest({ kind: "control" }) });
  try {
    const reader = new FrameReader(stream);
    const first = await reader.readU32Frame(1 << 20);
    if (first === null) throw new Error("the traffic manager closed the control stream at once");
    const info = parseInfo(first);
    const done = (async () => {
      try {
        for (;;) {
          const next = await reader.readU32Frame(1 << 20);
          if (next === null) return;
          onUpdate(parseInfo(next));
        }
      } catch { /* the session ended */ }
    })();
    return { info, done, close: () => stream.close() };
  } catch (err) {
    stream.reset();
    throw err;
  }
}
