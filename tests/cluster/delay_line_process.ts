/**
 * Runs `delay_line.ts` in a namespace for the benches and its test: started with a delay, ready
 * once it says so, restarted if it ever exits while wanted (after it was ready once), stopped with
 * SIGTERM (which removes its rules; its TUN and routes go with the process).
 *
 * @module
 */
import type { Netns } from "../_netns.ts";
import { DENO_RUN, ROOT } from "../_dataplane.ts";
import { LAPTOP_IP } from "./topology.ts";

/** Where the line sits: its namespace's interface towards the peer, and the peer's address. */
export interface DelayLineOptions {
  /** Default `laptop0`, the API server namespace's veth towards the first laptop. */
  iface?: string;
  /** Default the first laptop's address. */
  peer?: string;
}

/** `tests/cluster/delay_line.ts` as a process in `ns`. */
export class DelayLine {
  /** Times it was started again after exiting on its own. */
  restarts = 0;
  /** Exit code of the last run that ended, or null while none has. */
  lastExit: number | null = null;
  #iface: string;
  #peer: string;
  #wanted = false;
  #child: Deno.ChildProcess | null = null;
  #loop: Promise<void> = Promise.resolve();

  constructor(readonly ns: Netns, options: DelayLineOptions = {}) {
    this.#iface = options.iface ?? "laptop0";
    this.#peer = options.peer ?? LAPTOP_IP;
  }

  /**
   * Starts it with `oneWayMs` each way (stopping a running one first); resolves once packets
   * flow through it, rejects when it exits before that.
   */
  async start(oneWayMs: number): Promise<void> {
    await this.stop();
    this.#wanted = true;
    let ready!: () => void;
    const isReady = new Promise<void>((r) => ready = r);
    let wasReady = false;
    const command = [
      ...DENO_RUN,
      "-A",
      `${ROOT}tests/cluster/delay_line.ts`,
      "--iface",
      this.#iface,
      "--peer",
      this.#peer,
      "--delay",
      String(oneWayMs),
    ];
    this.#loop = (async () => {
      while (this.#wanted) {
        const child = this.ns.spawn(command, { stdout: "piped" });
        this.#child = child;
        let text = "";
        for await (const part of child.stdout.pipeThrough(new TextDecoderStream())) {
          text += part;
          if (!wasReady && text.includes("ready")) {
            wasReady = true;
            ready();
          }
        }
        this.lastExit = (await child.status).code;
        if (!wasReady) return;
        if (this.#wanted) this.restarts++;
      }
    })();
    await Promise.race([
      isReady,
      this.#loop.then(() => {
        throw new Error(`the delay line did not start (exit code ${this.lastExit})`);
      }),
    ]);
  }

  /** Stops it (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    this.#wanted = false;
    try {
      this.#child?.kill("SIGTERM");
    } catch { /* exited */ }
    await this.#loop.catch(() => {}); // a failed start already said why
    this.#child = null;
  }
}
