/**
 * Where the daemon listens, logs and keeps state, with the flags and environment variables that
 * move each (tests use the environment to keep everything in their own directories).
 *
 * | what            | flag          | environment         | default                        |
 * | --------------- | ------------- | ------------------- | ------------------------------ |
 * | control socket  | `--socket`    | `KCONNECT_SOCKET`   | `/run/kconnect/kconnect.sock`  |
 * | log file        | `--log-file`  | `KCONNECT_LOG_FILE` | `/var/log/kconnect/daemon.log` |
 * | allowed group   | `--group`     | `KCONNECT_GROUP`    | `kconnect`                     |
 * | state (journal) | `--state-dir` | `KCONNECT_STATE_DIR`| `/var/lib/kconnect`            |
 *
 * The socket's directory is the daemon's own: it is made `0750 root:<group>` and holds the
 * socket and the `auth/` directory of the uid proof (see `auth.ts`).
 *
 * @module
 */

/** The default control socket. */
export const DEFAULT_SOCKET = "/run/kconnect/kconnect.sock";
/** The default daemon log file. */
export const DEFAULT_LOG_FILE = "/var/log/kconnect/daemon.log";
/** The default group whose members may use the daemon. */
export const DEFAULT_GROUP = "kconnect";

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

/** The allowed group (name or gid): `flag`, else KCONNECT_GROUP, else `kconnect`. */
export function groupName(flag?: string): string {
  return flag ?? Deno.env.get("KCONNECT_GROUP") ?? DEFAULT_GROUP;
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

/**
 * Resolves a group name or numeric gid to a gid, through `getent group` (so NSS groups count).
 *
 * @throws {Error} when the group does not exist.
 */
export async function resolveGid(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const out = await new Deno.Command("getent", {
    args: ["group", group],
    stdout: "piped",
    stderr: "null",
  })
    .output().catch(() => null);
  const line = out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  const gid = Number(line.split(":")[2]);
  if (!line || !Number.isInteger(gid)) {
    throw new Error(
      `Group "${group}" does not exist: create it (sudo kconnect service install does), or pass --group with another group or a gid`,
    );
  }
  return gid;
}
