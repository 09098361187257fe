/**
 * `kconnect gather-logs [-o file]`: one `.tar.gz` with what a bug report needs — the daemon's
 * log files, `status --json`, the journal and pid file, `ip route` / `ip -6 route`, `ip addr`,
 * `/etc/resolv.conf` and `resolvectl status`, and versions — with tokens, keys and certificates
 * redacted ({@linkcode redact}). The archive is made by the system's `tar` (`tar -czf`), from a
 * temporary directory that is removed afterwards.
 *
 * @module
 */
import type { Command } from "commander";
import { stateDir } from "../journal/journal.ts";
import { logFilePath, socketPath } from "../daemon/paths.ts";
import { statusReport } from "./status.ts";
import { versionReport } from "./version.ts";
import { printLine } from "../cmdline/output.ts";

interface GatherOptions {
  output?: string;
  socket?: string;
  stateDir?: string;
  logFile?: string;
}

/** Key names whose values are secrets, wherever the word sits (`GITHUB_TOKEN`, `X-Api-Key`). */
const SECRET_KEY =
  "[-\\w.]*(?:token|secret|passw(?:or)?d|key|credential|auth|cookie|pem|[-_]data)[-\\w.]*";

/**
 * Removes secrets from text: bearer tokens, PEM blocks (keys and certificates), JWTs, well-known
 * token formats (EKS `k8s-aws-v1.…`, GCP `ya29.…`, GitHub, GitLab, Slack, Kubernetes bootstrap
 * tokens, AWS access key ids), and the value of every key whose name contains token, secret,
 * password, key, credential, auth, cookie, pem or -data, in JSON (`"GITHUB_TOKEN": "…"`), YAML and
 * INI (`aws_secret_access_key = …`), headers (`X-Api-Key: …`) and `NAME=value` pairs.
 *
 * @example
 * ```ts
 * import { redact } from "./gather_logs.ts";
 * redact("Authorization: Bearer abc.def"); // "Authorization: Bearer [REDACTED]"
 * redact('{"token":"s3cret"}'); // '{"token":"[REDACTED]"}'
 * ```
 */
export function redact(text: string): string {
  return text
    .replace(
      /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g,
      "-----BEGIN $1-----[REDACTED]-----END $1-----",
    )
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, "$1 [REDACTED]")
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, "[REDACTED-JWT]")
    .replace(
      /\b(?:k8s-aws-v1\.[A-Za-z0-9_-]+|ya29\.[A-Za-z0-9_.-]+|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}|xox[abposr]-[\w-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|[a-z0-9]{6}\.[a-z0-9]{16})\b/g,
      "[REDACTED]",
    )
    // JSON: "…key…": "value" (or a bare number or word).
    .replace(
      new RegExp(
        `("${SECRET_KEY}"\\s*:\\s*)(?:"(?:[^"\\\\]|\\\\.)*"|(?!(?:null|true|false)\\b)[\\w.+-]+)`,
        "gi",
      ),
      '$1"[REDACTED]"',
    )
    // YAML, INI and headers at the start of a line: key: value, key = value.
    .replace(
      new RegExp(
        `^(\\s*(?:- )?${SECRET_KEY}\\s*[:=]\\s*)(?![{[|>]\\s*$|(?:Bearer|Basic) \\[REDACTED\\])\\S.*$`,
        "gim",
      ),
      "$1[REDACTED]",
    )
    // Headers and key=value pairs inside a line (log fields, environment dumps).
    .replace(
      /\b((?:Proxy-)?Authorization|Cookie|Set-Cookie|X-[-\w]*(?:Token|Key|Secret|Auth)[-\w]*)(\s*:\s*)(?!(?:Bearer|Basic) \[REDACTED\])[^\s,;"][^,;"\n]*/gi,
      "$1$2[REDACTED]",
    )
    .replace(
      /\b([\w.-]*(?:token|secret|passw(?:or)?d|credential|api_?key|access_?key|private_?key)[\w.-]*|[A-Z_]*(?:KEY|AUTH))=(?!\[REDACTED)\S+/gi,
      "$1=[REDACTED]",
    );
}

async function capture(cmd: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const d = new TextDecoder();
    return `$ ${cmd.join(" ")}\n${d.decode(out.stdout)}${d.decode(out.stderr)}` +
      (out.success ? "" : `(exit status ${out.code})\n`);
  } catch (err) {
    return `$ ${cmd.join(" ")}\n(could not run: ${(err as Error).message})\n`;
  }
}

async function readOr(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/**
 * Writes `data` to `path` readable by its owner only (0600), also when the file existed: the
 * archive holds logs that are 0640 on disk, so it must not get the umask's 0644.
 *
 * The bytes go to a new file beside `path`, created exclusively with mode 0600 under a random
 * name, which is then renamed over `path`. So an existing file, or a symbolic link another user
 * planted at `path` (in `/tmp`, say), is replaced, never opened: root cannot be made to write
 * through it.
 */
async function writePrivate(path: string, data: Uint8Array): Promise<void> {
  const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = `${path}.tmp-${Deno.pid}-${rand}`;
  try {
    {
      using file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      for (let off = 0; off < data.length;) off += await file.write(data.subarray(off));
    }
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Runs `kconnect gather-logs`; returns the archive's path. */
export async function gatherLogs(opts: GatherOptions): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const output = opts.output ?? `kconnect-logs-${stamp}.tar.gz`;
  const tmp = await Deno.makeTempDir({ prefix: "kconnect-logs-" });
  const top = `kconnect-logs-${stamp}`;
  const dir = `${tmp}/${top}`;
  await Deno.mkdir(dir);
  const put = (name: string, text: string) => Deno.writeTextFile(`${dir}/${name}`, redact(text));
  const notes: string[] = [];
  try {
    await put("version.json", JSON.stringify(versionReport(), null, 2) + "\n");
    let status: string;
    try {
      status = JSON.stringify(await statusReport(socketPath(opts.socket), opts.stateDir), null, 2);
    } catch (err) {
      status = JSON.stringify({ error: (err as Error).message });
    }
    await put("status.json", status + "\n");
    const log = logFilePath(opts.logFile);
    for (const p of [log, `${log}.1`, `${log}.2`, `${log}.3`]) {
      const text = await readOr(p);
      if (text !== null) await put(p.slice(p.lastIndexOf("/") + 1), text);
      else if (p === log) notes.push(`no daemon log at ${log}`);
    }
    const state = stateDir(opts.stateDir);
    for (const f of ["journal.json", "up.json"]) {
      const text = await readOr(`${state}/${f}`);
      if (text !== null) await put(f, text);
    }
    await put("ip-route.txt", await capture(["ip", "route"]));
    await put("ip-6-route.txt", await capture(["ip", "-6", "route"]));
    await put("ip-addr.txt", await capture(["ip", "addr"]));
    await put(
      "resolv.conf",
      (await readOr("/etc/resolv.conf")) ?? "(cannot read /etc/resolv.conf)\n",
    );
    await put("resolvectl-status.txt", await capture(["resolvectl", "status"]));
    if (notes.length) await put("NOTES.txt", notes.join("\n") + "\n");
    const tar = await new Deno.Command("tar", {
      args: ["-czf", "-", "-C", tmp, top],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!tar.success) {
      throw new Error(`tar failed: ${new TextDecoder().decode(tar.stderr).trim()}`);
    }
    await writePrivate(output.startsWith("/") ? output : `${Deno.cwd()}/${output}`, tar.stdout);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return output;
}

/** Registers `kconnect gather-logs`. */
export function registerGatherLogs(program: Command): void {
  program
    .command("gather-logs")
    .description(
      "write a .tar.gz with the daemon's logs, status, journal, routes and resolver state (secrets redacted)",
    )
    .option("-o, --output <file>", "archive to write (default kconnect-logs-<time>.tar.gz)")
    .option("--socket <path>", "the daemon's control socket")
    .option("--state-dir <dir>", "where the journal lives (default /var/lib/kconnect)")
    .option("--log-file <path>", "the daemon's log file (default /var/log/kconnect/daemon.log)")
    .action(async (opts: GatherOptions) => {
      printLine(`wrote ${await gatherLogs(opts)}`);
    });
}
