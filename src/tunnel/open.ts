/**
 * Writing and reading the open request and reply on a stream. Reads are byte-exact (header,
 * then body), so nothing after the request or reply is consumed.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { ProtocolError } from "./errors.ts";
import { writeAll } from "./length_prefixed.ts";
import {
  decodeOpenReply,
  decodeOpenRequest,
  encodeOpenReply,
  encodeOpenRequest,
  OPEN_HEADER_LENGTH,
  openBodyLength,
  type OpenReply,
  type OpenRequest,
} from "./open_request.ts";

async function _readExact(s: Conn, buf: Uint8Array, what: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await s.read(buf.subarray(off));
    if (n === null) {
      throw new ProtocolError(`${what}: stream ended after ${off} of ${buf.length} bytes`);
    }
    off += n;
  }
}

async function _readMessage(s: Conn, what: string): Promise<Uint8Array> {
  const head = new Uint8Array(OPEN_HEADER_LENGTH);
  await _readExact(s, head, what);
  const len = openBodyLength(head)!;
  const all = new Uint8Array(OPEN_HEADER_LENGTH + len);
  all.set(head);
  await _readExact(s, all.subarray(OPEN_HEADER_LENGTH), what);
  return all;
}

/**
 * Writes an open request on a freshly opened stream.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { readOpenRequest, writeOpenRequest } from "./open.ts";
 * const [a, b] = memoryPipe();
 * await writeOpenRequest(a, { kind: "udp", host: "10.96.0.10", port: 53 });
 * const r = await readOpenRequest(b);
 * if (r.kind !== "udp" || r.port !== 53) throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export async function writeOpenRequest(s: Conn, r: OpenRequest): Promise<void> {
  await writeAll(s, encodeOpenRequest(r));
}

/**
 * Reads exactly one open request. Throws {@linkcode ProtocolError} when the stream ends early
 * or the request is malformed.
 */
export async function readOpenRequest(s: Conn): Promise<OpenRequest> {
  const bytes = await _readMessage(s, "read open request");
  return decodeOpenRequest(bytes)!.request;
}

/**
 * Writes the reply to an open request.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { readOpenReply, writeOpenReply } from "./open.ts";
 * const [a, b] = memoryPipe();
 * await writeOpenReply(a, { status: "ok" });
 * if ((await readOpenReply(b)).status !== "ok") throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export async function writeOpenReply(s: Conn, r: OpenReply): Promise<void> {
  await writeAll(s, encodeOpenReply(r));
}

/**
 * Reads exactly one open reply. Throws {@linkcode ProtocolError} when the stream ends early or
 * the reply is malformed.
 */
export async function readOpenReply(s: Conn): Promise<OpenReply> {
  const bytes = await _readMessage(s, "read open reply");
  return decodeOpenReply(bytes)!.reply;
}
