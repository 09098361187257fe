/**
 * What a session accepts (review C1, H1, M3): the settings and the kubeconfig context's
 * namespace when it starts, and the manager's info pushed while it runs.
 */
import assert from "node:assert/strict";
import { DEFAULT_SETTINGS, SettingsError } from "../config/config.ts";
import type { ClusterAccess } from "../k8s/access.ts";
import type { Journal } from "../journal/journal.ts";
import type { ClusterInfo } from "../protocol/cluster_info.ts";
import { Cidr } from "../wire/address.ts";
import { planRoutes } from "./route_plan.ts";
import { upConnectionOptions } from "./up_connection.ts";
import { InfoGate } from "../trust/trust.ts";

const access = (namespace: string) =>
  ({
    server: "https://192.0.2.10:6443",
    context: "prod",
    clusterName: "prod",
    userName: "me",
    namespace,
    source: "/home/me/.kube/config",
    headers: () => Promise.resolve({}),
    httpClient: null as unknown as Deno.HttpClient,
  }) satisfies ClusterAccess;
const journal = {} as Journal;

Deno.test("upConnectionOptions() refuses a kubeconfig context namespace that is not a namespace name", () => {
  for (const ns of ["../x", "../sudoers.d/x\nALL ALL=(ALL) NOPASSWD:ALL", "", "com.", "a/b"]) {
    assert.throws(
      () => upConnectionOptions({ ...DEFAULT_SETTINGS, dns: "off" }, access(ns), journal),
      (e) => e instanceof SettingsError && /kubeconfig context "prod": namespace/.test(e.message),
      JSON.stringify(ns),
    );
  }
  assert.equal(
    upConnectionOptions({ ...DEFAULT_SETTINGS, dns: "off" }, access("shop"), journal).namespace,
    "shop",
  );
  // A namespace given on the command line or in the config file wins (and was checked there).
  assert.equal(
    upConnectionOptions(
      { ...DEFAULT_SETTINGS, dns: "off", namespace: "web" },
      access("../x"),
      journal,
    )
      .namespace,
    "web",
  );
});

Deno.test({
  name:
    "upConnectionOptions() refuses --dns macos off macOS, for the foreground up as for the daemon",
  ignore: Deno.build.os === "darwin",
  fn: () => {
    assert.throws(
      () => upConnectionOptions({ ...DEFAULT_SETTINGS, dns: "macos" }, access("default"), journal),
      /dns: "macos" .*works on macOS only/,
    );
  },
});

Deno.test("upConnectionOptions() refuses TUN settings past the bounds (foreground up checks them too)", () => {
  for (
    const bad of [
      { tunNet4: "0.0.0.0/1" },
      { tunNet6: "::/1" },
      { tunName: "-x" },
      { tunName: "eth0 " },
    ]
  ) {
    assert.throws(
      () =>
        upConnectionOptions(
          { ...DEFAULT_SETTINGS, dns: "off", ...bad },
          access("default"),
          journal,
        ),
      SettingsError,
      JSON.stringify(bad),
    );
  }
});

const INFO: ClusterInfo = {
  type: "info",
  managerVersion: "0.1.0",
  clusterDomain: "cluster.local",
  dnsServer: "10.96.0.10",
  serviceCidrs: [{ cidr: "10.96.0.0/12", source: "ServiceCIDR kubernetes" }],
  podCidrs: [{ cidr: "10.244.0.0/24", source: "podCIDRs of 1 node" }],
  namespaces: ["default"],
  warnings: [],
};

Deno.test("a manager that pushes a wider CIDR mid-session gets no new route", () => {
  const gate = new InfoGate({ clusterDomains: [], alsoProxy: [] });
  const plan = (i: ClusterInfo) =>
    planRoutes({
      cluster: [...i.serviceCidrs, ...i.podCidrs].map((x) => ({
        cidr: Cidr.parse(x.cidr)!,
        why: x.source,
      })),
      alsoProxy: [],
      neverProxy: [],
      keepOut: [],
      existing: [
        { dst: "default", gateway: "192.168.1.1", dev: "eth0", family: 4 },
        { dst: "192.168.1.0/24", dev: "eth0", protocol: "kernel", family: 4 },
      ],
      ownDev: "kconnect0",
    });
  const before = plan(gate.first(INFO).info).routes.map((r) => r.cidr.toString());
  assert.deepEqual(before, ["10.96.0.0/12", "10.244.0.0/24"]);
  for (
    const wider of [
      [{ cidr: "10.244.0.0/16", source: "p" }],
      [{ cidr: "10.245.0.0/24", source: "p" }],
      [{ cidr: "0.0.0.0/1", source: "p" }, { cidr: "128.0.0.0/2", source: "p" }],
      [{ cidr: "1.1.1.1/32", source: "p" }],
    ]
  ) {
    const next = gate.update({ ...INFO, podCidrs: [...INFO.podCidrs, ...wider] });
    const after = plan(next.info);
    assert.deepEqual(after.routes.map((r) => r.cidr.toString()), before, JSON.stringify(wider));
    assert.equal(after.conflicts.length, 0);
    assert.equal(next.refused.length, wider.length, JSON.stringify(next.refused));
  }
});
