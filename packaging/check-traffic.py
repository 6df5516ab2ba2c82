#!/usr/bin/env python3
"""Traffic of known sizes on loopback for packaging/check.sh, run as another user (uid 65534).

  tcp-server               print the port, accept one connection, read everything, stay alive
  tcp-client PORT BYTES    connect; on each SIGUSR1 send BYTES; stay alive
  udp-server               print the port, read datagrams forever
  udp-client PORT N SIZE   connect; on each SIGUSR1 send N datagrams of SIZE bytes (paced)
Every mode prints "ready" (after the port, for servers) once its socket exists.
"""
import signal
import socket
import sys
import time


def serve_tcp():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    print(s.getsockname()[1], flush=True)
    print("ready", flush=True)
    conn, _ = s.accept()
    while conn.recv(1 << 16):
        pass
    signal.pause()


def serve_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    print("ready", flush=True)
    while True:
        s.recv(65535)


def on_signal(send):
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    mask = {signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    print("ready", flush=True)
    while True:
        signal.sigwait(mask)
        send()


def main():
    mode = sys.argv[1]
    if mode == "tcp-server":
        serve_tcp()
    elif mode == "udp-server":
        serve_udp()
    elif mode == "tcp-client":
        port, n = int(sys.argv[2]), int(sys.argv[3])
        c = socket.create_connection(("127.0.0.1", port))
        on_signal(lambda: c.sendall(b"t" * n))
    elif mode == "udp-client":
        port, count, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect(("127.0.0.1", port))

        def burst():
            for i in range(count):
                u.send(b"u" * size)
                if i % 50 == 49:
                    time.sleep(0.005)

        on_signal(burst)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
