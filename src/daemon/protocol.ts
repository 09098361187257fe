/**
 * The daemon's control protocol: newline-delimited JSON over the Unix socket, one request per
 * connection.
 *
 * ```
 * daemon → client   {"type":"hello","v":1,"version":"0.1.0","pid":42,"nonce":"…","authDir":"/run/kconnect/auth"}
 *                   (the client creates <authDir>/<nonce>, see auth.ts)
 * client → daemon   {"v":1,"auth":"<nonce>","type":"status"}
 * daemon → client   {"type":"progress","event":{"kind":"done","name":"TUN","detail":"kconnect0 up"}}   (up only, 0..n)
 * daemon → client   {"type":"result","result":{…}}  or  {"type":"error","code":"…","message":"…"}
 * ```
 *
 * Every message carries `v` ({@linkcode PROTOCOL_VERSION}) or is answered by a daemon that
 * announced it in `hello`; a client that sees another version says which versions differ.
 * Lines are at most {@linkcode MAX_LINE} bytes. Requests are checked field by field by
 * {@linkcode parseRequest}, since the other side is another user's process: against an
 * allow-list, so an unknown key anywhere (the request, `flags`, `config`) is refused, and each
 * setting's value is checked as the config file's are.
 *
 * @module
 */
import {
  checkConfigObject,
  checkFlags,
  type ConfigFile,
  type UpSettings,
} from "../config/config.ts";
import type { StatusReport } from "./status.ts";

/** The protocol version both sides speak. */
export const PROTOCOL_VERSION = 1;

/** The longest line either side accepts: 1 MiB. */
export const MAX_LINE = 1 << 20;

/** The daemon's first line. */
export interface Hello {
  type: "hello";
  v: number;
  /** kconnect version of the daemon. */
  version: string;
  pid: number;
  /** The name of the file the client must create in `authDir` to prove its uid. */
  nonce: string;
  authDir: string;
  /** The daemon's log file (null: its stderr); absent from daemons before it was added. */
  logFile?: string | null;
}

interface RequestBase {
  v: number;
  /** The nonce from `hello`: the client has created `<authDir>/<nonce>`. */
  auth: string;
}

/** Connect (or switch) to a cluster. */
export interface UpRequest extends RequestBase {
  type: "up";
  /** Kubeconfig path list (absolute, `:`-separated), or null for the user's default. */
  kubeconfig: string | null;
  context: string | null;
  /** The client's environment: exec plugins run with it, as the user. */
  env: Record<string, string>;
  /** The client's working directory. */
  cwd: string;
  /** Disconnect a running session first instead of refusing. */
  switch: boolean;
  /** Settings given on the command line. */
  flags: Partial<UpSettings>;
  /** The user's config file, read and checked by the client. */
  config: ConfigFile | null;
}

/** Disconnect. */
export interface DownRequest extends RequestBase {
  type: "down";
}

/** Report the state. */
export interface StatusRequest extends RequestBase {
  type: "status";
}

/** Any request. */
export type Request = UpRequest | DownRequest | StatusRequest;

/** One step of `up`, as {@linkcode Progress} reports it. */
export type ProgressEvent =
  | { kind: "done"; name: string; detail: string }
  | { kind: "detail"; text: string }
  | { kind: "warn"; text: string };

/** What `up` answers. */
export interface UpResult {
  context: string;
  status: StatusReport;
}

/** What `down` answers. */
export interface DownResult {
  /** The context that was disconnected, or null when none was connected. */
  disconnected: string | null;
}

/** Why a request failed. */
export type ErrorCode =
  | "bad-request"
  | "unauthorized"
  | "forbidden"
  | "already-connected"
  | "not-connected"
  | "failed";

/** Anything the daemon sends after `hello`. */
export type Response =
  | { type: "progress"; event: ProgressEvent }
  | { type: "result"; result: unknown }
  | { type: "error"; code: ErrorCode; message: string };

const encoder = new TextEncoder();

/**
 * Encodes one message as a line.
 *
 * @example
 * ```ts
 * import { encodeLine } from "./protocol.ts";
 * new TextDecoder().decode(encodeLine({ type: "status" })); // '{"type":"status"}\n'
 * ```
 */
export function encodeLine(message: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/** Splits a byte stream into lines; refuses lines longer than `max`. */
export class LineReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #max: number;
  readonly #decoder = new TextDecoder();
  #buf = "";
  #done = false;

  /** Reads from `stream`. */
  constructor(stream: ReadableStream<Uint8Array>, max = MAX_LINE) {
    this.#reader = stream.getReader();
    this.#max = max;
  }

  /** The next line without its newline, or null at the end of the stream. */
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      if (this.#buf.length > this.#max) {
        throw new RangeError(`Control message longer than ${this.#max} bytes`);
      }
      if (this.#done) {
        const rest = this.#buf;
        this.#buf = "";
        return rest === "" ? null : rest;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      else this.#buf += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Stops reading. */
  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

function fail(message: string): never {
  throw new TypeError(`Bad request: ${message}`);
}

/** The keys each request type may have. */
const REQUEST_KEYS: Record<string, readonly string[]> = {
  status: ["v", "auth", "type"],
  down: ["v", "auth", "type"],
  up: ["v", "auth", "type", "kubeconfig", "context", "env", "cwd", "switch", "flags", "config"],
};

function strOrNull(o: Record<string, unknown>, k: string): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== "string") fail(`"${k}" must be a string`);
  return v;
}

/**
 * Parses a request line and checks it: its shape, no unknown keys, and each setting in `flags`
 * and `config` (the daemon checks the merged settings again with `checkSettings`).
 *
 * @throws {TypeError} saying what is wrong.
 *
 * @example
 * ```ts
 * import { parseRequest } from "./protocol.ts";
 * parseRequest('{"v":1,"auth":"ab","type":"status"}').type; // "status"
 * ```
 */
export function parseRequest(line: string): Request {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line);
  } catch {
    fail("not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) fail("not a JSON object");
  if (o.v !== PROTOCOL_VERSION) {
    fail(`protocol version ${JSON.stringify(o.v)}, this daemon speaks ${PROTOCOL_VERSION}`);
  }
  if (typeof o.auth !== "string") fail(`"auth" must be a string`);
  const known = REQUEST_KEYS[String(o.type)];
  if (known !== undefined) {
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) fail(`unknown key ${JSON.stringify(k)} in a ${o.type} request`);
    }
  }
  const base = { v: PROTOCOL_VERSION, auth: o.auth };
  switch (o.type) {
    case "status":
    case "down":
      return { ...base, type: o.type };
    case "up": {
      const env: Record<string, string> = {};
      if (typeof o.env !== "object" || o.env === null || Array.isArray(o.env)) {
        fail(`"env" must be an object`);
      }
      for (const [k, v] of Object.entries(o.env as object)) {
        if (typeof v !== "string") fail(`env.${k} must be a string`);
        env[k] = v;
      }
      if (typeof o.cwd !== "string") fail(`"cwd" must be a string`);
      if (typeof o.flags !== "object" || o.flags === null) fail(`"flags" must be an object`);
      if (o.config !== null && (typeof o.config !== "object" || Array.isArray(o.config))) {
        fail(`"config" must be an object or null`);
      }
      if (o.switch !== undefined && typeof o.switch !== "boolean") {
        fail(`"switch" must be true or false`);
      }
      let flags: Partial<UpSettings>;
      let config: ConfigFile | null;
      try {
        flags = checkFlags(o.flags);
        config = checkConfigObject(o.config);
      } catch (err) {
        fail((err as Error).message);
      }
      return {
        ...base,
        type: "up",
        kubeconfig: strOrNull(o, "kubeconfig"),
        context: strOrNull(o, "context"),
        env,
        cwd: o.cwd,
        switch: o.switch === true,
        flags,
        config,
      };
    }
    default:
      fail(`unknown request type ${JSON.stringify(o.type)}`);
  }
}
