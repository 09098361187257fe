/**
 * `/etc/resolv.conf` as a pod sees it: the cluster DNS server and the search list, from which
 * the cluster domain follows (`svc.<domain>` is always on a pod's search list).
 *
 * @module
 */

/** What kconnect needs from a resolv.conf. */
export interface ResolvConf {
  nameservers: string[];
  search: string[];
  ndots: number | null;
}

/** Parses resolv.conf text (later `search`/`domain` lines replace earlier ones, as in glibc). */
export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], ndots: null };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") continue;
    const [key, ...values] = line.split(/\s+/);
    if (key === "nameserver" && values[0]) conf.nameservers.push(values[0]);
    else if (key === "search" || key === "domain") conf.search = values;
    else if (key === "options") {
      for (const o of values) {
        const m = /^ndots:(\d+)$/.exec(o);
        if (m) conf.ndots = Number(m[1]);
      }
    }
  }
  return conf;
}

/**
 * The cluster domain from a pod's search list (`<ns>.svc.<domain> svc.<domain> <domain>`);
 * `cluster.local` when the list does not show one.
 */
export function clusterDomainOf(conf: ResolvConf): string {
  for (const s of conf.search) {
    const m = /^svc\.(.+?)\.?$/.exec(s);
    if (m) return m[1];
  }
  for (const s of conf.search) {
    const m = /^[^.]+\.svc\.(.+?)\.?$/.exec(s);
    if (m) return m[1];
  }
  return "cluster.local";
}
