/**
 * Where the daemon listens, logs and keeps state, with the flags and environment variables that
 * move each (tests use the environment to keep everything in their own directories).
 *
 * | what            | flag          | environment         | default                        |
 * | --------------- | ------------- | ------------------- | ------------------------------ |
 * | control socket  | `--socket`    | `KCONNECT_SOCKET`   | `/run/kconnect/kconnect.sock`  |
 * | log file        | `--log-file`  | `KCONNECT_LOG_FILE` | `/var/log/kconnect/daemon.log` |
 * | allowed group   | `--group`     | `KCONNECT_GROUP`    | none (see `access.ts`)         |
 * | state (journal) | `--state-dir` | `KCONNECT_STATE_DIR`| `/var/lib/kconnect`            |
 *
 * The socket's directory is the daemon's own: it holds the socket and the `auth/` directory of
 * the uid proof (see `auth.ts`); `access.ts` says who owns them and with which modes.
 *
 * @module
 */

/** The default control socket. */
export const DEFAULT_SOCKET = "/run/kconnect/kconnect.sock";
/** The default daemon log file. */
export const DEFAULT_LOG_FILE = "/var/log/kconnect/daemon.log";
/** The group `kconnect service install` creates and runs the daemon with. */
export const SERVICE_GROUP = "kconnect";

/**
 * The control socket path: `flag`, else KCONNECT_SOCKET, else the default.
 *
 * @example
 * ```ts
 * import { socketPath } from "./paths.ts";
 * socketPath("/tmp/k.sock"); // "/tmp/k.sock"
 * ```
 */
export function socketPath(flag?: string): string {
  return flag ?? Deno.env.get("KCONNECT_SOCKET") ?? DEFAULT_SOCKET;
}

/** The daemon's log file: `flag`, else KCONNECT_LOG_FILE, else the default. */
export function logFilePath(flag?: string): string {
  return flag ?? Deno.env.get("KCONNECT_LOG_FILE") ?? DEFAULT_LOG_FILE;
}

/** The directory holding the socket. */
export function runDirOf(socket: string): string {
  const i = socket.lastIndexOf("/");
  return i <= 0 ? "/" : socket.slice(0, i);
}

/** The sticky directory where clients prove their uid. */
export function authDirOf(socket: string): string {
  return `${runDirOf(socket)}/auth`;
}
