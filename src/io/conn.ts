/**
 * The byte-stream contract every layer above speaks: a TCP connection, a port-forward
 * WebSocket, a tunnel stream and an in-memory pipe are each a {@linkcode Conn}.
 *
 * @module
 */

/**
 * A byte stream to the far end, shaped like `Deno.Conn` so a `Deno.TcpConn` is one as it is.
 * Reads and writes are pull-based: a writer that awaits `write` gets backpressure.
 */
export interface Conn {
  /** Reads into `p`; resolves with the byte count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Optional, for a connection that already holds what arrived in buffers of its own (a
   * WebSocket's messages, a tunnel stream's frames): resolves with the next bytes, at most
   * `max`, in a buffer the caller now owns (the connection never touches it again), or null at
   * end of stream. Saves the copy into the caller's buffer that `read` makes. Do not mix with
   * `read` on the same connection while a call is pending.
   */
  readChunk?(max: number): Promise<Uint8Array | null>;
  /** Writes some of `p`; resolves with how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Half-close: no more writes; the far end reads end of stream. */
  closeWrite(): Promise<void>;
  /** Closes both directions; pending reads end. */
  close(): void;
  /**
   * Optional, for a transport that puts a header in front of every message (a port-forward
   * WebSocket's channel byte): how many bytes it needs in front of the payload. A writer that can
   * leave that much room calls {@linkcode Conn.writeWithHeadroom} instead of `write`, and the
   * transport sends without copying the payload into a new buffer.
   */
  readonly writeHeadroom?: number;
  /**
   * Optional, with {@linkcode Conn.writeHeadroom}: writes `buf.subarray(writeHeadroom)`; the
   * first `writeHeadroom` bytes of `buf` are the transport's to overwrite. Resolves with how many
   * payload bytes (not counting the headroom) were taken. Like `write`, keeps no reference to
   * `buf` once resolved.
   */
  writeWithHeadroom?(buf: Uint8Array): Promise<number>;
}
