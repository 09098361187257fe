#!/usr/bin/python3
"""Generates vectors.json: packets built by scapy, with the fields scapy reports.

Run with the Debian python (it has scapy): /usr/bin/python3 make_vectors.py
The output is deterministic (fixed seed, no timestamps).

Each vector has:
  name, hex (the packet, possibly followed by `padding` junk bytes that are not part of it),
  ip: fields of the IPv4 or IPv6 header as scapy dissects them,
  l4: {proto, offset} where the upper layer starts (IPv6: after extension headers),
  tcp / udp / icmp / icmpv6: fields of that layer as scapy dissects them, with the checksum
    scapy computed and whether it verifies ("chksum_ok", computed independently by scapy),
  emit: whether kconnect's emitters can express the packet (test re-emits and compares bytes).
"""
import json
import os
import random

from scapy.all import (ICMP, IP, TCP, UDP, Raw, fragment, raw, IPOption_RR, IPOption_NOP)
from scapy.layers.inet6 import (IPv6, ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6DestUnreach,
                                ICMPv6ND_NS, ICMPv6TimeExceeded, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment,
                                RouterAlert, fragment6, in6_chksum)
from scapy.utils import checksum
import scapy

rng = random.Random(1071)
vectors = []

LINUX_SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (2914824519, 0)), ("NOP", None),
                  ("WScale", 7)]


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def tcp_options(t):
    out = {}
    for opt in t.options:
        name, val = opt
        if name == "MSS":
            out["mss"] = val
        elif name == "WScale":
            out["windowScale"] = val
        elif name == "SAckOK":
            out["sackPermitted"] = True
        elif name == "Timestamp":
            out["timestamp"] = {"value": val[0], "echo": val[1]}
        elif name == "SAck":
            out["sack"] = [[val[i], val[i + 1]] for i in range(0, len(val), 2)]
    return out


def l4_sum_ok(ip, proto, seg):
    if ip.version == 4:
        ph = raw(ip)[12:20] + bytes([0, proto]) + len(seg).to_bytes(2, "big")
        return checksum(ph + seg) == 0
    return in6_chksum(proto, ip, seg) == 0


def describe(name, pkt_bytes, emit, padding=0, note=None):
    """Re-dissects the built bytes and records scapy's view of every field."""
    first = pkt_bytes[0] >> 4
    ip = IP(pkt_bytes) if first == 4 else IPv6(pkt_bytes)
    v = {"name": name, "hex": (pkt_bytes + rand_bytes(padding)).hex(), "emit": emit}
    if padding:
        v["padding"] = padding
    if note:
        v["note"] = note
    if first == 4:
        v["ip"] = {
            "version": 4, "ihl": ip.ihl, "tos": ip.tos, "len": ip.len, "id": ip.id,
            "df": bool(ip.flags.DF), "mf": bool(ip.flags.MF), "frag": ip.frag, "ttl": ip.ttl,
            "proto": ip.proto, "chksum": ip.chksum, "src": ip.src, "dst": ip.dst,
            "chksum_ok": checksum(pkt_bytes[:ip.ihl * 4]) == 0,
        }
        proto = ip.proto
        offset = ip.ihl * 4
        upper = ip.payload
        is_frag = ip.flags.MF or ip.frag > 0
        if ip.frag > 0:
            upper = None
    else:
        v["ip"] = {
            "version": 6, "tc": ip.tc, "fl": ip.fl, "plen": ip.plen, "nh": ip.nh,
            "hlim": ip.hlim, "src": ip.src, "dst": ip.dst,
        }
        layer = ip.payload
        offset = 40
        proto = ip.nh
        is_frag = False
        while isinstance(layer, (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting)):
            offset += len(raw(layer)) - len(raw(layer.payload))
            proto = layer.nh
            layer = layer.payload
        if isinstance(layer, IPv6ExtHdrFragment):
            is_frag = True
        upper = layer
    v["l4"] = {"proto": proto, "offset": offset}
    seg = pkt_bytes[offset:len(ip)] if first == 4 else pkt_bytes[offset:40 + ip.plen]
    if upper is not None and not is_frag and isinstance(upper, TCP):
        t = upper
        v["tcp"] = {
            "sport": t.sport, "dport": t.dport, "seq": t.seq, "ack": t.ack,
            "dataofs": t.dataofs, "flags": int(t.flags), "window": t.window,
            "chksum": t.chksum, "urgptr": t.urgptr, "options": tcp_options(t),
            "payload": bytes(t.payload).hex(), "chksum_ok": l4_sum_ok(ip, 6, seg),
        }
    elif upper is not None and not is_frag and isinstance(upper, UDP):
        u = upper
        v["udp"] = {
            "sport": u.sport, "dport": u.dport, "len": u.len, "chksum": u.chksum,
            "payload": bytes(u.payload).hex(),
            "chksum_ok": u.chksum == 0 or l4_sum_ok(ip, 17, seg),
        }
    elif upper is not None and not is_frag and isinstance(upper, ICMP):
        c = upper
        v["icmp"] = {
            "type": c.type, "code": c.code, "chksum": c.chksum, "id": c.id, "seq": c.seq,
            "body": seg[8:].hex(), "chksum_ok": checksum(seg) == 0,
        }
    elif upper is not None and not is_frag and proto == 58:
        c = upper
        v["icmpv6"] = {
            "type": c.type, "code": c.code, "chksum": c.cksum,
            "id": getattr(c, "id", None), "seq": getattr(c, "seq", None),
            "body": seg[8:].hex(), "chksum_ok": in6_chksum(58, ip, seg) == 0,
        }
    vectors.append(v)


def add(name, pkt, emit, **kw):
    describe(name, raw(pkt), emit, **kw)


S4, D4 = "10.0.0.1", "10.96.0.10"
S6, D6 = "fd00:6b63::1", "fd00:6b63:0:1::a"

# ---- IPv4 / TCP ----
add("ipv4 tcp syn linux options", IP(src=S4, dst=D4, id=0, flags="DF", ttl=64) /
    TCP(sport=43512, dport=80, seq=1795125441, flags="S", window=64240, options=LINUX_SYN_OPTS),
    True)
add("ipv4 tcp syn-ack linux options",
    IP(src=D4, dst=S4, id=0, flags="DF", ttl=63) /
    TCP(sport=80, dport=43512, seq=3011234567, ack=1795125442, flags="SA", window=65160,
        options=[("MSS", 1400), ("SAckOK", b""), ("Timestamp", (1234, 2914824519)),
                 ("NOP", None), ("WScale", 9)]), True)
add("ipv4 tcp syn mss only", IP(src=S4, dst=D4, id=0, flags="DF") /
    TCP(sport=1, dport=2, flags="S", options=[("MSS", 536)]), True)
add("ipv4 tcp syn no timestamps", IP(src=S4, dst=D4, id=0, flags="DF") /
    TCP(sport=40000, dport=443, seq=7, flags="S", window=29200,
        options=[("MSS", 1460), ("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None),
                 ("WScale", 7)]), True)
add("ipv4 tcp psh-ack odd payload", IP(src=S4, dst=D4, id=54321, flags="DF") /
    TCP(sport=43512, dport=80, seq=1795125442, ack=3011234568, flags="PA", window=502,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (2914824600, 1234))]) /
    Raw(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"), True)
add("ipv4 tcp ack with sack blocks", IP(src=S4, dst=D4, id=2, flags="DF") /
    TCP(sport=43512, dport=80, seq=100, ack=5000, flags="A", window=1000,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (10, 20)), ("NOP", None),
                 ("NOP", None), ("SAck", (6448, 7896, 9344, 10792))]), True)
add("ipv4 tcp ack with 4 sack blocks", IP(src=S4, dst=D4, id=3, flags="DF") /
    TCP(sport=43512, dport=80, seq=100, ack=5000, flags="A", window=1000,
        options=[("NOP", None), ("NOP", None),
                 ("SAck", (1, 2, 3, 4, 0xfffffff0, 0xffffffff, 0x80000000, 0x80000001))]), True)
add("ipv4 tcp fin-ack", IP(src=S4, dst=D4, id=9, flags="DF") /
    TCP(sport=43512, dport=80, seq=1795125471, ack=3011234999, flags="FA", window=501), True)
add("ipv4 tcp rst", IP(src=D4, dst=S4, id=0, flags="DF") /
    TCP(sport=80, dport=43512, seq=0, ack=1795125442, flags="RA", window=0), True)
add("ipv4 tcp seq wrap", IP(src=S4, dst=D4, id=0xffff, flags=0) /
    TCP(sport=65535, dport=65535, seq=0xfffffff0, ack=0xffffffff, flags="A", window=65535) /
    Raw(rand_bytes(40)), True)
add("ipv4 tcp all flags urgent", IP(src=S4, dst=D4, id=1, flags="DF") /
    TCP(sport=1000, dport=2000, seq=1, ack=2, flags="FSRPAUEC", urgptr=3, window=4) /
    Raw(b"abc"), True)
add("ipv4 tcp scapy option order", IP(src=S4, dst=D4) /
    TCP(sport=1234, dport=80, flags="S",
        options=[("WScale", 2), ("MSS", 536), ("SAckOK", b""), ("EOL", None)]), False)
add("ipv4 tcp unknown options", IP(src=S4, dst=D4) /
    TCP(sport=1234, dport=80, flags="S",
        options=[("MSS", 1200), (30, b"\x00\x81\x02\x03\x04\x05\x06\x07\x08\x09"),
                 (254, b"\xf9\x89"), ("NOP", None), ("WScale", 14)]), False)
add("ipv4 tcp large payload", IP(src=S4, dst=D4, id=77, flags="DF") /
    TCP(sport=5001, dport=39000, seq=123456789, ack=987654321, flags="A", window=1024) /
    Raw(rand_bytes(1447)), True)
add("ipv4 options tcp", IP(src=S4, dst=D4, options=[IPOption_RR(routers=["1.2.3.4"])]) /
    TCP(sport=9, dport=9, flags="S"), False)
add("ipv4 tos id no-df", IP(src=S4, dst=D4, tos=0xb9, id=4242) /
    TCP(sport=9, dport=9, flags="A"), False)
add("ipv4 tcp id no-df", IP(src=S4, dst=D4, id=4242, flags=0, ttl=1) /
    TCP(sport=9, dport=9, flags="A"), True)
add("ipv4 tcp ethernet padding", IP(src=S4, dst=D4, id=0, flags="DF") /
    TCP(sport=80, dport=43512, flags="A", seq=5, ack=6), True, padding=6)

# ---- IPv4 / UDP ----
add("ipv4 udp dns odd payload", IP(src=S4, dst=D4, id=0, flags="DF") /
    UDP(sport=53000, dport=53) / Raw(bytes.fromhex("12340100000100000000000003776562000001")),
    True)
add("ipv4 udp empty", IP(src=S4, dst=D4, id=0, flags="DF") / UDP(sport=1, dport=2), True)
add("ipv4 udp zero checksum", IP(src=S4, dst=D4, id=0, flags="DF") /
    UDP(sport=5000, dport=5001, chksum=0) / Raw(b"no checksum here"), False)
# A payload whose checksum computes to 0: scapy sends it as 0xffff.
base = IP(src=S4, dst=D4, id=0, flags="DF") / UDP(sport=7777, dport=8888) / Raw(b"zz\x00\x00")
b = bytearray(raw(base))
b[26:28] = b"\x00\x00"
ph = b[12:20] + bytes([0, 17]) + (len(b) - 20).to_bytes(2, "big")
s = (~checksum(bytes(ph + b[20:])) & 0xffff)  # folded sum with checksum field 0 and X = 0
x = (~s) & 0xffff
pkt = IP(src=S4, dst=D4, id=0, flags="DF") / UDP(sport=7777, dport=8888) / \
    Raw(b"zz" + x.to_bytes(2, "big"))
assert pkt.__class__(raw(pkt))[UDP].chksum == 0xffff, "checksum-0 case not reached"
add("ipv4 udp checksum computes to zero", pkt, True)
add("ipv4 udp large odd", IP(src=D4, dst=S4, id=0, flags="DF") / UDP(sport=53, dport=53000) /
    Raw(rand_bytes(1201)), True)

# ---- IPv4 fragments ----
big = IP(src=S4, dst=D4, id=31337) / UDP(sport=4000, dport=4001) / Raw(rand_bytes(300))
for i, frag in enumerate(fragment(big, fragsize=128)):
    add("ipv4 udp fragment %d" % i, frag, False)

# ---- ICMPv4 ----
add("icmp echo request", IP(src=S4, dst=D4, id=0, flags="DF") /
    ICMP(type=8, id=0x1234, seq=1) / Raw(rand_bytes(56)), True)
add("icmp echo reply odd", IP(src=D4, dst=S4, id=0, flags="DF") /
    ICMP(type=0, id=0x1234, seq=65535) / Raw(b"odd"), True)
invoking = raw(IP(src=S4, dst=D4, id=5, flags="DF") / UDP(sport=53000, dport=9) / Raw(b"ping!"))
for code in (0, 1, 2, 3, 13):
    add("icmp unreachable code %d" % code, IP(src=D4, dst=S4, id=0, flags="DF") /
        ICMP(type=3, code=code) / Raw(invoking), True)
big_invoking = raw(IP(src=S4, dst=D4, id=6, flags="DF") / UDP(sport=1, dport=2) /
                   Raw(rand_bytes(1000)))
add("icmp unreachable truncated to 548", IP(src=D4, dst=S4, id=0, flags="DF") /
    ICMP(type=3, code=3) / Raw(big_invoking[:548]), True)
add("icmp time exceeded", IP(src="10.0.0.254", dst=S4) / ICMP(type=11, code=0) /
    Raw(invoking[:28]), False)

# ---- IPv6 ----
add("ipv6 tcp syn linux options", IPv6(src=S6, dst=D6, hlim=64) /
    TCP(sport=43512, dport=80, seq=1795125441, flags="S", window=64800, options=LINUX_SYN_OPTS),
    True)
add("ipv6 tcp data", IPv6(src=D6, dst=S6, hlim=63, tc=0x28, fl=0xabcde) /
    TCP(sport=80, dport=43512, seq=99, ack=100, flags="PA", window=509,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]) / Raw(rand_bytes(333)),
    True)
add("ipv6 tcp fin", IPv6(src="2001:db8::1", dst="2001:db8:0:0:1::1") /
    TCP(sport=1, dport=2, flags="FA"), True)
add("ipv6 udp odd", IPv6(src=S6, dst=D6) / UDP(sport=5353, dport=53) / Raw(b"hello"), True)
add("ipv6 udp empty", IPv6(src="::1", dst="::1") / UDP(sport=1, dport=2), True)
add("ipv6 hop-by-hop udp", IPv6(src=S6, dst="ff02::16") /
    IPv6ExtHdrHopByHop(options=[RouterAlert()]) / UDP(sport=1, dport=2) / Raw(b"x"), False)
add("ipv6 hbh destopt tcp", IPv6(src=S6, dst=D6) / IPv6ExtHdrHopByHop() /
    IPv6ExtHdrDestOpt() / TCP(sport=10, dport=20, flags="S", options=[("MSS", 1220)]), False)
add("ipv6 routing segleft 0 udp", IPv6(src=S6, dst=D6) /
    IPv6ExtHdrRouting(addresses=[], segleft=0) / UDP(sport=3, dport=4) / Raw(b"route"), False)
add("ipv6 destopt icmpv6", IPv6(src=S6, dst=D6) / IPv6ExtHdrDestOpt() /
    ICMPv6EchoRequest(id=1, seq=2, data=b"abc"), False)
add("ipv6 no next header", IPv6(src=S6, dst=D6, nh=59), False)
big6 = IPv6(src=S6, dst=D6) / IPv6ExtHdrFragment(id=0xdeadbeef) / UDP(sport=1, dport=2) / \
    Raw(rand_bytes(600))
for i, frag in enumerate(fragment6(big6, 300)):
    add("ipv6 udp fragment %d" % i, frag, False)
add("ipv6 tcp ethernet padding", IPv6(src=S6, dst=D6) / TCP(sport=1, dport=2, flags="A"), True,
    padding=4)

# ---- ICMPv6 ----
add("icmpv6 echo request", IPv6(src=S6, dst=D6) /
    ICMPv6EchoRequest(id=0x4321, seq=7, data=rand_bytes(56)), True)
add("icmpv6 echo reply odd", IPv6(src=D6, dst=S6) /
    ICMPv6EchoReply(id=0x4321, seq=7, data=b"12345"), True)
invoking6 = raw(IPv6(src=S6, dst=D6) / UDP(sport=53000, dport=9) / Raw(b"ping!"))
for code in (0, 1, 3, 4):
    add("icmpv6 unreachable code %d" % code, IPv6(src=D6, dst=S6) /
        ICMPv6DestUnreach(code=code) / Raw(invoking6), True)
big_invoking6 = raw(IPv6(src=S6, dst=D6) / UDP(sport=1, dport=2) / Raw(rand_bytes(1400)))
add("icmpv6 unreachable truncated to 1232", IPv6(src=D6, dst=S6) / ICMPv6DestUnreach(code=4) /
    Raw(big_invoking6[:1232]), True)
add("icmpv6 neighbor solicitation", IPv6(src=S6, dst="ff02::1:ff00:a", hlim=255) /
    ICMPv6ND_NS(tgt=D6), False)
add("icmpv6 time exceeded", IPv6(src=S6, dst=D6) / ICMPv6TimeExceeded() /
    Raw(invoking6[:48]), False)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
with open(out, "w") as f:
    json.dump({"generator": "scapy " + scapy.VERSION, "vectors": vectors}, f, indent=1)
    f.write("\n")
print("wrote %d vectors to %s" % (len(vectors), out))
