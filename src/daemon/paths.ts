/**
 * Where the daemon listens, logs and keeps state, with the flags and environment variables that
 * move each (tests use the environment to keep everything in their own directories).
 *
 * | what            | flag          | environment         | default                        |
 * | --------------- | ------------- | ------------------- | ------------------------------ |
 * | control socket  | `--socket`    | `KCONNECT_SOCKET`   | `/run/kconnect/kconnect.sock` (Windows: the pipe `\\.\pipe\kconnect`) |
 * | log file        | `--log-file`  | `KCONNECT_LOG_FILE` | `/var/log/kconnect/daemon.log` |
 * | allowed group   | `--group`     | `KCONNECT_GROUP`    | none (see `access.ts`)         |
 * | state (journal) | `--state-dir` | `KCONNECT_STATE_DIR`| `/var/lib/kconnect`            |
 *
 * The socket's directory is the daemon's own: it holds the socket and the `auth/` directory of
 * the uid proof (see `auth.ts`); `access.ts` says who owns them and with which modes.
 *
 * @module
 */

import { windowsDataDir } from "../host/data_dir.ts";

/** The default control socket (Linux, macOS). */
export const DEFAULT_SOCKET = "/run/kconnect/kconnect.sock";
/** The default daemon log file (Linux, macOS). */
export const DEFAULT_LOG_FILE = "/var/log/kconnect/daemon.log";
/** The default control pipe on Windows (`windows_pipe.ts`). */
export const DEFAULT_PIPE = "\\\\.\\pipe\\kconnect";

/** The default control channel on this OS: the Unix socket, or the named pipe on Windows. */
export function defaultSocket(os: string = Deno.build.os): string {
  return os === "windows" ? DEFAULT_PIPE : DEFAULT_SOCKET;
}
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
  return flag ?? Deno.env.get("KCONNECT_SOCKET") ?? defaultSocket();
}

/** The daemon's log file: `flag`, else KCONNECT_LOG_FILE, else the default. */
export function logFilePath(flag?: string): string {
  return flag ?? Deno.env.get("KCONNECT_LOG_FILE") ??
    (Deno.build.os === "windows" ? `${windowsDataDir()}\\daemon.log` : DEFAULT_LOG_FILE);
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
