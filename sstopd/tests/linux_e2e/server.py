# Test server: for each connection read an 8-byte big-endian count D, then the upload
# until EOF, then send D bytes and close. Non-blocking, so thousands of idle clients fit.
import resource, selectors, socket, sys

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
ls = socket.socket(fam, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, 0))
ls.listen(4096)
ls.setblocking(False)
print(ls.getsockname()[1], flush=True)
sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ, None)
CHUNK = b"d" * 65536

while True:
    for key, mask in sel.select():
        if key.data is None:
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, {"hdr": b"", "want": None, "left": 0})
            continue
        c, st = key.fileobj, key.data
        try:
            if mask & selectors.EVENT_READ:
                data = c.recv(1 << 20)
                if st["want"] is None:
                    st["hdr"] += data
                    if len(st["hdr"]) >= 8:
                        st["want"] = int.from_bytes(st["hdr"][:8], "big")
                    if not data:
                        sel.unregister(c); c.close()
                elif not data:
                    st["left"] = st["want"]
                    sel.modify(c, selectors.EVENT_WRITE, st)
            elif mask & selectors.EVENT_WRITE:
                if st["left"] > 0:
                    n = c.send(CHUNK[: min(len(CHUNK), st["left"])])
                    st["left"] -= n
                if st["left"] == 0:
                    sel.unregister(c); c.close()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            try:
                sel.unregister(c)
            except Exception:
                pass
            c.close()
