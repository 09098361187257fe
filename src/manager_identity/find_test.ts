// Security review M8: the client takes only the traffic manager kconnect installed, not any pod
// that carries its label.
import assert from "node:assert/strict";
import type { KubeClient } from "../k8s/client.ts";
import { KubeApiError } from "../k8s/errors.ts";
import { findTrafficManager, UntrustedManagerError } from "./find.ts";

const NS = "kconnect";
const DEPLOY = "kconnect-traffic-manager";
const SHA_NEW = "a".repeat(64);
const SHA_OLD = "b".repeat(64);

type Obj = Record<string, unknown>;

/** A KubeClient that answers GETs from a table (404 for anything else, or the code given). */
function fakeClient(objects: Record<string, Obj | number>): KubeClient & { gets: string[] } {
  const gets: string[] = [];
  return {
    gets,
    get(path: string) {
      gets.push(path);
      const o = objects[path.split("?")[0]];
      if (o === undefined || typeof o === "number") {
        const code = typeof o === "number" ? o : 404;
        return Promise.reject(
          new KubeApiError(`${code}`, code, {
            kind: "Status",
            code,
            reason: code === 403 ? "Forbidden" : "NotFound",
          } as never),
        );
      }
      return Promise.resolve(o);
    },
  } as unknown as KubeClient & { gets: string[] };
}

const readyStatus = {
  phase: "Running",
  podIP: "10.244.0.9",
  conditions: [{ type: "Ready", status: "True" }],
};

function pod(
  name: string,
  o: { owner?: Obj; hash?: string; bundle?: string; uid?: string } = {},
): Obj {
  return {
    metadata: {
      name,
      uid: o.uid ?? `uid-${name}`,
      labels: {
        "app.kubernetes.io/name": "kconnect-traffic-manager",
        "app.kubernetes.io/version": "1.0.0",
        ...(o.hash ? { "pod-template-hash": o.hash } : {}),
      },
      annotations: o.bundle ? { "kconnect.io/bundle-sha256": o.bundle } : {},
      ...(o.owner ? { ownerReferences: [o.owner] } : {}),
    },
    spec: { containers: [{ ports: [{ name: "tunnel", containerPort: 8081 }] }] },
    status: readyStatus,
  };
}

function rsOwner(hash: string, uid = `rs-${hash}`): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    name: `${DEPLOY}-${hash}`,
    uid,
    controller: true,
  };
}

function replicaSet(hash: string, bundle: string): Obj {
  return {
    metadata: {
      name: `${DEPLOY}-${hash}`,
      uid: `rs-${hash}`,
      ownerReferences: [{ kind: "Deployment", name: DEPLOY, uid: "deploy-uid", controller: true }],
    },
    spec: { template: { metadata: { annotations: { "kconnect.io/bundle-sha256": bundle } } } },
  };
}

const deployment = (bundle = SHA_NEW): Obj => ({
  metadata: {
    name: DEPLOY,
    uid: "deploy-uid",
    labels: { "app.kubernetes.io/managed-by": "kconnect" },
  },
  spec: { template: { metadata: { annotations: { "kconnect.io/bundle-sha256": bundle } } } },
});

const PODS = `/api/v1/namespaces/${NS}/pods`;
const DEPLOY_PATH = `/apis/apps/v1/namespaces/${NS}/deployments/${DEPLOY}`;
const RS_PATH = (hash: string) => `/apis/apps/v1/namespaces/${NS}/replicasets/${DEPLOY}-${hash}`;

Deno.test("findTrafficManager refuses a labelled pod that kconnect's Deployment does not run", async () => {
  const bare = pod("evil");
  const client = fakeClient({
    [PODS]: { items: [bare] },
    [DEPLOY_PATH]: deployment(),
    [RS_PATH("abc")]: replicaSet("abc", SHA_NEW),
  });
  const err = await findTrafficManager(client, NS).then(() => null, (e: Error) => e);
  assert.ok(err instanceof UntrustedManagerError, String(err));
  assert.match(err.message, /Refusing the pods labelled .* none is run by the traffic manager's/);
  assert.match(err.message, /kconnect\/evil: it has no controller \(a bare pod\)/);
  assert.match(err.message, /kconnect install/);
});

Deno.test("findTrafficManager refuses forged owners, wrong uids and a missing bundle annotation", async () => {
  const cases: [Obj, RegExp][] = [
    [
      pod("other-owner", { owner: { kind: "ReplicaSet", name: "evil-1", controller: true } }),
      /its controller is ReplicaSet evil-1, not a ReplicaSet of Deployment/,
    ],
    [
      pod("no-rs", { owner: rsOwner("zzz"), hash: "zzz", bundle: SHA_NEW }),
      /its ReplicaSet kconnect-traffic-manager-zzz does not exist/,
    ],
    [
      pod("wrong-uid", { owner: rsOwner("abc", "forged"), hash: "abc", bundle: SHA_NEW }),
      /its owner's uid is not ReplicaSet/,
    ],
    [
      pod("no-annotation", { owner: rsOwner("abc"), hash: "abc" }),
      /it has no kconnect\.io\/bundle-sha256 annotation/,
    ],
    [
      pod("other-code", { owner: rsOwner("abc"), hash: "abc", bundle: SHA_OLD }),
      /its kconnect\.io\/bundle-sha256 \(bbbbbbbbbbbb\) is not its ReplicaSet's \(aaaaaaaaaaaa\)/,
    ],
  ];
  for (const [p, re] of cases) {
    const client = fakeClient({
      [PODS]: { items: [p] },
      [DEPLOY_PATH]: deployment(),
      [RS_PATH("abc")]: replicaSet("abc", SHA_NEW),
    });
    await assert.rejects(findTrafficManager(client, NS), re);
  }
  // A ReplicaSet owned by something else.
  const rs = replicaSet("abc", SHA_NEW);
  (rs.metadata as Obj).ownerReferences = [{ kind: "Deployment", name: "x", controller: true }];
  const client = fakeClient({
    [PODS]: { items: [pod("p", { owner: rsOwner("abc"), hash: "abc", bundle: SHA_NEW })] },
    [DEPLOY_PATH]: deployment(),
    [RS_PATH("abc")]: rs,
  });
  await assert.rejects(findTrafficManager(client, NS), /is not owned by Deployment/);
});

Deno.test("findTrafficManager takes the Deployment's pod next to a forged one; during a rollout the current code", async () => {
  const old = pod("old", { owner: rsOwner("old1"), hash: "old1", bundle: SHA_OLD });
  const fresh = pod("new", { owner: rsOwner("new1"), hash: "new1", bundle: SHA_NEW });
  const client = fakeClient({
    [PODS]: { items: [pod("evil"), old, fresh] },
    [DEPLOY_PATH]: deployment(SHA_NEW),
    [RS_PATH("old1")]: replicaSet("old1", SHA_OLD),
    [RS_PATH("new1")]: replicaSet("new1", SHA_NEW),
  });
  const m = await findTrafficManager(client, NS);
  assert.equal(m.name, "new");
  assert.equal(m.bundleSha256, SHA_NEW);
  assert.equal(m.port, 8081);
  // Version skew: only the older manager runs (e.g. `up --no-upgrade`): it is the Deployment's.
  const skew = fakeClient({
    [PODS]: { items: [pod("evil"), old] },
    [DEPLOY_PATH]: deployment(SHA_NEW),
    [RS_PATH("old1")]: replicaSet("old1", SHA_OLD),
  });
  assert.equal((await findTrafficManager(skew, NS)).name, "old");
});

Deno.test("findTrafficManager: ReplicaSets unreadable: owner names and the annotation still checked", async () => {
  const client = fakeClient({
    [PODS]: {
      items: [
        pod("evil"),
        pod("ok", { owner: rsOwner("abc"), hash: "abc", bundle: SHA_NEW }),
      ],
    },
    [DEPLOY_PATH]: deployment(),
    [RS_PATH("abc")]: 403,
  });
  assert.equal((await findTrafficManager(client, NS)).name, "ok");
});

Deno.test("findTrafficManager warns when it cannot check: no kconnect Deployment, or unreadable", async () => {
  for (
    const [d, re] of [[404, /does not belong to a Deployment that kconnect install made/], [
      403,
      /cannot read Deployment kconnect\/kconnect-traffic-manager/,
    ]] as const
  ) {
    const warnings: string[] = [];
    const client = fakeClient({ [PODS]: { items: [pod("theirs")] }, [DEPLOY_PATH]: d });
    const m = await findTrafficManager(client, NS, { warn: (w) => warnings.push(w) });
    assert.equal(m.name, "theirs");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], re);
  }
  // A Deployment someone else made (not labelled as kconnect's) is not kconnect's to vouch for.
  const warnings: string[] = [];
  const theirs = deployment();
  (theirs.metadata as Obj).labels = {};
  const client = fakeClient({ [PODS]: { items: [pod("theirs")] }, [DEPLOY_PATH]: theirs });
  await findTrafficManager(client, NS, { warn: (w) => warnings.push(w) });
  assert.equal(warnings.length, 1);
});
