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
import { printLine } from "./output.ts";

interface GatherOptions {
  output?: string;
  socket?: string;
  stateDir?: string;
  logFile?: string;
}

/**
 * Removes secrets from text: bearer tokens, `token`/`password`/`secret` values in JSON and YAML,
 * PEM blocks (keys and certificates), base64 kubeconfig data fields and JWTs.
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
      /("(?:[A-Za-z]*(?:[Tt]oken|[Pp]assword|[Ss]ecret)|(?:client|private)[Kk]ey(?:Pem|Data)?|clientCertPem|caPem)"\s*:\s*)"(?:[^"\\]|\\.)*"/g,
      '$1"[REDACTED]"',
    )
    .replace(
      /^(\s*[-\w]*(?:token|password|secret|-data)\s*[:=]\s*)\S.*$/gim,
      "$1[REDACTED]",
    )
    .replace(/\b([A-Za-z_]*(?:TOKEN|SECRET|PASSWORD|KEY))=\S+/g, "$1=[REDACTED]");
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
      args: ["-czf", output.startsWith("/") ? output : `${Deno.cwd()}/${output}`, "-C", tmp, top],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!tar.success) {
      throw new Error(`tar failed: ${new TextDecoder().decode(tar.stderr).trim()}`);
    }
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
