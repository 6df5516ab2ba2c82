# shared.py HOST PORT UP DOWN GO_FILE: connect, fork; once GO_FILE exists the child sends
# UP bytes (paced), then the parent half-closes and reads DOWN bytes (paced). Both hold
# the socket until stdin closes. Prints "child PID", then "done N".
import os, socket, sys, time

host, port, up, down, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
RATE, CH = 2_000_000, 32768
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CH)
c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CH)
c.connect((host, port))
c.sendall(down.to_bytes(8, "big"))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    while not os.path.exists(go):
        time.sleep(0.02)
    start, sent = time.monotonic(), 0
    while sent < up:
        n = min(up - sent, CH)
        c.sendall(b"s" * n)
        sent += n
        ahead = start + sent / RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    os.write(w, b"x")
    sys.stdin.read()
    os._exit(0)
print("child", pid, flush=True)
os.read(r, 1)
c.shutdown(socket.SHUT_WR)
start, got = time.monotonic(), 0
while True:
    d = c.recv(CH)
    if not d:
        break
    got += len(d)
    ahead = start + got / RATE - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print("done", got, flush=True)
sys.stdin.read()
os.waitpid(pid, 0)
