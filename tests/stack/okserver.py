"""The smallest keep-alive HTTP server: every GET is `200 ok`, for tests that count connections."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many requests

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def serve_ok(server: ThreadingHTTPServer | None = None) -> ThreadingHTTPServer:
    """Serve `server` (by default one answering OkHandler on a free loopback port) from a thread;
    the caller shuts it down."""
    server = server or ThreadingHTTPServer(("127.0.0.1", 0), OkHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
