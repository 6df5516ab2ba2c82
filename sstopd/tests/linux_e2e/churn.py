# churn.py HOST PORT RATE SECONDS SIZE: RATE short connections per second, each SIZE bytes
# each way; prints "done N" with the number of completed connections, holds until stdin closes.
import socket, sys, time

host, port, rate, secs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
payload = size.to_bytes(8, "big") + b"c" * size
n = 0
start = time.monotonic()
while time.monotonic() - start < secs:
    c = socket.create_connection((host, port))
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    c.close()
    assert got == size, got
    n += 1
    ahead = start + n / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print("done", n, flush=True)
sys.stdin.read()
