#!/bin/sh
# Captures real Linux kernel traffic into kernel.pcap and tshark's reading of it into
# kernel_tshark.json. Run as root: sh make_kernel_pcap.sh
#
# Everything happens between two private network namespaces joined by a veth pair; no packet
# leaves the machine. Transmit checksum offload is switched off on both veth ends
# (`ethtool -K ... tx off`): with it on, the kernel hands locally generated TCP/UDP packets to
# the capture with CHECKSUM_PARTIAL (only the pseudo-header sum in the checksum field), so
# their checksums would not verify. With it off every captured checksum is final.
# Captured on veth-a in namespace A: Ethernet link type (1).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
A=wirecap-$$
B=wirecap-$$-peer
OUT="$HERE/kernel.pcap"
TCPDUMP_PID=""
rm -f "$OUT"

cleanup() {
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$A"
ip netns add "$B"
ip link add veth-a netns "$A" type veth peer name veth-b netns "$B"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" addr add 192.0.2.1/24 dev veth-a
ip -n "$B" addr add 192.0.2.2/24 dev veth-b
ip -n "$A" addr add fd00:77::1/64 dev veth-a nodad
ip -n "$B" addr add fd00:77::2/64 dev veth-b nodad
ip netns exec "$A" ethtool -K veth-a tx off >/dev/null
ip netns exec "$B" ethtool -K veth-b tx off >/dev/null
ip -n "$A" link set veth-a up
ip -n "$B" link set veth-b up

ip netns exec "$A" tcpdump -Z root -i veth-a -U -s 0 -w "$OUT" 2>/dev/null &
TCPDUMP_PID=$!
sleep 1

# Servers in B: a TCP echo (v4 and v6, port 8080) that answers each connection and closes, and
# a UDP echo (v4 and v6, port 7007). Ports 9 (TCP, UDP) are closed: RST and ICMP unreachable.
ip netns exec "$B" $PY - <<'PYEOF' &
import socket, threading
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080)); s.listen()
    s.settimeout(20)
    c, _ = s.accept()
    if True:
        data = b""
        while True:
            d = c.recv(65536)
            if not d: break
            data += d
        c.sendall(b"got %d bytes" % len(data))
        c.close()
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, 7007))
    s.settimeout(20)
    if True:
        d, peer = s.recvfrom(65536)
        s.sendto(d[::-1] + b"!", peer)
ts = [threading.Thread(target=f, args=a) for f, a in [
    (tcp, (socket.AF_INET, "192.0.2.2")), (tcp, (socket.AF_INET6, "fd00:77::2")),
    (udp, (socket.AF_INET, "192.0.2.2")), (udp, (socket.AF_INET6, "fd00:77::2"))]]
for t in ts: t.start()
for t in ts: t.join()
PYEOF
SERVERS=$!
sleep 1

ip netns exec "$A" ping -c 2 -i 0.2 -s 37 192.0.2.2 >/dev/null
ip netns exec "$A" ping -6 -c 2 -i 0.2 -s 56 fd00:77::2 >/dev/null

ip netns exec "$A" $PY - <<'PYEOF'
import socket
for fam, addr in [(socket.AF_INET, "192.0.2.2"), (socket.AF_INET6, "fd00:77::2")]:
    # TCP: handshake with options, data (some of it in full-MSS segments), FIN both ways.
    c = socket.create_connection((addr, 8080))
    c.sendall(b"hello")
    c.sendall(bytes(range(256)) * 16 + b"odd")
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = c.recv(65536)
        if not d: break
        reply += d
    c.close()
    assert reply == b"got 4104 bytes", reply
    # TCP to a closed port: SYN, RST-ACK.
    try:
        socket.create_connection((addr, 9), timeout=2)
        raise SystemExit("port 9 unexpectedly open")
    except ConnectionRefusedError:
        pass
    # UDP: echo with odd lengths; then a closed port (ICMP port unreachable).
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(2)
    u.sendto(b"kconnect", (addr, 7007))
    assert u.recvfrom(100)[0] == b"tcennock!"
    u.sendto(b"closed port", (addr, 9))
    try:
        u.recvfrom(100)
    except (ConnectionRefusedError, socket.timeout):
        pass
    u.close()
PYEOF
wait "$SERVERS"
sleep 1
kill "$TCPDUMP_PID"
wait "$TCPDUMP_PID" 2>/dev/null || true
TCPDUMP_PID=""

# tshark's reading of every packet (first occurrence of each field, so ICMP errors report the
# outer headers), with its own checksum validation switched on.
tshark -r "$OUT" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
  -o udp.check_checksum:TRUE -o tcp.relative_sequence_numbers:FALSE \
  -T fields -E header=y -E separator=/t -E occurrence=f \
  -e frame.number -e eth.type \
  -e ip.src -e ip.dst -e ip.id -e ip.ttl -e ip.proto -e ip.len -e ip.hdr_len -e ip.flags.df \
  -e ip.checksum -e ip.checksum.status \
  -e ipv6.src -e ipv6.dst -e ipv6.nxt -e ipv6.hlim -e ipv6.plen -e ipv6.flow -e ipv6.tclass \
  -e tcp.srcport -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags -e tcp.hdr_len \
  -e tcp.len -e tcp.window_size_value -e tcp.checksum -e tcp.checksum.status \
  -e tcp.options.mss_val -e tcp.options.wscale.shift -e tcp.options.sack_perm \
  -e tcp.options.timestamp.tsval -e tcp.options.timestamp.tsecr \
  -e udp.srcport -e udp.dstport -e udp.length -e udp.checksum -e udp.checksum.status \
  -e icmp.type -e icmp.code -e icmp.checksum -e icmp.checksum.status -e icmp.ident \
  -e icmp.seq \
  -e icmpv6.type -e icmpv6.code -e icmpv6.checksum -e icmpv6.checksum.status \
  -e icmpv6.echo.identifier -e icmpv6.echo.sequence_number \
  2>/dev/null | $PY -c '
import json, sys
lines = sys.stdin.read().splitlines()
names = lines[0].split("\t")
rows = []
for line in lines[1:]:
    row = {}
    for k, v in zip(names, line.split("\t")):
        if v == "":
            continue
        if k in ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst"):
            row[k] = v
        elif k == "tcp.options.sack_perm":
            row[k] = True
        else:
            row[k] = int(v, 0)
    rows.append(row)
json.dump({"generator": "tshark", "packets": rows}, sys.stdout, indent=1)
print()
' > "$HERE/kernel_tshark.json"
echo "captured $(tshark -r "$OUT" 2>/dev/null | wc -l) packets into $OUT"
