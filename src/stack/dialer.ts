/**
 * What the flow engine hands each new flow to. The engine terminates TCP and UDP from local
 * programs; a `Dialer` decides where each flow really goes (a test map of local servers, the
 * tunnel to the traffic manager, …).
 *
 * @module
 */

/** A transport endpoint: textual IPv4/IPv6 address and port. */
export interface Endpoint {
  address: string;
  port: number;
}

/** Why a dial failed; each maps to what the local program sees. */
export type DialFailure =
  /** Nothing listens there: the program gets a TCP RST (ECONNREFUSED). */
  | "refused"
  /** No route or host down: the program gets ICMP unreachable (EHOSTUNREACH). */
  | "unreachable"
  /** No answer: the program's own connect timeout runs out. */
  | "timeout"
  /** Policy says no: answered like `unreachable` with ICMP "administratively prohibited". */
  | "forbidden";

/** A failed dial, with the reason the far side gave. */
export class DialError extends Error {
  /** The reason, which decides how the local program is told. */
  readonly reason: DialFailure;
  constructor(reason: DialFailure, message?: string) {
    super(message ?? `dial failed: ${reason}`);
    this.name = "DialError";
    this.reason = reason;
  }
}

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

/** A UDP association to one far endpoint. */
export interface DatagramFlow {
  /** Sends one datagram payload to the far endpoint. Never waits; may drop under load. */
  send(payload: Uint8Array): void;
  /** Ends the association. */
  close(): void;
}

/** Options for {@linkcode Dialer.dialTcp}. */
export interface DialOptions {
  /** Aborted when the local program gave up (or the engine is closing). */
  signal: AbortSignal;
  /** Connect timeout, ms; the dialer's own default when omitted. */
  timeoutMs?: number;
}

/** Options for {@linkcode Dialer.openUdp}. */
export interface UdpOptions {
  /** Called with each reply datagram payload from the far endpoint. */
  onDatagram: (payload: Uint8Array) => void;
  /** Aborted when the flow expires or the engine is closing. */
  signal: AbortSignal;
  /** Called when the far side ended the association (its transport died): forget it. */
  onClose?: () => void;
}

/** Where flows go. */
export interface Dialer {
  /** Connects to `dst`. Rejects with {@linkcode DialError} when the far side says no. */
  dialTcp(dst: Endpoint, options: DialOptions): Promise<Conn>;
  /** Opens a UDP association to `dst`. Rejects with {@linkcode DialError}. */
  openUdp(dst: Endpoint, options: UdpOptions): Promise<DatagramFlow>;
}
