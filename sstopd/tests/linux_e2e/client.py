# client.py HOST PORT UP DOWN [RATE]: one connection, UP bytes up (plus the 8-byte
# header), DOWN bytes down, paced to about RATE bytes/s each way with small socket
# buffers so the kernel counters move over several sampling intervals (the steady-state
# path, not the closed-socket path). Prints "done N", then holds until stdin closes.
import socket, sys, time

host, port, up, down = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = int(sys.argv[5]) if len(sys.argv) > 5 else 2_500_000
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
c.connect((host, port))
c.sendall(down.to_bytes(8, "big"))
CH = 32768
chunk = b"u" * CH
start, sent = time.monotonic(), 0
while sent < up:
    n = min(up - sent, CH)
    c.sendall(chunk[:n])
    sent += n
    ahead = start + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
c.shutdown(socket.SHUT_WR)
start, got = time.monotonic(), 0
while True:
    d = c.recv(CH)
    if not d:
        break
    got += len(d)
    ahead = start + got / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print("done", got, flush=True)
sys.stdin.read()
