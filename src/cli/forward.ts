/**
 * `kconnect forward`: the data path without a cluster. Creates the TUN, routes the given
 * prefixes into it, and dials every flow directly from this host, after an optional address
 * map (`--map 10.96.0.0/12=127.0.0.0/8`). Useful to check TUN, routes and the flow engine on a
 * machine, and what the data-path tests run.
 *
 * @module
 */
import type { Command } from "commander";
import { DirectDialer } from "../dial/direct.ts";
import { parseMapRule } from "../dial/address_map.ts";
import { logger } from "../log.ts";
import { addRoute, deleteRoute } from "../routes/routes.ts";
import { FlowEngine } from "../stack/engine.ts";
import { DEFAULT_TUN_NET4, DEFAULT_TUN_NET6, tunAddresses } from "../stack/tun_addresses.ts";
import { openTun } from "../tun/open.ts";
import { Cidr } from "../wire/address.ts";
import { printLine } from "../cmdline/output.ts";
import { untilSignal } from "../cmdline/signals.ts";

const log = logger("forward");

interface ForwardOptions {
  route: string[];
  map: string[];
  tunName?: string;
  mtu: string;
  tunNet4: string;
  tunNet6: string;
  ipv6: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseRoutes(texts: string[]): Cidr[] {
  return texts.map((t) => {
    const c = Cidr.parse(t);
    if (c === null) {
      throw new TypeError(`Invalid --route "${t}": expected a CIDR like 10.96.0.0/12`);
    }
    return c;
  });
}

/** Runs `kconnect forward` until a signal; exported for tests that drive it in-process. */
export async function runForward(opts: ForwardOptions): Promise<void> {
  const routes = parseRoutes(opts.route);
  if (routes.length === 0) {
    throw new TypeError("Nothing to forward: give at least one --route CIDR");
  }
  const map = opts.map.map(parseMapRule);
  const mtu = Number(opts.mtu);
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) {
    throw new TypeError(`Invalid --mtu "${opts.mtu}": expected an integer from 1280 to 65535`);
  }
  if (Deno.build.os !== "windows" && Deno.uid() !== 0) {
    throw new Error(
      "kconnect forward must run as root: it creates a TUN device and routes (try: sudo kconnect forward …)",
    );
  }
  const v4 = tunAddresses(opts.tunNet4);
  const v6 = opts.ipv6 ? tunAddresses(opts.tunNet6) : undefined;
  const tun = await openTun({
    name: opts.tunName,
    mtu,
    addresses: [
      { address: v4.tun, prefixLength: v4.prefixLength },
      ...(v6 ? [{ address: v6.tun, prefixLength: v6.prefixLength }] : []),
    ],
  });
  printLine(`TUN ${tun.name} up, mtu ${tun.mtu}`);
  const engine = await FlowEngine.start({ tun, dialer: new DirectDialer({ map }), v4, v6 });
  const added: Cidr[] = [];
  try {
    for (const r of routes) {
      if (r.family === 6 && !v6) throw new Error(`Cannot route ${r}: IPv6 is off (--no-ipv6)`);
      await addRoute(r, tun.name);
      added.push(r);
      printLine(`route ${r} via ${tun.name}`);
    }
    printLine("ready");
    const sig = await Promise.race([untilSignal(), engine.done.then(() => "TUN closed")]);
    log.info(`stopping: ${sig}`, { ...engine.stats, ...engine.tcp.stats });
  } finally {
    for (const r of added.reverse()) {
      await deleteRoute(r, tun.name).catch((err) =>
        log.warn(`removing route ${r}: ${err.message}`)
      );
    }
    await engine.close();
    printLine("stopped");
  }
}

/** Registers `kconnect forward` on `program`. */
export function registerForward(program: Command): void {
  program
    .command("forward")
    .description(
      "route prefixes into a TUN device and dial every flow directly from this host (data path without a cluster)",
    )
    .option("--route <cidr>", "prefix to route into the TUN (repeatable)", collect, [])
    .option(
      "--map <from=to>",
      "rewrite destinations, e.g. 10.96.0.0/12=127.0.0.0/8 (repeatable)",
      collect,
      [],
    )
    .option("--tun-name <name>", "TUN interface name (default: chosen by the kernel)")
    .option("--mtu <bytes>", "TUN MTU", "1500")
    .option("--tun-net4 <cidr>", "the TUN's own IPv4 prefix", DEFAULT_TUN_NET4)
    .option("--tun-net6 <cidr>", "the TUN's own IPv6 prefix", DEFAULT_TUN_NET6)
    .option("--no-ipv6", "do not set up IPv6 on the TUN")
    .action((opts: ForwardOptions) => runForward(opts));
}
