/**
 * One bound on the receive windows of many sessions: every byte of window granted beyond the
 * spec's 256 KiB (a larger initial window, auto-tuning's growth) is taken from one budget while
 * its stream lives, and given back when the stream leaves its session. Credit, once granted,
 * cannot be taken back, so this bounds what the peers can make this side buffer: the budget,
 * plus 256 KiB per open stream. Past the budget a new stream opens at the spec's window and
 * windows stop growing until streams end.
 *
 * @example
 * ```ts
 * import { WindowBudget } from "./window_budget.ts";
 * const budget = new WindowBudget(64 * 1024 * 1024);
 * // new Session(transport, options, budget.policy), or SessionPool's `policy`
 * if (budget.used !== 0) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import type { SessionPolicy } from "./session.ts";
import type { Stream } from "./stream.ts";

/** A budget for the window growth of every session given its {@linkcode WindowBudget.policy}. */
export class WindowBudget {
  /** Bytes granted beyond the spec's windows, summed over the live streams. */
  used = 0;
  /** Grants refused because the budget was spent. */
  refused = 0;
  /** The sessions' policy: admits growth while the budget lasts, takes it back on release. */
  readonly policy: SessionPolicy;

  #spent = false;

  /**
   * @param capBytes Most bytes of window beyond the spec's, over all streams together.
   * @param onSpent Called when a grant is first refused, and again only after use has fallen to
   *   half the budget since (so a log says it once per episode, not once per stream).
   */
  constructor(readonly capBytes: number, onSpent?: (budget: WindowBudget) => void) {
    if (!(capBytes >= 0)) throw new RangeError(`window budget: ${capBytes} is not a size`);
    this.policy = {
      admitWindowGrowth: (_stream: Stream, n: number) => {
        if (this.used + n > this.capBytes) {
          this.refused++;
          if (!this.#spent) {
            this.#spent = true;
            onSpent?.(this);
          }
          return false;
        }
        this.used += n;
        return true;
      },
      onRelease: (stream: Stream) => {
        this.used -= stream.windowGrowth;
        if (this.used <= this.capBytes / 2) this.#spent = false;
      },
    };
  }
}
