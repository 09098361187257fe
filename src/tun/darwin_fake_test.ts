/**
 * A recording fake of the libSystem symbols `darwin.ts` uses, modelling a macOS kernel with the
 * utun control: descriptors, close-on-exec, `CTLIOCGINFO`, `connect` picking a free unit, the
 * name option, a utun queue of packets with their 4-byte family header (`EAGAIN` when empty),
 * `poll` readiness on the utun and on a pipe, and scripted errors. Typed as the real binding, so
 * `deno check` keeps the two in step. errno lives in memory the driver reads through `__error()`,
 * as on a Mac (needs `--allow-ffi` for `Deno.UnsafePointer.of`).
 *
 * It models the Apple-arm64 calling convention of the variadic calls: `ioctl` and `fcntl` take
 * their argument from the 9th parameter (the first stack slot, where Apple's `va_arg` looks)
 * and check that the 3rd (where x86_64 looks) is the same.
 *
 * (A `_test.ts` name so `deno test` loads it only with the tests; it holds no tests itself.)
 *
 * @module
 */
import { CTLIOCGINFO, type DarwinLibc, F_SETFD, FD_CLOEXEC, MSG_DONTWAIT } from "./darwin_libc.ts";
import { DarwinErrno as E } from "./darwin_libc.ts";

type Kind = "control" | "utun" | "pipe-read" | "pipe-write";

interface FdState {
  kind: Kind;
  cloexec: boolean;
  /** For pipe ends: the shared byte count; for control/utun: the unit once connected. */
  pipe?: { bytes: number };
  unit?: number;
}

/** One recorded call: its name and a readable summary of its arguments. */
export interface FakeCall {
  name: string;
  args: string;
}

/** The fake kernel and its bound symbols. */
export class FakeDarwin {
  /** The kernel control id of `com.apple.net.utun_control` on this fake. */
  readonly ctlId = 0x2a;
  /** utun units already taken by someone else (unit = N + 1 for utunN). */
  readonly takenUnits = new Set<number>();
  /** Whether the process is root (connect needs it). */
  root = true;
  /** Every call, in order. */
  readonly calls: FakeCall[] = [];
  /** Frames the driver sent (header included), copies. */
  readonly sent: Uint8Array[] = [];
  /** The buffers `send` was given (not copies): to check no copy was made. */
  readonly sentBuffers: Uint8Array[] = [];
  /** The buffers `recv` was given (not copies). */
  readonly recvBuffers: Uint8Array[] = [];
  /** Frames waiting to be read from the utun (header included). */
  readonly queue: Uint8Array[] = [];
  /** Descriptors closed while a poll that watches them was running. */
  readonly closedUnderPoll: number[] = [];
  /** How each poll ended: woken by a readable descriptor, by its timeout, or by a closed fd. */
  readonly pollEnds: ("ready" | "timeout" | "closed")[] = [];
  /** Polls started so far, and running now. */
  pollsStarted = 0;
  pollsRunning = 0;
  readonly fds = new Map<number, FdState>();
  readonly closed: number[] = [];
  #nextFd = 3;
  #errnoCell = new Int32Array(1);
  #failures = new Map<string, { errno: number; count: number; skip: number }[]>();
  #waiters: (() => void)[] = [];
  #polledFds = new Set<number>();

  /**
   * Makes the next `count` calls of `name` fail with `errno` (queued after earlier scripts).
   * `Infinity`: every call from now on. `skip`: let that many calls succeed first.
   */
  fail(name: keyof DarwinLibc, errno: number, count = Infinity, skip = 0): void {
    const list = this.#failures.get(name) ?? [];
    list.push({ errno, count, skip });
    this.#failures.set(name, list);
  }

  /** Puts a frame on the utun queue, as if the kernel routed a packet into it. */
  inject(frame: Uint8Array): void {
    this.queue.push(frame.slice());
    this.#wake();
  }

  /** Open descriptors. */
  get openFds(): number[] {
    return [...this.fds.keys()];
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #scripted(name: string): number | null {
    const list = this.#failures.get(name);
    if (!list || list.length === 0) return null;
    const head = list[0];
    if (head.skip > 0) {
      head.skip--;
      return null;
    }
    head.count--;
    if (head.count <= 0) list.shift();
    return head.errno;
  }

  #err(errno: number): number {
    this.#errnoCell[0] = errno;
    return -1;
  }

  #errBig(errno: number): bigint {
    return BigInt(this.#err(errno));
  }

  #record(name: string, args: string): void {
    this.calls.push({ name, args });
  }

  #readable(fd: number): boolean {
    const s = this.fds.get(fd);
    if (s === undefined) return false;
    if (s.kind === "utun") return this.queue.length > 0;
    if (s.kind === "pipe-read") return s.pipe!.bytes > 0;
    return false;
  }

  /** The symbols, typed as the real binding. */
  readonly symbols: DarwinLibc = {
    socket: (domain, type, protocol) => {
      this.#record("socket", `${domain} ${type} ${protocol}`);
      const e = this.#scripted("socket");
      if (e !== null) return this.#err(e);
      if (domain !== 32 || type !== 2 || protocol !== 2) return this.#err(E.EPROTONOSUPPORT);
      const fd = this.#nextFd++;
      this.fds.set(fd, { kind: "control", cloexec: false });
      return fd;
    },
    fcntl: (fd, cmd, a3, _a4, _a5, _a6, _a7, _a8, a9) => {
      this.#record("fcntl", `${fd} ${cmd} ${a3} ${a9}`);
      const e = this.#scripted("fcntl");
      if (e !== null) return this.#err(e);
      const s = this.fds.get(fd);
      if (s === undefined) return this.#err(E.EBADF);
      if (BigInt(a3) !== BigInt(a9)) throw new Error("fcntl: 3rd and 9th argument differ");
      if (cmd !== F_SETFD) return this.#err(E.EINVAL);
      s.cloexec = (Number(a9) & FD_CLOEXEC) !== 0; // Apple arm64 reads the 9th
      return 0;
    },
    ioctl: (fd, request, p3, _a4, _a5, _a6, _a7, _a8, p9) => {
      this.#record("ioctl", `${fd} 0x${BigInt(request).toString(16)}`);
      const e = this.#scripted("ioctl");
      if (e !== null) return this.#err(e);
      if (!this.fds.has(fd)) return this.#err(E.EBADF);
      if (p3 !== p9) throw new Error("ioctl: 3rd and 9th argument differ");
      if (BigInt(request) !== BigInt(CTLIOCGINFO)) return this.#err(E.ENOTTY);
      const info = p9 as Uint8Array;
      if (info.length !== 100) return this.#err(E.EFAULT);
      const end = info.indexOf(0, 4);
      const name = new TextDecoder().decode(info.subarray(4, end));
      if (name !== "com.apple.net.utun_control") return this.#err(E.ENOENT);
      new DataView(info.buffer, info.byteOffset).setUint32(0, this.ctlId, true);
      return 0;
    },
    connect: (fd, addr, len) => {
      const a = addr as Uint8Array;
      const v = new DataView(a.buffer, a.byteOffset, a.byteLength);
      this.#record("connect", `${fd} id=${v.getUint32(4, true)} unit=${v.getUint32(8, true)}`);
      const e = this.#scripted("connect");
      if (e !== null) return this.#err(e);
      const s = this.fds.get(fd);
      if (s === undefined) return this.#err(E.EBADF);
      if (
        len !== 32 || a.length !== 32 || a[0] !== 32 || a[1] !== 32 || v.getUint16(2, true) !== 2
      ) {
        return this.#err(E.EINVAL);
      }
      if (v.getUint32(4, true) !== this.ctlId) return this.#err(E.ENOENT);
      if (!this.root) return this.#err(E.EPERM);
      let unit = v.getUint32(8, true);
      if (unit === 0) {
        unit = 1;
        while (this.takenUnits.has(unit)) unit++;
      } else if (this.takenUnits.has(unit)) {
        return this.#err(E.EBUSY);
      }
      this.takenUnits.add(unit);
      s.kind = "utun";
      s.unit = unit;
      return 0;
    },
    getsockopt: (fd, level, name, value, lenPtr) => {
      this.#record("getsockopt", `${fd} ${level} ${name}`);
      const e = this.#scripted("getsockopt");
      if (e !== null) return this.#err(e);
      const s = this.fds.get(fd);
      if (s?.kind !== "utun") return this.#err(E.ENOTCONN);
      if (level !== 2 || name !== 2) return this.#err(E.ENOTSUP);
      const out = value as Uint8Array;
      const lenBytes = lenPtr as Uint8Array;
      const lv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 4);
      const text = new TextEncoder().encode(`utun${s.unit! - 1}\0`);
      if (lv.getUint32(0, true) < text.length || out.length < text.length) {
        return this.#err(E.EMSGSIZE);
      }
      out.set(text);
      lv.setUint32(0, text.length, true);
      return 0;
    },
    pipe: (fds) => {
      this.#record("pipe", "");
      const e = this.#scripted("pipe");
      if (e !== null) return this.#err(e);
      const shared = { bytes: 0 };
      const r = this.#nextFd++;
      const w = this.#nextFd++;
      this.fds.set(r, { kind: "pipe-read", cloexec: false, pipe: shared });
      this.fds.set(w, { kind: "pipe-write", cloexec: false, pipe: shared });
      const b = fds as Uint8Array;
      const v = new DataView(b.buffer, b.byteOffset, 8);
      v.setInt32(0, r, true);
      v.setInt32(4, w, true);
      return 0;
    },
    recv: (fd, buf, len, flags) => {
      const e = this.#scripted("recv");
      if (e !== null) return this.#errBig(e);
      const s = this.fds.get(fd);
      if (s?.kind !== "utun") return this.#errBig(E.EBADF);
      if ((flags & MSG_DONTWAIT) === 0) throw new Error("recv without MSG_DONTWAIT would block");
      const target = buf as Uint8Array;
      this.recvBuffers.push(target);
      const frame = this.queue.shift();
      if (frame === undefined) return this.#errBig(E.EAGAIN);
      const n = Math.min(Number(len), frame.length, target.length); // a datagram is truncated
      target.set(frame.subarray(0, n));
      return BigInt(n);
    },
    send: (fd, buf, len, flags) => {
      const e = this.#scripted("send");
      if (e !== null) return this.#errBig(e);
      const s = this.fds.get(fd);
      if (s?.kind !== "utun") return this.#errBig(E.EBADF);
      if ((flags & MSG_DONTWAIT) === 0) throw new Error("send without MSG_DONTWAIT may block");
      const frame = buf as Uint8Array;
      if (Number(len) !== frame.length) throw new Error("send: length differs from the buffer");
      this.sentBuffers.push(frame);
      this.sent.push(frame.slice());
      return BigInt(len);
    },
    write: (fd, buf, len) => {
      this.#record("write", `${fd} ${len}`);
      const s = this.fds.get(fd);
      if (s?.kind !== "pipe-write") return this.#errBig(E.EBADF);
      s.pipe!.bytes += Math.min(Number(len), (buf as Uint8Array).length);
      this.#wake();
      return BigInt(len);
    },
    close: (fd) => {
      this.#record("close", `${fd}`);
      if (!this.fds.has(fd)) return this.#err(E.EBADF);
      if (this.pollsRunning > 0 && this.#polledFds.has(fd)) this.closedUnderPoll.push(fd);
      const s = this.fds.get(fd)!;
      if (s.unit !== undefined) this.takenUnits.delete(s.unit); // the interface goes away
      this.fds.delete(fd);
      this.closed.push(fd);
      return 0;
    },
    __error: () => Deno.UnsafePointer.of(this.#errnoCell),
    poll: async (fdsBuf, nfds, timeout) => {
      const b = fdsBuf as Uint8Array;
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const watched: number[] = [];
      for (let i = 0; i < nfds; i++) {
        const fd = v.getInt32(i * 8, true);
        if ((v.getInt16(i * 8 + 4, true) & 1) === 0) throw new Error("poll without POLLIN");
        watched.push(fd);
      }
      this.pollsStarted++;
      this.pollsRunning++;
      for (const fd of watched) this.#polledFds.add(fd);
      try {
        for (;;) {
          for (const fd of watched) {
            if (!this.fds.has(fd)) {
              this.pollEnds.push("closed"); // a real poll would report POLLNVAL
              return this.#err(E.EBADF);
            }
          }
          const ready = watched.filter((fd) => this.#readable(fd));
          if (ready.length > 0) {
            for (let i = 0; i < nfds; i++) {
              v.setInt16(i * 8 + 6, ready.includes(v.getInt32(i * 8, true)) ? 1 : 0, true);
            }
            this.pollEnds.push("ready");
            return ready.length;
          }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timedOut = await new Promise<boolean>((resolve) => {
            this.#waiters.push(() => resolve(false));
            timer = setTimeout(() => resolve(true), timeout);
          });
          clearTimeout(timer);
          if (timedOut) {
            this.pollEnds.push("timeout");
            return 0;
          }
        }
      } finally {
        this.pollsRunning--;
        if (this.pollsRunning === 0) this.#polledFds.clear();
      }
    },
  };
}

/** A recorded command run, and a scripted result for it. */
export class FakeRunner {
  readonly runs: string[] = [];
  /** Results by a substring of the command line; the first match wins; default success. */
  readonly results: { match: string; result: { code: number; stdout: string; stderr: string } }[] =
    [];
  run = (program: string, args: string[]) => {
    const line = `${program} ${args.join(" ")}`;
    this.runs.push(line);
    const hit = this.results.find((r) => line.includes(r.match));
    return Promise.resolve(hit?.result ?? { code: 0, stdout: "", stderr: "" });
  };
}
