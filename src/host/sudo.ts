/**
 * Who ran sudo: the one fact about sudo that kconnect takes from a root process's environment.
 *
 * @module
 */

/**
 * The uid of the user who ran sudo, from the environment of a root process (`SUDO_UID`); null
 * when there is none, it is root, or it is not a uid. Only a root process's own environment
 * may be asked: a client's claim proves nothing.
 *
 * @example
 * ```ts
 * import { sudoUid } from "./sudo.ts";
 * sudoUid({ SUDO_UID: "1000" }); // 1000
 * sudoUid({ SUDO_UID: "0" }); // null
 * ```
 */
export function sudoUid(env: Record<string, string | undefined>): number | null {
  const v = env.SUDO_UID;
  if (v === undefined || !/^\d{1,10}$/.test(v)) return null;
  const uid = Number(v);
  return uid > 0 && uid < 2 ** 32 - 1 ? uid : null;
}
