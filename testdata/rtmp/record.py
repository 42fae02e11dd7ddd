"""Records one TCP session as a transcript: `record.py LISTEN_PORT UPSTREAM_PORT OUT.txt`.

Listens on 127.0.0.1:LISTEN_PORT, connects to 127.0.0.1:UPSTREAM_PORT, forwards bytes both ways
and writes each read under a "### C->S (N bytes)" or "### S->C (N bytes)" line (the format of
testdata/rtsp/*.txt). Stops when both sides have closed or after 10 s of silence.
"""
import socket, select, sys
listen_port, up_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen_port)); ls.listen(1)
c, _ = ls.accept()
s = socket.create_connection(("127.0.0.1", up_port))
f = open(out, "wb")
open_ = {c: True, s: True}
while any(open_.values()):
    r, _, _ = select.select([x for x in (c, s) if open_[x]], [], [], 10)
    if not r: break
    for x in r:
        data = x.recv(65536)
        other, tag = (s, b"C->S") if x is c else (c, b"S->C")
        if not data:
            open_[x] = False
            try: other.shutdown(socket.SHUT_WR)
            except OSError: pass
            continue
        f.write(b"### " + tag + b" (%d bytes)\n" % len(data)); f.write(data); f.write(b"\n")
        try: other.sendall(data)
        except OSError: pass
f.close()
