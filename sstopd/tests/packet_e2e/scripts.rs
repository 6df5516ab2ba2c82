//! Python helpers: each prints the bytes it really moved (the truth the test compares to).
//! Senders wait 0.6 s before and after sending so the daemon sees their sockets alive.

/// `UDP_SINK ip port`: drains datagrams forever.
pub const UDP_SINK: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    s.recv(65535)
"#;

/// `UDP_TX ip port count size rate [lport]`: connected sender, paced to `rate` datagrams/s;
/// prints payload bytes sent.
pub const UDP_TX: &str = r#"
import socket, sys, time
ip, port, n, size, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if len(sys.argv) > 6:
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(sys.argv[6])))
s.connect((ip, port))
time.sleep(0.6)
buf, sent, t0 = b"u" * size, 0, time.time()
for i in range(n):
    sent += s.send(buf)
    if i % 50 == 49:
        ahead = t0 + (i + 1) / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
time.sleep(0.6)
print(sent)
"#;

/// `UDP_RX ip port idle_s`: unconnected receiver; prints payload bytes received (stops
/// `idle_s` after the last datagram).
pub const UDP_RX: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
got = len(s.recv(65535))  # the idle timeout starts with the first datagram
s.settimeout(float(sys.argv[3]))
try:
    while True:
        got += len(s.recv(65535))
except socket.timeout:
    pass
print(got)
"#;

/// `QUIC_SERVER ip port`: unconnected server; every 20th datagram from a peer is answered
/// with 200 bytes; stops after 1.2 s idle; prints "rx tx".
pub const QUIC_SERVER: &str = r#"
import socket, sys, collections
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
per, rx, tx = collections.Counter(), 0, 0
try:
    while True:
        d, peer = s.recvfrom(65535)
        s.settimeout(1.2)  # idle timeout from the first datagram on
        rx += len(d); per[peer] += 1
        if per[peer] % 20 == 0:
            tx += s.sendto(b"a" * 200, peer)
except socket.timeout:
    pass
print(rx, tx)
"#;

/// `QUIC_CLIENT ip port lport count`: connected sender of 1200-byte datagrams, paced;
/// then reads answers for 1 s; prints "tx rx".
pub const QUIC_CLIENT: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("::1", int(sys.argv[3])))
s.connect((sys.argv[1], int(sys.argv[2])))
time.sleep(0.6)
tx = 0
for i in range(int(sys.argv[4])):
    tx += s.send(b"q" * 1200)
    if i % 200 == 199:
        time.sleep(0.01)
rx = 0
s.settimeout(1.0)
try:
    while True:
        rx += len(s.recv(65535))
except socket.timeout:
    pass
print(tx, rx)
"#;

/// `MMSG send ip port size calls` / `MMSG recv ip port size`: 32 datagrams per
/// sendmmsg/recvmmsg call; prints payload bytes moved (receiver stops after 1.2 s idle).
pub const MMSG: &str = r#"
import ctypes, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
role, ip, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
B = 32
bufs = [ctypes.create_string_buffer(b"m" * size, size) for _ in range(B)]
iovs = (iovec * B)(*[iovec(ctypes.cast(b, ctypes.c_void_p), size) for b in bufs])
msgs = (mmsghdr * B)()
for i in range(B):
    msgs[i].hdr.iov = ctypes.cast(ctypes.byref(iovs, i * ctypes.sizeof(iovec)), ctypes.POINTER(iovec))
    msgs[i].hdr.iovlen = 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total = 0
if role == "send":
    s.connect((ip, port))
    time.sleep(0.6)
    for c in range(int(sys.argv[5])):
        n = libc.sendmmsg(s.fileno(), msgs, B, 0)
        if n < 0:
            raise OSError(ctypes.get_errno(), "sendmmsg")
        total += n * size
        if c % 8 == 7:
            time.sleep(0.003)
    time.sleep(0.6)
else:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind((ip, port))
    while True:
        n = libc.recvmmsg(s.fileno(), msgs, B, 0, None)
        if n <= 0:
            break
        total += sum(msgs[i].len for i in range(n))
        # idle timeout from the first batch on
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 200000))
print(total)
"#;

/// `PING ip count`: raw ICMP socket, echo requests with 1000 data bytes, paced; prints
/// "tx rx" as IP payload bytes (ICMP header + data) of requests sent / our replies read.
pub const PING: &str = r#"
import os, socket, struct, sys, time, select
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
ident = os.getpid() & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
time.sleep(0.6)
data, tx, rx = b"p" * 1000, 0, 0
def drain(timeout):
    global rx
    while select.select([s], [], [], timeout)[0]:
        pkt = s.recv(65535)
        ihl = (pkt[0] & 15) * 4
        if pkt[ihl] == 0 and struct.unpack("!H", pkt[ihl + 4:ihl + 6])[0] == ident:
            rx += len(pkt) - ihl
for seq in range(int(sys.argv[2])):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    msg = struct.pack("!BBHHH", 8, 0, csum(hdr + data), ident, seq) + data
    tx += s.sendto(msg, (sys.argv[1], 0))
    if seq % 20 == 19:
        drain(0.002)
drain(0.5)
time.sleep(0.3)
print(tx, rx)
"#;

/// `RAW_TX ip proto count size`: raw socket of protocol `proto`; prints payload bytes sent.
pub const RAW_TX: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(sys.argv[2]))
time.sleep(0.6)
sent = 0
for i in range(int(sys.argv[3])):
    sent += s.sendto(b"r" * int(sys.argv[4]), (sys.argv[1], 0))
    if i % 50 == 49:
        time.sleep(0.002)
time.sleep(0.6)
print(sent)
"#;

/// `RAW_SINK proto`: raw socket that swallows a protocol (so the peer sends no ICMP errors).
pub const RAW_SINK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(sys.argv[1]))
while True:
    s.recv(65535)
"#;

/// `TUN`: creates tun0 (IFF_TUN | IFF_NO_PI) and swallows what is routed into it (B14).
pub const TUN: &str = r#"
import os, fcntl, struct
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"tun0", 0x0001 | 0x1000))
while True:
    os.read(fd, 65535)
"#;

/// `TCP_SINK ip port`: accepts one connection, drains it, prints bytes received.
pub const TCP_SINK: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
l = socket.socket(fam, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(1)
a, _ = l.accept()
got = 0
while True:
    d = a.recv(1 << 20)
    if not d:
        break
    got += len(d)
import time; time.sleep(0.6)
print(got)
"#;

/// `TCP_TX ip port total`: connects, sends `total` bytes, closes; prints bytes sent.
pub const TCP_TX: &str = r#"
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
time.sleep(0.6)
total = int(sys.argv[3]); chunk = b"z" * 65536; sent = 0
while sent < total:
    c.sendall(chunk[:min(65536, total - sent)]); sent += min(65536, total - sent)
    if sent % (1 << 20) == 0:
        time.sleep(0.02)
time.sleep(0.6)
c.close()
print(sent)
"#;
