/**
 * V8 flags kconnect runs with: the laptop binary's (compiled in by `scripts/build.ts`) and the
 * traffic manager's (its pod's command, `src/install/manifests.ts`).
 *
 * Both cap V8's young generation. By default a semi-space may grow to 16 MiB (the young
 * generation is three of them), and a burst of connections or relayed data leaves tens of MiB
 * there until the next scavenge; the objects of relayed data are small and their bytes live
 * outside the heap, so a small young generation costs little.
 *
 * @module
 */

/**
 * The laptop binary's V8 flags. A 4 MiB semi-space: holding 10,000 connections the client
 * measured 174 MB RSS instead of 204–207 (185 instead of 224–226 after an echo on each;
 * `bench/vs_portforward.ts --scale 10000`), with the same CPU per GB on bulk streams (two
 * alternating runs each: 2.29–2.67 against 2.34–2.93 s/GB); a 1 MiB one cost about 15 % more CPU
 * per GB. `--expose-gc` lets the client collect once when the traffic stops
 * (`src/host/idle_release.ts`): dead buffers of relayed data otherwise sit in the old generation
 * of an idle heap for good.
 */
export const CLIENT_V8_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--expose-gc"];

/**
 * The traffic manager's V8 flags. A 1 MiB young generation (instead of up to 16 MiB) has the
 * buffers of relayed data freed by frequent, cheap minor collections: a Uint8Array's object is
 * small and its bytes live outside the heap, so with the default, tens of MiB of dead buffers
 * pile up between collections. Measured with `bench/manager_budget.ts`: 20–25% lower peak
 * memory under a hostile client, the same throughput.
 */
export const MANAGER_V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/** `flags` as one `--v8-flags=…` argument of `deno run` or `deno compile`. */
export function v8FlagsArg(flags: readonly string[]): string {
  return `--v8-flags=${flags.join(",")}`;
}
