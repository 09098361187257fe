#!/usr/bin/python3
"""Generates nat_vectors.json: TCP packets before and after kconnect's NAT rewrite, all built
by scapy, for src/stack/tcp_nat_test.ts.

Run with the Debian python (it has scapy): /usr/bin/python3 make_nat_vectors.py > nat_vectors.json
The output is deterministic.

The NAT (src/stack/tcp_nat.ts) turns a program's packet S:sp -> D:dp into peer:natPort ->
tun:listenPort, and the listener's tun:listenPort -> peer:natPort back into D:dp -> S:sp. Only
addresses, ports and checksums change. Here both the input and the expected output are built
from fields by scapy, which computes every checksum from scratch; kconnect updates them
incrementally (RFC 1624), so equal bytes check that independently.

Each flow: the addresses (tun, peer, listenPort, app, dst), the NAT port the test expects the
NAT to pick (the first free one, 1024), and packets:
  syn     the program's SYN (held by the NAT, then injected rewritten once the dial succeeded)
  synack  the listener's SYN-ACK (rewritten back towards the program)
  data    the program's first data segment (rewritten towards the listener)
each as {"in": hex, "out": hex}.
"""
import json

from scapy.all import IP, TCP, Raw, raw
from scapy.layers.inet6 import IPv6

LINUX_SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (2914824519, 0)), ("NOP", None),
                  ("WScale", 7)]
NAT_PORT = 1024  # the NAT's first free port
REQUEST = b"GET / HTTP/1.1\r\nHost: web.default\r\n\r\n"


def ip4(src, dst, ident):
    return IP(src=src, dst=dst, id=ident, flags="DF", ttl=64)


def ip6(src, dst, fl):
    return IPv6(src=src, dst=dst, hlim=64, fl=fl)


def flow(family, tun, peer, listen, app, dst, sport, dport):
    mk = ip4 if family == 4 else ip6
    # Distinct IPv4 ids / IPv6 flow labels per packet, so header fields that must survive the
    # rewrite are not all zero.
    hdr = (lambda src, d, n: mk(src, d, 0x1c40 + n)) if family == 4 else \
        (lambda src, d, n: mk(src, d, 0x5a5a0 + n))
    syn_tcp = dict(seq=0x8a1f3e07, flags="S", window=64240, options=LINUX_SYN_OPTS)
    synack_tcp = dict(seq=0x3c2d1e0f, ack=0x8a1f3e08, flags="SA", window=65160,
                      options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (11, 2914824519)),
                               ("NOP", None), ("WScale", 7)])
    data_tcp = dict(seq=0x8a1f3e08, ack=0x3c2d1e10, flags="PA", window=502,
                    options=[("NOP", None), ("NOP", None), ("Timestamp", (2914824530, 11))])
    packets = {
        "syn": (hdr(app, dst, 1) / TCP(sport=sport, dport=dport, **syn_tcp),
                hdr(peer, tun, 1) / TCP(sport=NAT_PORT, dport=listen, **syn_tcp)),
        "synack": (hdr(tun, peer, 2) / TCP(sport=listen, dport=NAT_PORT, **synack_tcp),
                   hdr(dst, app, 2) / TCP(sport=dport, dport=sport, **synack_tcp)),
        "data": (hdr(app, dst, 3) / TCP(sport=sport, dport=dport, **data_tcp) / Raw(REQUEST),
                 hdr(peer, tun, 3) / TCP(sport=NAT_PORT, dport=listen, **data_tcp) / Raw(REQUEST)),
    }
    return {
        "family": family,
        "tun": tun,
        "peer": peer,
        "listenPort": listen,
        "app": app,
        "sport": sport,
        "dst": dst,
        "dport": dport,
        "natPort": NAT_PORT,
        # raw() builds the bytes, computing lengths and checksums from scratch.
        "packets": {k: {"in": raw(a).hex(), "out": raw(b).hex()} for k, (a, b) in packets.items()},
    }


vectors = {
    "generator": "scapy (make_nat_vectors.py)",
    "flows": [
        flow(4, "198.18.0.1", "198.18.0.2", 40000, "198.18.0.1", "10.96.0.10", 51000, 80),
        flow(6, "fd00:6b63::1", "fd00:6b63::2", 40001, "fd00:6b63::1", "fd00:96::10", 51000, 443),
    ],
}
print(json.dumps(vectors, indent=2))
