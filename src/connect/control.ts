/**
 * The client end of the control stream: the traffic manager's session info, first and on every
 * change.
 *
 * @module
 */
import type { SessionInfo } from "../manager/session_info.ts";
import { FrameReader } from "../tunnel/framing.ts";
import { encodeOpenRequest } from "../tunnel/open_request.ts";
import type { StreamOpener } from "../dial/tunnel.ts";

/** An open control stream. */
export interface Control {
  /** The first session info. */
  info: SessionInfo;
  /** Resolves when the stream ends (the session went away). */
  done: Promise<void>;
  close(): void;
}

function parseInfo(bytes: Uint8Array): SessionInfo {
  const v = JSON.parse(new TextDecoder().decode(bytes));
  if (v?.type !== "info" || !Array.isArray(v.serviceCidrs) || !Array.isArray(v.podCidrs)) {
    throw new TypeError("the traffic manager sent session info kconnect does not understand");
  }
  return v as SessionInfo;
}

/** Opens the control stream and waits for the first info; `onUpdate` gets later ones. */
export async function openControl(
  opener: StreamOpener,
  onUpdate: (info: SessionInfo) => void,
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
