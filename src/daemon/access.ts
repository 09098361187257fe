/**
 * Who may use the kconnect daemon, and how its socket is opened to them.
 *
 * Two modes, chosen when the daemon starts:
 *
 * - **A group** (`--group NAME|GID`, `KCONNECT_GROUP`, or `"group"` in the config file of the user
 *   whose `sudo kconnect up` starts the daemon; `kconnect service install` uses `kconnect`): the
 *   socket's directory is `0750 root:<group>` and the socket `0660`, so the kernel lets only
 *   root and the group's members connect; the daemon serves whoever got through.
 * - **No group** (the default of `sudo kconnect up`): root and the uids the daemon was started
 *   with (`--allow-uid`; `up` passes the `SUDO_UID` of its own root process, i.e. the user who
 *   ran sudo — never a value an unprivileged client sent). The directory is `0711`, the auth
 *   directory `1733` and the socket `0666`, so any local user can connect and prove its uid
 *   (`auth.ts`); the daemon then refuses everyone else with a message that says how to grant
 *   access ({@linkcode decideAccess}). This is how tailscaled's operator works, with the uid
 *   proven by the auth file instead of `SO_PEERCRED`.
 *
 * A group that is named but does not exist is an error ({@linkcode resolveGroup}) that says how
 * to fix it, raised before anything starts.
 *
 * @module
 */
import { sudoUid } from "../host/sudo.ts";

/** The group a daemon was told to use, and where that came from (for messages). */
export interface NamedGroup {
  /** A group name or a numeric gid, as given. */
  group: string;
  /** Where it was named: `--group`, `KCONNECT_GROUP`, `config file <path>`. */
  from: string;
}

/** Who may use a running daemon. */
export interface AccessPolicy {
  /** The group whose members may connect (the kernel checks membership), or null for none. */
  gid: number | null;
  /** The group as named, for messages (`kconnect`, `4242`); null without a group. */
  group: string | null;
  /** Non-root uids allowed when there is no group. */
  uids: readonly number[];
  /**
   * Windows: the SIDs of the allowed groups (the named pipe's DACL lets them in besides SYSTEM
   * and Administrators); empty or absent for SYSTEM and Administrators only.
   */
  sids?: readonly string[];
}

/** What {@linkcode decideAccess} says about one client. */
export type AccessDecision = { allowed: true } | { allowed: false; message: string };

/** Owners and modes of the daemon's directory, auth directory and socket under a policy. */
export interface SocketModes {
  /** Group owner of all three. */
  gid: number;
  runDir: number;
  authDir: number;
  socket: number;
}

/**
 * The group a daemon uses: `flag`, else `env` (KCONNECT_GROUP), else the config file's
 * `group`; null when none is named (an empty value counts as none).
 *
 * @example
 * ```ts
 * import { chooseGroup } from "./access.ts";
 * chooseGroup(undefined, "devs"); // { group: "devs", from: "KCONNECT_GROUP" }
 * chooseGroup(undefined, undefined); // null
 * ```
 */
export function chooseGroup(
  flag: string | undefined,
  env: string | undefined,
  config?: { group?: string; path: string } | null,
): NamedGroup | null {
  if (flag) return { group: flag, from: "--group" };
  if (env) return { group: env, from: "KCONNECT_GROUP" };
  if (config?.group) return { group: config.group, from: `config file ${config.path}` };
  return null;
}

/** Looks a group name up in the system's group database; its gid, or null when unknown. */
export type GroupLookup = (name: string) => Promise<number | null>;

/** {@linkcode GroupLookup} through `getent group` (so NSS groups count). */
export async function getentGroup(name: string): Promise<number | null> {
  const out = await new Deno.Command("getent", {
    args: ["group", name],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  const line = out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  const gid = Number(line.split(":")[2]);
  return line && Number.isInteger(gid) ? gid : null;
}

/**
 * Resolves a named group to its gid. A numeric gid is taken as it is (it needs no entry in the
 * group database).
 *
 * @throws {Error} when the group does not exist, saying where it was named and how to fix it.
 *
 * @example
 * ```ts
 * import { resolveGroup } from "./access.ts";
 * await resolveGroup({ group: "4242", from: "--group" }); // 4242
 * ```
 */
export async function resolveGroup(
  named: NamedGroup,
  lookup: GroupLookup = getentGroup,
): Promise<number> {
  if (/^\d+$/.test(named.group)) return Number(named.group);
  const gid = await lookup(named.group);
  if (gid !== null) return gid;
  const g = named.group;
  throw new Error(
    `Group "${g}" (from ${named.from}) does not exist. Create it (sudo groupadd ${g}, then sudo usermod -aG ${g} <user> for each user), ` +
      `or let sudo kconnect service install --group ${g} create it (it adds you), ` +
      `or name no group: then root and the user who ran sudo may use the daemon`,
  );
}

/**
 * Checks a `--allow-uid` value.
 *
 * @throws {RangeError} when it is not a non-root uid.
 */
export function parseUid(text: string): number {
  const uid = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(uid > 0 && uid < 2 ** 32 - 1)) {
    throw new RangeError(`Invalid --allow-uid "${text}": expected a uid above 0`);
  }
  return uid;
}

/** Who a policy lets in, in words: `root and members of group "kconnect"`, `root and uid 1000`. */
export function describeAccess(p: AccessPolicy): string {
  if (p.sids !== undefined) {
    return p.sids.length === 0
      ? "SYSTEM and Administrators (elevated)"
      : `SYSTEM, Administrators (elevated) and members of group "${p.group ?? p.sids.join(", ")}"`;
  }
  if (p.gid !== null) return `root and members of group "${p.group ?? p.gid}"`;
  if (p.uids.length === 0) return "root only";
  return `root and uid ${p.uids.join(", ")}`;
}

/**
 * Whether the client with `uid` may use the daemon. With a group, the kernel already let only
 * root and members connect, so whoever proved a uid is in; without one, only root and the
 * policy's uids are, and the refusal says how to grant access.
 *
 * @example
 * ```ts
 * import { decideAccess } from "./access.ts";
 * const p = { gid: null, group: null, uids: [1000] };
 * decideAccess(p, 1000).allowed; // true
 * decideAccess(p, 1001).allowed; // false
 * ```
 */
export function decideAccess(policy: AccessPolicy, uid: number): AccessDecision {
  if (uid === 0 || policy.gid !== null || policy.uids.includes(uid)) return { allowed: true };
  const who = policy.uids.length === 0
    ? "lets in only root"
    : `lets in only root and uid ${policy.uids.join(", ")} (who ran sudo)`;
  return {
    allowed: false,
    message: `uid ${uid} may not use this kconnect daemon: it runs with no group and ${who}. ` +
      `To let other users in, either install the service once: sudo kconnect service install ` +
      `(a daemon for the group "kconnect": it creates the group and adds the user who runs it; ` +
      `add others with sudo usermod -aG kconnect <user>), ` +
      `or start the daemon for a group: sudo kconnect up --group <group> ` +
      `(or KCONNECT_GROUP, or "group" in the config file). Or use sudo`,
  };
}

/**
 * Owners and modes for a policy: `0750`/`1730`/`0660` with the group's gid; without a group,
 * `0711`/`1733`/`0666` owned by root (the daemon decides who is in).
 *
 * @example
 * ```ts
 * import { socketModes } from "./access.ts";
 * socketModes({ gid: 4242, group: "4242", uids: [] }).socket.toString(8); // "660"
 * ```
 */
export function socketModes(p: AccessPolicy): SocketModes {
  return p.gid !== null
    ? { gid: p.gid, runDir: 0o750, authDir: 0o1730, socket: 0o660 }
    : { gid: 0, runDir: 0o711, authDir: 0o1733, socket: 0o666 };
}

/**
 * The policy of a daemon started with `--group` (`group`) and `--allow-uid` (`allowUids`) by a
 * root process with environment `env`: the group named by the flag or `KCONNECT_GROUP`, resolved;
 * else root and `allowUids`, by default the `SUDO_UID` of `env`.
 *
 * @throws {RangeError} for uids with a group, or a bad uid (usage errors).
 * @throws {Error} when a named group does not exist ({@linkcode resolveGroup}).
 *
 * @example
 * ```ts
 * import { accessPolicy } from "./access.ts";
 * await accessPolicy({}, { SUDO_UID: "1000" }); // { gid: null, group: null, uids: [1000] }
 * ```
 */
export async function accessPolicy(
  o: { group?: string; allowUids?: string[] },
  env: Record<string, string | undefined>,
  lookup: GroupLookup = getentGroup,
): Promise<AccessPolicy> {
  const named = chooseGroup(o.group, env.KCONNECT_GROUP);
  if (named !== null) {
    if (o.allowUids?.length) {
      throw new RangeError(
        `--allow-uid applies only to a daemon with no group, and ${named.from} names group "${named.group}": add the user to that group instead`,
      );
    }
    return { gid: await resolveGroup(named, lookup), group: named.group, uids: [] };
  }
  const sudo = sudoUid(env);
  const uids = o.allowUids !== undefined ? o.allowUids.map(parseUid) : sudo !== null ? [sudo] : [];
  return { gid: null, group: null, uids: [...new Set(uids)] };
}

/** LocalSystem's SID. */
const SID_SYSTEM = "S-1-5-18";
/** BUILTIN\\Administrators. */
const SID_ADMINISTRATORS = "S-1-5-32-544";

/**
 * Whether a Windows client may use the daemon: SYSTEM, an elevated administrator (the token's
 * Administrators group is enabled; a UAC-filtered token has it deny-only, which the caller has
 * already dropped), or a member of an allowed group. The pipe's DACL already kept everyone else
 * out; this is the same decision made again on the token the kernel gave, so a DACL mistake
 * cannot let anyone in.
 *
 * @example
 * ```ts
 * import { decideWindowsAccess } from "./access.ts";
 * const p = { gid: null, group: "kconnect", uids: [], sids: ["S-1-5-21-1-2-3-1010"] };
 * decideWindowsAccess(p, { sid: "S-1-5-21-1-2-3-1001", groups: ["S-1-5-21-1-2-3-1010"] }).allowed; // true
 * decideWindowsAccess(p, { sid: "S-1-5-21-1-2-3-1002", groups: [] }).allowed; // false
 * ```
 */
export function decideWindowsAccess(
  policy: AccessPolicy,
  peer: { sid: string; groups: readonly string[] },
): AccessDecision {
  if (peer.sid === SID_SYSTEM || peer.groups.includes(SID_ADMINISTRATORS)) return { allowed: true };
  if ((policy.sids ?? []).some((g) => peer.groups.includes(g))) return { allowed: true };
  const group = policy.group ?? SERVICE_GROUP_NAME;
  return {
    allowed: false,
    message:
      `${peer.sid} may not use this kconnect daemon: it lets in only ${
        describeAccess(policy)
      }. An administrator can add the user: net localgroup ${group} <user> /add (then sign out and in again), ` +
      `or run kconnect from a terminal opened as administrator`,
  };
}

const SERVICE_GROUP_NAME = "kconnect";

/** Looks a Windows account name up; its SID, or null when there is none. */
export type SidLookup = (name: string) => string | null;

/**
 * The policy of a Windows daemon: the group named by `--group` or `KCONNECT_GROUP` (a name, or a
 * SID as `S-1-…`), resolved to its SID; with none, SYSTEM and elevated Administrators only.
 *
 * @throws {RangeError} for `--allow-uid`, which has no meaning on Windows.
 * @throws {Error} when the named group does not exist, saying how to create it.
 *
 * @example
 * ```ts
 * import { windowsAccessPolicy } from "./access.ts";
 * windowsAccessPolicy({ group: "kconnect" }, {}, () => "S-1-5-21-1-2-3-1010").sids; // ["S-1-5-21-1-2-3-1010"]
 * ```
 */
export function windowsAccessPolicy(
  o: { group?: string; allowUids?: string[] },
  env: Record<string, string | undefined>,
  lookup: SidLookup,
): AccessPolicy {
  if (o.allowUids?.length) {
    throw new RangeError("--allow-uid has no meaning on Windows: use --group <local group>");
  }
  const named = chooseGroup(o.group, env.KCONNECT_GROUP);
  if (named === null) return { gid: null, group: null, uids: [], sids: [] };
  const sid = /^S-1-\d+(-\d+)+$/.test(named.group) ? named.group : lookup(named.group);
  if (sid === null) {
    throw new Error(
      `Group "${named.group}" (from ${named.from}) does not exist. Create it in a terminal opened as administrator: ` +
        `net localgroup ${named.group} /add, then net localgroup ${named.group} <user> /add for each user ` +
        `(kconnect service install does both), or name no group: then only SYSTEM and administrators may use the daemon`,
    );
  }
  return { gid: null, group: named.group, uids: [], sids: [sid] };
}
