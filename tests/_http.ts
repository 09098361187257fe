/**
 * HTTP from inside a test namespace, the way a user's program would do it: curl.
 *
 * @module
 */

/** Something that runs commands in a namespace. */
export interface Executor {
  exec(
    cmd: string[],
    options?: { check?: boolean },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** The HTTP status curl gets for `url` (`000` when it could not connect). */
export async function httpStatus(ns: Executor, url: string, timeoutSeconds = 10): Promise<string> {
  const r = await ns.exec(
    ["curl", "-sS", "-m", String(timeoutSeconds), "-o", "/dev/null", "-w", "%{http_code}", url],
    { check: false },
  );
  return r.stdout;
}
