/**
 * Packets with headroom. Every packet the flow engine writes to its TUN is a view whose own
 * buffer has {@linkcode TUN_HEADROOM} free bytes right before it: packets read from the TUN (the
 * engine reads at that offset and rewrites them in place) and packets it makes up (built by
 * {@linkcode allocPacket} or kept by {@linkcode copyPacket}). So the engine writes each one as
 * {@linkcode withHeadroom}'s wider view at offset `TUN_HEADROOM`, and a driver that needs a
 * header in front (macOS utun) puts it there, without copying the packet on either side.
 *
 * @module
 */
import { TUN_HEADROOM } from "../tun/device.ts";

/**
 * A zeroed packet of `length` bytes, with {@linkcode TUN_HEADROOM} bytes of its own buffer in
 * front of it.
 *
 * @example
 * ```ts
 * import { allocPacket } from "./packet_buffer.ts";
 * const p = allocPacket(40);
 * if (p.length !== 40 || p.byteOffset !== 4) throw new Error("unexpected");
 * ```
 */
export function allocPacket(length: number): Uint8Array {
  return new Uint8Array(TUN_HEADROOM + length).subarray(TUN_HEADROOM);
}

/**
 * A copy of `packet` with {@linkcode TUN_HEADROOM} bytes in front, for a packet that is kept
 * (a held SYN) and written later: the one copy that keeping it needs anyway.
 *
 * @example
 * ```ts
 * import { copyPacket } from "./packet_buffer.ts";
 * const p = copyPacket(new Uint8Array([0x45, 0, 0, 20]));
 * if (p[0] !== 0x45 || p.byteOffset !== 4) throw new Error("unexpected");
 * ```
 */
export function copyPacket(packet: Uint8Array): Uint8Array {
  const copy = allocPacket(packet.length);
  copy.set(packet);
  return copy;
}

/**
 * The buffer to write `packet` from at offset {@linkcode TUN_HEADROOM}: a view of the same
 * memory that starts `TUN_HEADROOM` bytes earlier. Null when the packet's buffer has fewer
 * bytes than that in front of it. The bytes in front must belong to no one else (the packet was
 * made by {@linkcode allocPacket} or {@linkcode copyPacket}, or read at that offset): a driver
 * may overwrite them.
 *
 * @example
 * ```ts
 * import { allocPacket, withHeadroom } from "./packet_buffer.ts";
 * const p = allocPacket(20);
 * const frame = withHeadroom(p)!; // tun.write([frame], TUN_HEADROOM)
 * if (frame.buffer !== p.buffer || frame.length !== 24) throw new Error("unexpected");
 * if (withHeadroom(new Uint8Array(20)) !== null) throw new Error("unexpected");
 * ```
 */
export function withHeadroom(packet: Uint8Array): Uint8Array | null {
  if (packet.byteOffset < TUN_HEADROOM) return null;
  return new Uint8Array(
    packet.buffer,
    packet.byteOffset - TUN_HEADROOM,
    packet.length + TUN_HEADROOM,
  );
}
