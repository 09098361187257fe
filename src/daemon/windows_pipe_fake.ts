/**
 * A recording fake of the Windows named-pipe functions (`windows_pipe_native.ts`), typed as the
 * real tables are, for driving the real pipe server and client on any OS (tests only; needs
 * `--allow-ffi` for the pointers, which point at real memory the fake owns).
 *
 * What it models:
 * - pipe names with an owner and the DACL parsed from the SDDL the creator passed;
 *   `FILE_FLAG_FIRST_PIPE_INSTANCE` on an existing name fails with `ERROR_ACCESS_DENIED`;
 * - `CreateFileW` checks the asking identity ({@linkcode FakePipes.identity}: user SID and
 *   groups, deny-only entries ignored) against the DACL for the access asked; with no listening
 *   instance it answers `ERROR_PIPE_BUSY`, with no name `ERROR_FILE_NOT_FOUND`;
 * - overlapped `ConnectNamedPipe` (`ERROR_PIPE_CONNECTED` when the client came first),
 *   `ReadFile` (at once when bytes wait, else pending until the other end writes or closes:
 *   `ERROR_BROKEN_PIPE`), `WriteFile` (`ERROR_NO_DATA` once the other end closed),
 *   `GetOverlappedResult` (`ERROR_IO_INCOMPLETE` before completion), `CancelIoEx`
 *   (`ERROR_OPERATION_ABORTED`), manual-reset events and `WaitForSingleObject`;
 * - impersonation: `ImpersonateNamedPipeClient` fails with `ERROR_CANNOT_IMPERSONATE` before
 *   anything was read; `OpenThreadToken` gives a token of the client's identity;
 *   `GetTokenInformation` writes `TOKEN_USER` / `TOKEN_GROUPS` with real pointers into the
 *   caller's buffer, after the two-call size dance;
 * - `GetSecurityInfo` gives the pipe's owner, allocated until `LocalFree`.
 *
 * Misuse the real system would punish (a wait started while impersonating, closing an event a
 * wait is on, a handle used after close, a `LocalFree` of something not allocated) goes to
 * {@linkcode FakePipes.violations}; tests assert it stays empty, and that no handle or allocation
 * is left ({@linkcode FakePipes.leaks}).
 *
 * @module
 */
import {
  type PipeAsyncSymbols,
  PipeError,
  type PipeNative,
  type PipeSymbols,
  SE_GROUP_ENABLED,
  SE_GROUP_USE_FOR_DENY_ONLY,
  SID_ADMINISTRATORS,
  SID_SYSTEM,
  WAIT_OBJECT_0,
} from "./windows_pipe_native.ts";

/** Who a fake call runs as. */
export interface FakeIdentity {
  sid: string;
  /** Group SIDs with their attributes (`SE_GROUP_ENABLED`, …). */
  groups: { sid: string; attributes: number }[];
}

/** An enabled group entry. */
export function enabled(sid: string): { sid: string; attributes: number } {
  return { sid, attributes: SE_GROUP_ENABLED };
}

/** A deny-only group entry (a UAC-filtered token's Administrators). */
export function denyOnly(sid: string): { sid: string; attributes: number } {
  return { sid, attributes: SE_GROUP_USE_FOR_DENY_ONLY };
}

/** The binary form of a textual SID. */
export function sidBytes(text: string): Uint8Array {
  const parts = text.split("-");
  if (parts[0] !== "S" || parts[1] !== "1") throw new TypeError(`Not a SID: ${text}`);
  const subs = parts.slice(3).map(Number);
  const out = new Uint8Array(8 + 4 * subs.length);
  out[0] = 1;
  out[1] = subs.length;
  const auth = Number(parts[2]);
  for (let i = 0; i < 6; i++) out[2 + i] = Math.floor(auth / 256 ** (5 - i)) % 256;
  const v = new DataView(out.buffer);
  subs.forEach((s, i) => v.setUint32(8 + 4 * i, s, true));
  return out;
}

const ALIASES: Record<string, string> = { SY: SID_SYSTEM, BA: SID_ADMINISTRATORS };

/** Parses the `D:P(A;;mask;;;sid)…` SDDL the daemon writes: allowed SID → mask. */
function parseDacl(sddl: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sddl.matchAll(/\(A;;([^;]+);;;([^)]+)\)/g)) {
    const mask = m[1] === "GA" ? 0xffffffff : Number(m[1]);
    const sid = ALIASES[m[2]] ?? m[2];
    out.set(sid, (out.get(sid) ?? 0) | mask);
  }
  return out;
}

interface FakeEvent {
  kind: "event";
  signaled: boolean;
  waiters: (() => void)[];
}

interface Op {
  handle: bigint;
  event: bigint;
  ovAddr: bigint;
  buf?: Uint8Array;
  n?: number;
}

interface Instance {
  name: string;
  server: bigint;
  client: bigint | null;
  state: "listening" | "connected" | "gone";
  connectOp: Op | null;
  clientFirst: boolean;
  /** Bytes waiting to be read by each side. */
  toServer: Uint8Array[];
  toClient: Uint8Array[];
  serverRead: number;
  clientIdentity: FakeIdentity | null;
  readOp: { server: Op | null; client: Op | null };
}

interface PipeName {
  owner: string;
  creator: string;
  dacl: Map<string, number>;
  instances: Set<Instance>;
}

type Handle =
  | FakeEvent
  | { kind: "server"; inst: Instance }
  | { kind: "client"; inst: Instance }
  | { kind: "token"; identity: FakeIdentity };

function bytesOf(b: AllowSharedBufferSource | null): Uint8Array {
  if (b === null) throw new TypeError("fake: NULL buffer");
  if (!ArrayBuffer.isView(b)) return new Uint8Array(b as ArrayBuffer);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function wideText(b: AllowSharedBufferSource | null): string {
  const u = bytesOf(b);
  const units = new Uint16Array(u.buffer, u.byteOffset, u.byteLength / 2);
  const end = units.indexOf(0);
  return String.fromCharCode(...units.subarray(0, end < 0 ? units.length : end));
}

function addr(b: AllowSharedBufferSource): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as BufferSource)));
}

function ptrValue(p: Deno.PointerValue): bigint {
  return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
}

/** The fake; hand {@linkcode FakePipes.native} to the pipe code. */
export class FakePipes {
  /** Every call of interest, in order (`CreateFileW \\.\pipe\x access=0x…`, …). */
  readonly calls: string[] = [];
  /** Misuse the real system would punish. */
  readonly violations: string[] = [];
  /** Who the client process is: `CreateFileW` runs as it (the test switches it). */
  identity: FakeIdentity = { sid: SID_SYSTEM, groups: [enabled(SID_ADMINISTRATORS)] };
  /**
   * Who the server process is: `CreateNamedPipeW` runs as it. A pipe's owner is its creator,
   * except that SYSTEM's default owner is Administrators.
   */
  serverIdentity: FakeIdentity = { sid: SID_SYSTEM, groups: [enabled(SID_ADMINISTRATORS)] };
  /** Local accounts and groups `LookupAccountNameW` knows: lower-case name → SID. */
  readonly accounts = new Map<string, string>();
  /** What `RevertToSelf` answers (a test sets 0 to see the daemon stop). */
  revertResult = 1;
  readonly #handles = new Map<bigint, Handle>();
  readonly #names = new Map<string, PipeName>();
  readonly #results = new Map<bigint, { done: boolean; error: number; n: number }>();
  readonly #allocs = new Map<bigint, Uint8Array>();
  readonly #descriptors = new Map<bigint, string>();
  #nextHandle = 0x1000n;
  #lastError = 0;
  #impersonating: FakeIdentity | null = null;

  /** The symbols, typed as the real ones. */
  readonly native: PipeNative;

  constructor() {
    const sym = {
      CreateNamedPipeW: (name, openMode, _mode, _max, _o, _i, _t, sa) =>
        this.#createNamedPipe(wideText(name), openMode, sa),
      ConnectNamedPipe: (h, ov) => this.#connect(ptrValue(h), ov!),
      CreateFileW: (name, access, _share, _sa, _disp, flags, _t) =>
        this.#createFile(wideText(name), access, flags),
      CreateEventW: (_sa, _manual, initial, _name) => {
        const ev: FakeEvent = { kind: "event", signaled: initial !== 0, waiters: [] };
        return this.#newHandle(ev);
      },
      ReadFile: (h, buf, n, _read, ov) => this.#read(ptrValue(h), bytesOf(buf).subarray(0, n), ov!),
      WriteFile: (h, buf, n, _written, ov) =>
        this.#write(ptrValue(h), bytesOf(buf).subarray(0, n), ov!),
      GetOverlappedResult: (_h, ov, count, _wait) => {
        const r = this.#results.get(addr(ov!));
        if (r === undefined || !r.done) return this.#fail(PipeError.ERROR_IO_INCOMPLETE);
        if (r.error !== 0) return this.#fail(r.error);
        new DataView(bytesOf(count).buffer, bytesOf(count).byteOffset).setUint32(0, r.n, true);
        return 1;
      },
      CancelIoEx: (h, _ov) => {
        const key = ptrValue(h);
        this.calls.push("CancelIoEx");
        for (const op of this.#pendingOps()) {
          if (op.handle === key) this.#complete(op, PipeError.ERROR_OPERATION_ABORTED, 0);
        }
        return 1;
      },
      CloseHandle: (h) => this.#close(ptrValue(h)),
      GetLastError: () => this.#lastError,
      GetCurrentThread: () => Deno.UnsafePointer.create(0xfffffffffffffffen),
      ImpersonateNamedPipeClient: (h) => {
        const x = this.#handles.get(ptrValue(h));
        if (x?.kind !== "server" || x.inst.state !== "connected") {
          return this.#fail(PipeError.ERROR_INVALID_HANDLE);
        }
        if (x.inst.serverRead === 0) return this.#fail(PipeError.ERROR_CANNOT_IMPERSONATE);
        this.#impersonating = x.inst.clientIdentity;
        this.calls.push("ImpersonateNamedPipeClient");
        return 1;
      },
      RevertToSelf: () => {
        this.calls.push("RevertToSelf");
        if (this.revertResult !== 0) this.#impersonating = null;
        return this.revertResult;
      },
      OpenThreadToken: (_thread, _access, _asSelf, out) => {
        if (this.#impersonating === null) return this.#fail(1008 /* ERROR_NO_TOKEN */);
        const t = this.#newHandle({ kind: "token", identity: this.#impersonating });
        new DataView(bytesOf(out).buffer, bytesOf(out).byteOffset).setBigUint64(
          0,
          ptrValue(t),
          true,
        );
        return 1;
      },
      GetTokenInformation: (token, kind, buf, len, needed) =>
        this.#tokenInfo(ptrValue(token), kind, buf, len, needed!),
      ConvertStringSecurityDescriptorToSecurityDescriptorW: (sddl, _rev, out, _size) => {
        const sd = new Uint8Array(64);
        const a = this.#alloc(sd);
        this.#descriptors.set(a, wideText(sddl));
        new DataView(bytesOf(out).buffer, bytesOf(out).byteOffset).setBigUint64(0, a, true);
        return 1;
      },
      GetSecurityInfo: (h, _type, _info, owner, _g, _d, _s, sd) => {
        const x = this.#handles.get(ptrValue(h));
        if (x === undefined || x.kind === "event" || x.kind === "token") {
          return PipeError.ERROR_INVALID_HANDLE;
        }
        const ownerSid = this.#names.get(x.inst.name)?.owner ?? SID_SYSTEM;
        const block = sidBytes(ownerSid);
        const a = this.#alloc(block);
        new DataView(bytesOf(owner).buffer, bytesOf(owner).byteOffset).setBigUint64(0, a, true);
        new DataView(bytesOf(sd).buffer, bytesOf(sd).byteOffset).setBigUint64(0, a, true);
        return 0;
      },
      LookupAccountNameW: (_system, name, sid, sidSize, _domain, domainSize, _use) => {
        const found = this.accounts.get(wideText(name).toLowerCase());
        if (found === undefined) return this.#fail(PipeError.ERROR_NONE_MAPPED);
        const bytes = sidBytes(found);
        const sizeView = new DataView(bytesOf(sidSize).buffer, bytesOf(sidSize).byteOffset);
        const have = sizeView.getUint32(0, true);
        sizeView.setUint32(0, bytes.length, true);
        new DataView(bytesOf(domainSize).buffer, bytesOf(domainSize).byteOffset).setUint32(
          0,
          8,
          true,
        );
        if (sid === null || have < bytes.length) {
          return this.#fail(PipeError.ERROR_INSUFFICIENT_BUFFER);
        }
        bytesOf(sid).set(bytes);
        return 1;
      },
      LocalFree: (p) => {
        const a = ptrValue(p);
        if (!this.#allocs.delete(a)) this.violations.push(`LocalFree of 0x${a.toString(16)}`);
        this.#descriptors.delete(a);
        return null;
      },
    } satisfies PipeSymbols;
    const wait = {
      WaitForSingleObject: async (h, _ms) => {
        if (this.#impersonating !== null) this.violations.push("a wait while impersonating");
        const ev = this.#handles.get(ptrValue(h));
        if (ev?.kind !== "event") {
          this.violations.push("WaitForSingleObject on a closed handle");
          return 0xffffffff;
        }
        await Promise.resolve();
        if (!ev.signaled) await new Promise<void>((r) => ev.waiters.push(r));
        return WAIT_OBJECT_0;
      },
      WaitNamedPipeW: async (name, ms) => {
        const end = Date.now() + ms;
        const n = wideText(name);
        while (Date.now() < end) {
          const p = this.#names.get(n);
          if ([...(p?.instances ?? [])].some((i) => i.state === "listening")) return 1;
          await new Promise((r) => setTimeout(r, 5));
        }
        this.#lastError = PipeError.ERROR_SEM_TIMEOUT;
        return 0;
      },
    } satisfies PipeAsyncSymbols;
    this.native = { sym, wait };
  }

  /** Handles and allocations still open (tests expect none once everything is closed). */
  leaks(): string[] {
    return [
      ...[...this.#handles.values()].map((h) => `handle ${h.kind}`),
      ...[...this.#allocs.keys()].map((a) => `allocation 0x${a.toString(16)}`),
    ];
  }

  /** Instances of `name` waiting for a client. */
  listening(name: string): number {
    return [...(this.#names.get(name)?.instances ?? [])].filter((i) => i.state === "listening")
      .length;
  }

  #fail(code: number): 0 {
    this.#lastError = code;
    return 0;
  }

  #newHandle(h: Handle): Deno.PointerObject {
    const v = this.#nextHandle;
    this.#nextHandle += 4n;
    this.#handles.set(v, h);
    return Deno.UnsafePointer.create(v)!;
  }

  #alloc(bytes: Uint8Array): bigint {
    const a = addr(bytes);
    this.#allocs.set(a, bytes);
    return a;
  }

  *#pendingOps(): Generator<Op> {
    for (const p of this.#names.values()) {
      for (const i of p.instances) {
        if (i.connectOp) yield i.connectOp;
        if (i.readOp.server) yield i.readOp.server;
        if (i.readOp.client) yield i.readOp.client;
      }
    }
  }

  #start(handle: bigint, ov: AllowSharedBufferSource): Op {
    const ovBytes = bytesOf(ov);
    const event = new DataView(ovBytes.buffer, ovBytes.byteOffset).getBigUint64(24, true);
    const ev = this.#handles.get(event);
    if (ev?.kind === "event") ev.signaled = false;
    const op: Op = { handle, event, ovAddr: addr(ov) };
    this.#results.set(op.ovAddr, { done: false, error: 0, n: 0 });
    return op;
  }

  #complete(op: Op, error: number, n: number): void {
    this.#results.set(op.ovAddr, { done: true, error, n });
    for (const p of this.#names.values()) {
      for (const i of p.instances) {
        if (i.connectOp === op) i.connectOp = null;
        if (i.readOp.server === op) i.readOp.server = null;
        if (i.readOp.client === op) i.readOp.client = null;
      }
    }
    const ev = this.#handles.get(op.event);
    if (ev?.kind === "event") {
      ev.signaled = true;
      for (const w of ev.waiters.splice(0)) w();
    }
  }

  #createNamedPipe(
    name: string,
    openMode: number,
    sa: AllowSharedBufferSource | null,
  ): Deno.PointerValue {
    const first = (openMode & 0x00080000) !== 0;
    let p = this.#names.get(name);
    if (p !== undefined && first) {
      this.#fail(PipeError.ERROR_ACCESS_DENIED);
      return Deno.UnsafePointer.create(0xffffffffffffffffn);
    }
    if (
      p !== undefined && !first && p.creator !== this.serverIdentity.sid &&
      (this.#granted(p, this.serverIdentity) & 0x4) === 0
    ) {
      // Another instance of an existing pipe needs FILE_CREATE_PIPE_INSTANCE (its creator is
      // let through, as a real squatter would be by a DACL of its own).
      this.#fail(PipeError.ERROR_ACCESS_DENIED);
      return Deno.UnsafePointer.create(0xffffffffffffffffn);
    }
    if (p === undefined) {
      const saBytes = sa === null ? null : bytesOf(sa);
      const sd = saBytes === null
        ? 0n
        : new DataView(saBytes.buffer, saBytes.byteOffset).getBigUint64(8, true);
      const sddl = this.#descriptors.get(sd) ?? "D:(A;;GA;;;WD)";
      p = {
        owner: this.serverIdentity.sid === SID_SYSTEM
          ? SID_ADMINISTRATORS
          : this.serverIdentity.sid,
        creator: this.serverIdentity.sid,
        dacl: parseDacl(sddl),
        instances: new Set(),
      };
      this.#names.set(name, p);
    }
    const inst: Instance = {
      name,
      server: 0n,
      client: null,
      state: "listening",
      connectOp: null,
      clientFirst: false,
      toServer: [],
      toClient: [],
      serverRead: 0,
      clientIdentity: null,
      readOp: { server: null, client: null },
    };
    const h = this.#newHandle({ kind: "server", inst });
    inst.server = ptrValue(h);
    p.instances.add(inst);
    this.calls.push(`CreateNamedPipeW ${name}${first ? " first" : ""}`);
    return h;
  }

  #connect(h: bigint, ov: AllowSharedBufferSource): number {
    const x = this.#handles.get(h);
    if (x?.kind !== "server") return this.#fail(PipeError.ERROR_INVALID_HANDLE);
    if (x.inst.clientFirst) {
      x.inst.clientFirst = false;
      return this.#fail(PipeError.ERROR_PIPE_CONNECTED);
    }
    if (x.inst.state !== "listening") return this.#fail(PipeError.ERROR_NO_DATA);
    x.inst.connectOp = this.#start(h, ov);
    return this.#fail(PipeError.ERROR_IO_PENDING);
  }

  #createFile(name: string, access: number, flags: number): Deno.PointerValue {
    const bad = Deno.UnsafePointer.create(0xffffffffffffffffn);
    this.calls.push(
      `CreateFileW ${name} access=0x${access.toString(16)} flags=0x${flags.toString(16)}`,
    );
    const p = this.#names.get(name);
    if (p === undefined) {
      this.#fail(PipeError.ERROR_FILE_NOT_FOUND);
      return bad;
    }
    if ((access & ~this.#granted(p, this.identity)) !== 0) {
      this.#fail(PipeError.ERROR_ACCESS_DENIED);
      return bad;
    }
    const inst = [...p.instances].find((i) => i.state === "listening");
    if (inst === undefined) {
      this.#fail(PipeError.ERROR_PIPE_BUSY);
      return bad;
    }
    inst.state = "connected";
    inst.clientIdentity = structuredClone(this.identity);
    const h = this.#newHandle({ kind: "client", inst });
    inst.client = ptrValue(h);
    if (inst.connectOp !== null) this.#complete(inst.connectOp, 0, 0);
    else inst.clientFirst = true;
    return h;
  }

  /** What the DACL of `p` grants `who`. */
  #granted(p: PipeName, who: FakeIdentity): number {
    const sids = [
      who.sid,
      ...who.groups.filter((g) =>
        (g.attributes & SE_GROUP_ENABLED) !== 0 &&
        (g.attributes & SE_GROUP_USE_FOR_DENY_ONLY) === 0
      ).map((g) => g.sid),
    ];
    let granted = 0;
    for (const s of sids) granted |= p.dacl.get(s) ?? 0;
    return granted;
  }

  #side(h: bigint): { inst: Instance; side: "server" | "client" } | null {
    const x = this.#handles.get(h);
    if (x?.kind === "server" || x?.kind === "client") return { inst: x.inst, side: x.kind };
    return null;
  }

  #read(h: bigint, buf: Uint8Array, ov: AllowSharedBufferSource): number {
    const s = this.#side(h);
    if (s === null) return this.#fail(PipeError.ERROR_INVALID_HANDLE);
    const { inst, side } = s;
    const queue = side === "server" ? inst.toServer : inst.toClient;
    const op = this.#start(h, ov);
    op.buf = buf;
    if (queue.length > 0) {
      const n = this.#take(queue, buf);
      if (side === "server") inst.serverRead += n;
      this.#complete(op, 0, n);
      return 1;
    }
    const otherGone = inst.state === "gone" ||
      (side === "server" ? inst.client === null : inst.server === 0n);
    if (otherGone) {
      this.#complete(op, PipeError.ERROR_BROKEN_PIPE, 0);
      return this.#fail(PipeError.ERROR_BROKEN_PIPE);
    }
    inst.readOp[side] = op;
    return this.#fail(PipeError.ERROR_IO_PENDING);
  }

  #take(queue: Uint8Array[], buf: Uint8Array): number {
    let n = 0;
    while (queue.length > 0 && n < buf.length) {
      const head = queue[0];
      const k = Math.min(head.length, buf.length - n);
      buf.set(head.subarray(0, k), n);
      n += k;
      if (k === head.length) queue.shift();
      else queue[0] = head.subarray(k);
    }
    return n;
  }

  #write(h: bigint, bytes: Uint8Array, ov: AllowSharedBufferSource): number {
    const s = this.#side(h);
    if (s === null) return this.#fail(PipeError.ERROR_INVALID_HANDLE);
    const { inst, side } = s;
    const other = side === "server" ? "client" : "server";
    const otherGone = inst.state !== "connected" ||
      (other === "client" ? inst.client === null : inst.server === 0n);
    if (otherGone) return this.#fail(PipeError.ERROR_NO_DATA);
    this.calls.push(`WriteFile ${side} ${bytes.length}`);
    const queue = other === "server" ? inst.toServer : inst.toClient;
    queue.push(bytes.slice());
    const pending = inst.readOp[other];
    if (pending !== null) {
      const n = this.#take(queue, pending.buf!);
      if (other === "server") inst.serverRead += n;
      this.#complete(pending, 0, n);
    }
    const op = this.#start(h, ov);
    this.#complete(op, 0, bytes.length);
    return 1;
  }

  #close(h: bigint): number {
    const x = this.#handles.get(h);
    if (x === undefined) {
      this.violations.push(`CloseHandle of 0x${h.toString(16)}, not open`);
      return this.#fail(PipeError.ERROR_INVALID_HANDLE);
    }
    this.#handles.delete(h);
    if (x.kind === "event") {
      if (x.waiters.length > 0) this.violations.push("an event closed while a wait is on it");
      return 1;
    }
    if (x.kind === "token") return 1;
    const inst = x.inst;
    if (x.kind === "server") inst.server = 0n;
    else inst.client = null;
    const otherSide = x.kind === "server" ? "client" : "server";
    const pending = inst.readOp[otherSide];
    if (pending !== null) this.#complete(pending, PipeError.ERROR_BROKEN_PIPE, 0);
    const mine = inst.readOp[x.kind];
    if (mine !== null) this.violations.push("a handle closed with a read pending");
    if (inst.connectOp !== null && x.kind === "server") {
      this.violations.push("a pipe closed with a connect pending");
    }
    if (inst.state === "connected" && x.kind === "server") inst.state = "gone";
    if (inst.server === 0n) {
      inst.state = "gone";
      if (inst.client === null) {
        const p = this.#names.get(inst.name);
        p?.instances.delete(inst);
        if (p !== undefined && p.instances.size === 0) this.#names.delete(inst.name);
      }
    }
    return 1;
  }

  #tokenInfo(
    token: bigint,
    kind: number,
    buf: AllowSharedBufferSource | null,
    len: number,
    needed: AllowSharedBufferSource,
  ): number {
    const t = this.#handles.get(token);
    if (t?.kind !== "token") return this.#fail(PipeError.ERROR_INVALID_HANDLE);
    const entries = kind === 1
      ? [{ sid: t.identity.sid, attributes: 0 }]
      : kind === 2
      ? t.identity.groups
      : null;
    if (entries === null) return this.#fail(87 /* ERROR_INVALID_PARAMETER */);
    const head = kind === 1 ? 0 : 8;
    const sids = entries.map((e) => sidBytes(e.sid));
    const size = head + 16 * entries.length + sids.reduce((a, s) => a + s.length, 0);
    const nv = bytesOf(needed);
    new DataView(nv.buffer, nv.byteOffset).setUint32(0, size, true);
    if (buf === null || len < size) return this.#fail(PipeError.ERROR_INSUFFICIENT_BUFFER);
    const out = bytesOf(buf);
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const base = addr(buf);
    if (kind === 2) v.setUint32(0, entries.length, true);
    let at = head + 16 * entries.length;
    entries.forEach((e, i) => {
      v.setBigUint64(head + 16 * i, base + BigInt(at), true);
      v.setUint32(head + 16 * i + 8, e.attributes, true);
      out.set(sids[i], at);
      at += sids[i].length;
    });
    return 1;
  }
}
