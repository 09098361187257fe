/**
 * Running `kconnect credentials` as the Windows user who asked to connect: the counterpart of
 * `as_user.ts`'s setpriv path. The daemon (SYSTEM) holds the token the kernel gave for the
 * control pipe's client (`src/daemon/windows_pipe.ts`) and starts the child with it
 * (`src/host/windows_run_as.ts`: a primary token duplicated from it, `CreateProcessAsUserW`).
 *
 * As on Linux, the daemon never reads the user's kubeconfig or runs the user's exec plugin as
 * SYSTEM, and nothing the client sent shapes the process before it runs as the user: the
 * environment of the child is built here from the daemon's own (system folders, `PATHEXT`), and
 * the user's environment travels on stdin as JSON (`--env-stdin`), applied by the child. The
 * child starts in `%SystemRoot%\System32` and enters the client's directory itself (`--cwd`), as
 * the user. Output is read up to {@linkcode MAX_CHILD_OUTPUT} bytes per stream; the child has
 * 60 s.
 *
 * @module
 */
import { type CredentialMaterial, parseMaterial } from "./material.ts";
import { MAX_CHILD_OUTPUT } from "./as_user.ts";
import { runningFromSource, selfCommand } from "../host/self.ts";
import {
  openWindowsRunAs,
  runAsToken,
  type RunAsTokenOptions,
  type RunAsTokenResult,
} from "../host/windows_run_as.ts";

/** Who to run as, on Windows. */
export interface TokenRunAs {
  /** The client's token (the caller keeps and closes it). */
  token: Deno.PointerValue;
  /** The user's SID, for messages. */
  sid: string;
  /** The user's environment (applied by the child). */
  env: Record<string, string>;
  /** The client's working directory (entered by the child). */
  cwd: string;
}

/** Options of {@linkcode fetchMaterialAsToken}. */
export interface TokenFetchOptions {
  kubeconfig: string | null;
  context: string | null;
  /** Milliseconds before the child is terminated. Default 60 s. */
  timeoutMs?: number;
  /** The command that is kconnect (program first, absolute); default this process's. */
  command?: string[];
  /** The daemon's own environment (for the system folders); default this process's. */
  daemonEnv?: Record<string, string>;
  /** Runs the child with the token; default {@linkcode runAsToken} on the real libraries. */
  run: (token: Deno.PointerValue, o: RunAsTokenOptions) => Promise<RunAsTokenResult>;
}

/** Variables the child gets from the daemon's own environment, when set. */
const SYSTEM_VARIABLES = [
  "SystemRoot",
  "SystemDrive",
  "windir",
  "ProgramData",
  "ProgramFiles",
  "ProgramFiles(x86)",
  "CommonProgramFiles",
  "PATHEXT",
  "ComSpec",
  "NUMBER_OF_PROCESSORS",
  "PROCESSOR_ARCHITECTURE",
];

/**
 * The child's environment: the system variables of the daemon's environment, the user's
 * profile folders (`USERPROFILE`, `APPDATA`, `LOCALAPPDATA`, `HOME` when set: only where the
 * child looks for its cache before `--env-stdin` applies the rest), a fixed `PATH` of system
 * folders, and `DENO_DIR` when running from source.
 *
 * @example
 * ```ts
 * import { childEnvironment } from "./as_user_windows.ts";
 * const env = childEnvironment({ SystemRoot: "C:\\Windows", Secret: "x" }, { USERPROFILE: "C:\\Users\\me" });
 * env.PATH; // "C:\\Windows\\System32;C:\\Windows"
 * env.Secret; // undefined
 * ```
 */
export function childEnvironment(
  daemonEnv: Record<string, string>,
  userEnv: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of SYSTEM_VARIABLES) {
    const v = daemonEnv[name];
    if (v !== undefined) out[name] = v;
  }
  const root = daemonEnv.SystemRoot ?? "C:\\Windows";
  out.PATH = `${root}\\System32;${root}`;
  for (const name of ["USERPROFILE", "APPDATA", "LOCALAPPDATA", "HOME"]) {
    const v = userEnv[name];
    if (v !== undefined && /^[A-Za-z]:\\/.test(v) && !v.includes("\0")) out[name] = v;
  }
  out.DENO_NO_UPDATE_CHECK = "1";
  if (daemonEnv.DENO_DIR) out.DENO_DIR = daemonEnv.DENO_DIR;
  return out;
}

/**
 * Runs `kconnect credentials --json --env-stdin` as `who` and returns what it printed.
 *
 * @throws {Error} naming the user when the child fails, prints too much, or times out.
 */
export async function fetchMaterialAsToken(
  who: TokenRunAs,
  o: TokenFetchOptions,
): Promise<CredentialMaterial> {
  const daemonEnv = o.daemonEnv ?? Deno.env.toObject();
  const [program, ...pre] = o.command ?? selfCommand();
  const root = daemonEnv.SystemRoot ?? "C:\\Windows";
  const env = childEnvironment(daemonEnv, who.env);
  if (o.command === undefined && runningFromSource() && !env.DENO_DIR && who.env.LOCALAPPDATA) {
    env.DENO_DIR = `${who.env.LOCALAPPDATA}\\deno`;
  }
  let result: RunAsTokenResult;
  try {
    result = await o.run(who.token, {
      program,
      args: [
        ...pre,
        "credentials",
        "--json",
        "--env-stdin",
        "--cwd",
        who.cwd,
        ...(o.kubeconfig ? ["--kubeconfig", o.kubeconfig] : []),
        ...(o.context ? ["--context", o.context] : []),
      ],
      env,
      cwd: `${root}\\System32`,
      stdin: new TextEncoder().encode(JSON.stringify(who.env)),
      maxOutput: MAX_CHILD_OUTPUT,
      timeoutMs: o.timeoutMs ?? 60_000,
    });
  } catch (err) {
    throw new Error(`Cannot get credentials as ${who.sid}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const stdout = new TextDecoder().decode(result.stdout).trim();
  const stderr = new TextDecoder().decode(result.stderr).trim();
  if (result.code !== 0) {
    const why = stderr.replace(/^kconnect: /gm, "") || `exit status ${result.code}`;
    throw new Error(`Cannot get credentials as ${who.sid}: ${why}`);
  }
  return parseMaterial(stdout.split(/\r?\n/).pop() ?? "");
}

/** {@linkcode TokenFetchOptions.run} on the real libraries, opened on first use (Windows only). */
export function realTokenRunner(): TokenFetchOptions["run"] {
  let lib: ReturnType<typeof openWindowsRunAs> | null = null;
  return (token, o) => {
    lib ??= openWindowsRunAs();
    return runAsToken(lib, token, o);
  };
}
