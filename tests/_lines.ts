/**
 * Reads a child's output line by line, for tests that wait for a readiness line.
 *
 * @module
 */

/** Collects lines from `stream` as they come; `waitFor` resolves when a line matches. */
export class LineWatcher {
  readonly lines: string[] = [];
  readonly done: Promise<void>;
  #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        partial += dec.decode(chunk, { stream: true });
        const parts = partial.split("\n");
        partial = parts.pop()!;
        for (const line of parts) this.#add(line);
      }
    } catch { /* the child went away */ }
    if (partial) this.#add(partial);
  }

  #add(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.re.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first line (already seen or future) matching `re`; rejects after `ms`. */
  waitFor(re: RegExp, ms = 20_000): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no line matching ${re} within ${ms} ms; got:\n${this.lines.join("\n")}`));
      }, ms);
      this.#waiters.push({
        re,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      this.done.then(() => {
        clearTimeout(timer);
        reject(
          new Error(`output ended before a line matching ${re}; got:\n${this.lines.join("\n")}`),
        );
      });
    });
  }

  /** Everything seen so far. */
  text(): string {
    return this.lines.join("\n");
  }
}
