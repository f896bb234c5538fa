#!/usr/bin/env python3
"""Serve a directory over HTTP and count the body bytes sent.

GET /__bytes answers the count so far; GET /__reset sets it to zero.
Usage: countserve.py DIR PORTFILE  (writes the chosen port to PORTFILE)
"""
import http.server
import os
import socketserver
import sys
import threading

root, portfile = sys.argv[1], sys.argv[2]
lock = threading.Lock()
sent = [0]


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path in ("/__bytes", "/__reset"):
            with lock:
                body = str(sent[0]).encode()
                if self.path == "/__reset":
                    sent[0] = 0
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def copyfile(self, src, dst):
        n = 0
        while True:
            buf = src.read(1 << 16)
            if not buf:
                break
            dst.write(buf)
            n += len(buf)
        with lock:
            sent[0] += n


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
