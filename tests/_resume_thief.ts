// deno-lint-ignore-file no-console
/**
 * Run inside the test cluster's laptop namespace by resume_identity_test.ts: two clients of the
 * traffic manager through the real API server's port-forward. The owner starts a resumable
 * session; a second client presents the owner's session id with a secret of its own; then the
 * owner's transport is cut and the owner resumes. Prints one JSON line of what happened.
 *
 *   deno run … tests/_resume_thief.ts --kubeconfig <file> --namespace <ns> --pod <pod> --port <n>
 *
 * @module
 */
import { loadKubeconfig } from "../src/k8s/access.ts";
import { openPortForward } from "../src/k8s/portforward.ts";
import {
  helloNew,
  helloResume,
  newSessionKey,
  ResumeRefusedError,
  type SessionKey,
} from "../src/tunnel/hello.ts";
import { Session } from "../src/tunnel/session.ts";

function arg(name: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : undefined;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const access = await loadKubeconfig({ kubeconfig: arg("kubeconfig") });
const target = { namespace: arg("namespace"), pod: arg("pod"), port: Number(arg("port")) };
const forward = () => openPortForward(access, target);

/** How a resume with `key` ends: "resumed", or "refused <code>: <reason>". */
async function tryResume(key: SessionKey, received: number): Promise<string> {
  const pf = await forward();
  try {
    await helloResume(pf, key, received);
    return "resumed";
  } catch (e) {
    if (e instanceof ResumeRefusedError) return `refused ${e.code}: ${e.reason}`;
    throw e;
  } finally {
    pf.close();
  }
}

const owner = newSessionKey();
const first = await forward();
await helloNew(first, owner, 60);
const session = new Session(first, { client: true, resumable: true });
await session.ping();

// Another client knows the id (say it saw it somewhere) but not the secret; and one that knows
// neither.
const thief = await tryResume({ id: owner.id, secret: newSessionKey().secret }, 0);
const stranger = await tryResume(newSessionKey(), 0);
// The owner's session is untouched: it still answers over its transport.
const stillAnswers = (await session.ping()) >= 0;

// The owner's transport is cut; the owner resumes on a new one and the session answers again.
const detached = new Promise<void>((r) => session.onDetached = () => r());
first.close();
await detached;
const pf = await forward();
const r = await helloResume(pf, owner, session.receivedOffset);
session.attach(pf, r.peerReceived);
const afterResume = (await session.ping()) >= 0;
await session.close();
console.log(JSON.stringify({ thief, stranger, stillAnswers, afterResume }));
