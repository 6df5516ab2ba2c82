# odd.py N [COMM_HEX] [zombie]: optionally sets its own comm to the given bytes (B04:
# only a process may write its own comm), opens a loopback TCP pair it holds both ends
# of, optionally leaves a child unreaped (a zombie, B05), prints "ready <zombie pid or 0>";
# on a line from stdin moves N bytes over the pair, prints "sent", holds until stdin closes.
import os, socket, sys

n = int(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2]:
    with open("/proc/self/comm", "wb") as f:
        f.write(bytes.fromhex(sys.argv[2]))
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
c = socket.create_connection(s.getsockname())
a, _ = s.accept()
zombie = 0
if len(sys.argv) > 3 and sys.argv[3] == "zombie":
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
print("ready", zombie, flush=True)
sys.stdin.readline()  # "go": the monitor has seen the sockets idle
c.sendall(b"o" * n)
got = 0
while got < n:
    got += len(a.recv(1 << 20))
print("sent", flush=True)
sys.stdin.read()
