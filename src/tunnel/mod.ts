/**
 * The tunnel: a yamux stream multiplexer over one byte stream per transport (a Kubernetes
 * port-forward WebSocket), a typed open request on each stream, length-prefixed framing
 * helpers, a pool of sessions, and an in-memory pipe for tests. The multiplexer is a sans-IO
 * state machine (`SessionCore`, `StreamState`) under a small driver (`Session`, `Stream`) that
 * owns the transport and the `Clock`.
 *
 * @example
 * ```ts
 * import { memoryPipe, readOpenRequest, Session, writeOpenRequest } from "./mod.ts";
 * const [a, b] = memoryPipe();
 * await using client = new Session(a, { client: true });
 * await using server = new Session(b, { client: false });
 * const s = await client.open();
 * await writeOpenRequest(s, { kind: "dns" });
 * const t = (await server.accept())!;
 * if ((await readOpenRequest(t)).kind !== "dns") throw new Error("unexpected");
 * ```
 *
 * @module
 */
export * from "./clock.ts";
export * from "./config.ts";
export * from "./core.ts";
export * from "./decoder.ts";
export * from "./errors.ts";
export * from "./frame.ts";
export * from "./framing.ts";
export * from "./open.ts";
export * from "./open_request.ts";
export * from "./pipe.ts";
export * from "./pool.ts";
export * from "./session.ts";
export { Stream } from "./stream.ts";
export { StreamState, type StreamWaker } from "./stream_state.ts";
