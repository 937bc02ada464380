"""Real servers on loopback for the notification tests: an HTTP webhook sink and an SMTP sink.

    Webhooks   records every request (path, headers, body); the path says how to answer:
               /fail... answers 500, /slow... never answers (until the server closes),
               anything else 200 with an empty JSON object
    Mailbox    aiosmtpd's SMTP server on a free port, keeping every message it accepts
    refused    a loopback address where nothing listens
"""
from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Webhooks:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._closing = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests.append(Request("POST", self.path, dict(self.headers), body))
                if self.path.startswith("/slow"):
                    owner._closing.wait(30)  # bounded: the server's close releases it
                    return
                status = 500 if self.path.startswith("/fail") else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> "Webhooks":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


class Mailbox:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from aiosmtpd.smtp import AuthResult

        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str]] = []  # (user, password) each client authenticated with
        owner = self

        def authenticate(server, session, envelope, mechanism, auth_data):
            owner.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
                owner.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        # AUTH over plain SMTP: the test server is on loopback, and the point is the password in the URL.
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                                      auth_require_tls=False)

    @property
    def port(self) -> int:
        return self._controller.port

    def __enter__(self) -> "Mailbox":
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def free_port() -> int:
    """A loopback port nothing listens on (just closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def body_text(message) -> str:
    """The text of an e-mail: its plain part, else its HTML part."""
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""
