# idle.py HOST PORT N: N connections that send nothing; prints "ready", holds until stdin closes.
import resource, socket, sys

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns = [socket.create_connection((host, port)) for _ in range(n)]
print("ready", len(conns), flush=True)
sys.stdin.read()
