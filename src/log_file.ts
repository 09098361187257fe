/**
 * A log file that rotates by size: when a write would take `path` past `maxBytes`, `path.N`
 * becomes `path.N+1` (the oldest, `path.<keep>`, is dropped), `path` becomes `path.1`, and a
 * new `path` is started. Writes are synchronous and whole lines, so the logger can use it as its
 * writer (`setLogWriter`) and a line is never split across files.
 *
 * @example
 * ```ts
 * import { RotatingFile } from "./log_file.ts";
 * const dir = Deno.makeTempDirSync();
 * const f = RotatingFile.open(`${dir}/daemon.log`, { maxBytes: 64, keep: 2 });
 * for (let i = 0; i < 10; i++) f.write(`line ${i} of the log, long enough\n`);
 * f.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */

/** Options of {@linkcode RotatingFile.open}. */
export interface RotatingFileOptions {
  /** Largest size of one file, in bytes. Default 5 MiB. */
  maxBytes?: number;
  /** Rotated files kept besides the current one (`path.1` … `path.<keep>`). Default 3. */
  keep?: number;
  /** Mode of new files. Default 0o640. */
  mode?: number;
}

const encoder = new TextEncoder();

function makeLogDir(path: string): void {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) Deno.mkdirSync(dir, { recursive: true, mode: 0o750 });
}

/**
 * Creates a log file before its writer starts (its directory with mode 0750, the file with
 * `mode`, default 0640, both only when missing) and returns it open for reading and appending,
 * positioned at its end: what is written after this call can be read from the handle, even
 * after the file is rotated away (the handle keeps the same file).
 *
 * @throws {Error} when the directory or the file cannot be created or opened.
 *
 * @example
 * ```ts
 * import { createLogFile } from "./log_file.ts";
 * const dir = Deno.makeTempDirSync();
 * const f = createLogFile(`${dir}/new/daemon.log`);
 * Deno.writeTextFileSync(`${dir}/new/daemon.log`, "started\n", { append: true });
 * const buf = new Uint8Array(64);
 * new TextDecoder().decode(buf.subarray(0, f.readSync(buf) ?? 0)); // "started\n"
 * f.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function createLogFile(path: string, mode = 0o640): Deno.FsFile {
  makeLogDir(path);
  const f = Deno.openSync(path, { read: true, append: true, create: true, mode });
  f.seekSync(0, Deno.SeekMode.End);
  return f;
}

/** A size-rotated log file. */
export class RotatingFile {
  /** The current file's path. */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #mode: number;
  #file: Deno.FsFile;
  #size: number;

  private constructor(path: string, o: Required<RotatingFileOptions>) {
    this.path = path;
    this.#maxBytes = o.maxBytes;
    this.#keep = o.keep;
    this.#mode = o.mode;
    this.#file = this.#openFile();
    this.#size = this.#file.statSync().size;
  }

  /** Opens (appending to) `path`, creating its directory (mode 0750) when missing. */
  static open(path: string, options: RotatingFileOptions = {}): RotatingFile {
    makeLogDir(path);
    return new RotatingFile(path, {
      maxBytes: options.maxBytes ?? 5 * 1024 * 1024,
      keep: options.keep ?? 3,
      mode: options.mode ?? 0o640,
    });
  }

  #openFile(): Deno.FsFile {
    return Deno.openSync(this.path, { append: true, create: true, mode: this.#mode });
  }

  /** The files that exist, newest first: `path`, `path.1`, …. */
  files(): string[] {
    const out: string[] = [];
    for (let i = 0; i <= this.#keep; i++) {
      const p = i === 0 ? this.path : `${this.path}.${i}`;
      try {
        Deno.statSync(p);
        out.push(p);
      } catch { /* not there */ }
    }
    return out;
  }

  /** Appends `text` (one or more whole lines), rotating first if it would not fit. */
  write(text: string): void {
    const bytes = encoder.encode(text);
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.rotate();
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    this.#size += bytes.length;
  }

  /** Rotates now. */
  rotate(): void {
    this.#file.close();
    const rm = (p: string) => {
      try {
        Deno.removeSync(p);
      } catch { /* not there */ }
    };
    if (this.#keep === 0) rm(this.path);
    else {
      rm(`${this.path}.${this.#keep}`);
      for (let i = this.#keep - 1; i >= 1; i--) {
        try {
          Deno.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        } catch { /* not there */ }
      }
      Deno.renameSync(this.path, `${this.path}.1`);
    }
    this.#file = this.#openFile();
    this.#size = 0;
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}
