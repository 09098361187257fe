/**
 * Waiting for the signals that end a foreground command.
 *
 * @module
 */

/** Resolves with the name of the first SIGINT or SIGTERM (SIGINT only on Windows). */
export function untilSignal(signal?: AbortSignal): Promise<string> {
  const sigs: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const handlers: (() => void)[] = [];
    const done = (name: string) => {
      sigs.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
      resolve(name);
    };
    for (const s of sigs) {
      const h = () => done(s);
      handlers.push(h);
      Deno.addSignalListener(s, h);
    }
    signal?.addEventListener("abort", () => done("abort"), { once: true });
  });
}
