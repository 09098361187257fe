/**
 * What the flow engine hands each new flow to. The engine terminates TCP and UDP from local
 * programs; a `Dialer` decides where each flow really goes (a test map of local servers, the
 * tunnel to the traffic manager, …). The traffic manager dials through one too.
 *
 * @module
 */
import type { Conn } from "./conn.ts";

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
