"""A fault-injecting HTTP(S) proxy: forwards to a real server, or misbehaves on cue.

    proxy = FaultProxy(tls=cert_pair, upstreams={"/": Upstream("https://127.0.0.1:5000", ca=ca_pem)}).start()
    with proxy.rules(Rule(r"^HEAD /v2/demo/x/manifests/", respond(503))):
        ...  # the scanner talks to proxy.address
    proxy.records  # every request that arrived, with the action applied to it

It sits where the scanner expects a registry, a token server or a Docker daemon:
it terminates TLS with a certificate of the test's choosing (switchable with
`serving(...)`; a client certificate can be required), matches each request
(``"METHOD /path?query"``) against the current rule table, and either applies
the first matching rule's action or passes the request through. Upstream
connections are fresh per request and verify the upstream's CA.

Actions are small functions of an `Exchange`; the ones here cover the faults a
registry or daemon can show: a status, a reset, a hang, a slow drip, a truncated
or oversized body, extra or rewritten headers, a redirect, a proxy that dies.
A hang ends when the rule table is released or the proxy stops, so no test
leaves a thread behind for long.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.stack import CertPair

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade",
                         "content-length"})
MAX_WAIT = 60.0  # the longest any action holds a connection


@dataclass(frozen=True)
class Upstream:
    base: str  # https://127.0.0.1:5000
    ca: Path | None = None
    client: CertPair | None = None  # presented to the upstream (a daemon wants one)

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        parts = urlsplit(self.base)
        if parts.scheme == "http":
            return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.client is not None:
            context.load_cert_chain(str(self.client.cert), str(self.client.key))
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def replace_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()] + [(name, value)]


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names, last value wins
    action: str  # the rule's label, or "pass"
    at: float  # time.monotonic()


Action = Callable[["Exchange"], None]


@dataclass
class Rule:
    pattern: str  # re.search()ed against "METHOD /path?query"
    action: Action
    times: int | None = None  # apply this many times, then let requests pass
    label: str = ""

    def matches(self, line: str) -> bool:
        return (self.times is None or self.times > 0) and re.search(self.pattern, line) is not None


class Exchange:
    """One request as it arrived, and the ways an action can answer it."""

    def __init__(self, proxy: FaultProxy, handler: BaseHTTPRequestHandler, body: bytes | None):
        self.proxy, self.handler, self.body = proxy, handler, body
        self.method, self.path = handler.command, handler.path
        self.headers = handler.headers

    @property
    def authority(self) -> str:
        """How the client addressed us (the Host header)."""
        return self.headers.get("Host") or self.proxy.address

    def forward(self) -> Answer:
        upstream = self.proxy.upstream_for(self.path)
        if upstream is None:
            return Answer(502, [("Content-Type", "text/plain")], b"no upstream")
        connection = upstream.connection(timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(self.method, self.path, body=self.body, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        self.proxy.rewrite(self, answer)
        return answer

    def reply(self, answer: Answer) -> None:
        self.handler.wfile.write(self.serialise(answer))
        self.handler.wfile.flush()

    def serialise(self, answer: Answer, *, length: int | None = None) -> bytes:
        """Status line, headers and body; Content-Length is the body's unless given (HEAD keeps upstream's)."""
        lines = [f"HTTP/1.1 {answer.status} {http.client.responses.get(answer.status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in answer.headers if k.lower() not in _HOP_BY_HOP]
        if self.method == "HEAD":
            lines.append(f"Content-Length: {answer.header('Content-Length') or 0}")
            body = b""
        else:
            lines.append(f"Content-Length: {len(answer.body) if length is None else length}")
            body = answer.body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def close(self, *, reset: bool = False) -> None:
        self.handler.close_connection = True
        _close(self.handler.connection, reset=reset)

    def wait(self, seconds: float) -> bool:
        """Sleep unless the rules are released or the proxy stops; True when the full time passed."""
        return not self.proxy.released.wait(min(seconds, MAX_WAIT))


# -- actions -----------------------------------------------------------------------------


def passthrough(exchange: Exchange) -> None:
    exchange.reply(exchange.forward())


def respond(status: int, headers: Mapping[str, str] | list[tuple[str, str]] = (), body: bytes = b"") -> Action:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)

    def action(exchange: Exchange) -> None:
        exchange.reply(Answer(status, pairs, body))
    return action


def reset(exchange: Exchange) -> None:
    """Close with a TCP reset before any answer."""
    exchange.close(reset=True)


def hang(exchange: Exchange) -> None:
    """Accept the request and never answer (until the rules are released)."""
    exchange.wait(MAX_WAIT)
    exchange.close()


def drip(interval: float = 1.0) -> Action:
    """Forward, then send the whole answer, status line included, one byte per interval."""
    def action(exchange: Exchange) -> None:
        data = exchange.serialise(exchange.forward())
        try:
            for i in range(len(data)):
                exchange.handler.wfile.write(data[i:i + 1])
                exchange.handler.wfile.flush()
                if not exchange.wait(interval):
                    break
        except OSError:
            pass
        exchange.close()
    return action


def truncate(keep: int = 10) -> Action:
    """Forward, announce the full Content-Length, send only `keep` bytes of the body, close."""
    def action(exchange: Exchange) -> None:
        answer = exchange.forward()
        data = exchange.serialise(answer, length=len(answer.body))
        head = len(data) - len(answer.body)
        with contextlib.suppress(OSError):
            exchange.handler.wfile.write(data[:head + keep])
            exchange.handler.wfile.flush()
        exchange.close()
    return action


def huge(size: int, *, content_type: str = "application/json", prefix: bytes = b'{"token": "',
         chunked: bool = False) -> Action:
    """A 200 whose body is `size` bytes (announced, or chunked without a length); stops when the client does."""
    def action(exchange: Exchange) -> None:
        head = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}"]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
        piece = b"A" * 65536
        try:
            exchange.handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            sent = 0
            while sent < size:
                part = (prefix + piece)[:min(65536, size - sent)] if sent == 0 else piece[:min(65536, size - sent)]
                exchange.handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if chunked:
                exchange.handler.wfile.write(b"0\r\n\r\n")
            exchange.handler.wfile.flush()
        except OSError:
            pass
        exchange.close()
    return action


def delay(seconds: float, then: Action = passthrough) -> Action:
    def action(exchange: Exchange) -> None:
        exchange.wait(seconds)
        then(exchange)
    return action


def with_headers(headers: Mapping[str, str] | list[tuple[str, str]], *, status: int | None = None,
                 replace: bool = True) -> Action:
    """Forward, then set these headers (replacing upstream's of the same name) and optionally the status."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)

    def action(exchange: Exchange) -> None:
        answer = exchange.forward()
        names = {k.lower() for k, _ in pairs}
        if replace:
            answer.headers = [(k, v) for k, v in answer.headers if k.lower() not in names]
        answer.headers += pairs
        if status is not None:
            answer.status = status
        exchange.reply(answer)
    return action


def redirect(location: str | Callable[[Exchange], str], status: int = 307) -> Action:
    def action(exchange: Exchange) -> None:
        target = location(exchange) if callable(location) else location
        exchange.reply(Answer(status, [("Location", target)], b""))
    return action


def rewrite(change: Callable[[Answer], None]) -> Action:
    """Forward, let `change` edit the answer in place, reply."""
    def action(exchange: Exchange) -> None:
        answer = exchange.forward()
        change(answer)
        exchange.reply(answer)
    return action


def when_host(host: str, action: Action, otherwise: Action = passthrough) -> Action:
    """`action` for requests addressed to this host (Host header without the port), else `otherwise`."""
    def choose(exchange: Exchange) -> None:
        (action if exchange.authority.rsplit(":", 1)[0] == host else otherwise)(exchange)
    return choose


def die(exchange: Exchange) -> None:
    """The proxy stops, as a daemon that exits: this connection and every other one is reset."""
    exchange.handler.close_connection = True
    exchange.proxy.kill()


# -- the server ------------------------------------------------------------------------------


class FaultProxy:
    def __init__(self, *, tls: CertPair | None = None, client_ca: Path | None = None,
                 upstreams: Mapping[str, Upstream] | None = None, realm_from: str | None = None,
                 default: Action = passthrough):
        """`upstreams` maps path prefixes to servers (longest prefix wins); a WWW-Authenticate realm that
        starts with `realm_from` is rewritten to point at this proxy, so token requests come through it too."""
        self.upstreams = dict(upstreams or {})
        self.realm_from = realm_from
        self.default = default
        self.client_ca = client_ca
        self.context = _server_context(tls, client_ca) if tls else None
        self.records: list[Record] = []
        self.errors: list[str] = []  # handshake failures and the like, as short strings
        self.accepted = 0  # connections, whether or not a request followed
        self.released = threading.Event()
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FaultProxy:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.kill()

    def kill(self) -> None:
        """Stop listening and reset every open connection (safe from a handler thread, and twice)."""
        server, self._server = self._server, None
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()
            server.socket.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _close(sock, reset=True)

    def wait_closed(self, timeout: float = 5.0) -> None:
        """Until a connection is refused: a listening socket outlives close() while select() holds it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self._port), timeout=1).close()
            except ConnectionRefusedError:
                return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"proxy on {self.address} still accepts connections")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    # -- what tests use

    @contextlib.contextmanager
    def rules(self, *rules: Rule) -> Iterator[FaultProxy]:
        """Apply these rules inside the block; records start empty; hangs end when it is left."""
        with self._lock:
            self._rules, self.records, self.errors, self.accepted = list(rules), [], [], 0
            self.released = threading.Event()
        try:
            yield self
        finally:
            with self._lock:
                self._rules = []
            self.released.set()

    @contextlib.contextmanager
    def serving(self, tls: CertPair) -> Iterator[FaultProxy]:
        """Present another certificate to new connections inside the block."""
        before, self.context = self.context, _server_context(tls, self.client_ca)
        try:
            yield self
        finally:
            self.context = before

    def seen(self, pattern: str = "") -> list[Record]:
        with self._lock:
            return [r for r in self.records if re.search(pattern, f"{r.method} {r.path}")]

    # -- internals

    def upstream_for(self, path: str) -> Upstream | None:
        matches = [prefix for prefix in self.upstreams if path.startswith(prefix)]
        return self.upstreams[max(matches, key=len)] if matches else None

    def rewrite(self, exchange: Exchange, answer: Answer) -> None:
        if self.realm_from:
            answer.headers = [(k, v.replace(self.realm_from, f"https://{exchange.authority}"))
                              if k.lower() == "www-authenticate" else (k, v) for k, v in answer.headers]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        exchange = Exchange(self, handler, _read_body(handler))
        line = f"{exchange.method} {exchange.path}"
        with self._lock:
            rule = next((r for r in self._rules if r.matches(line)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
            label = (rule.label or rule.pattern) if rule else "pass"
            self.records.append(Record(exchange.method, exchange.path,
                                       {k.lower(): v for k, v in handler.headers.items()}, label, time.monotonic()))
        (rule.action if rule else self.default)(exchange)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.accepted += 1

    def note_error(self, error: BaseException | None) -> None:
        with self._lock:
            self.errors.append(f"{type(error).__name__}: {error}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy
        super().__init__(("127.0.0.1", getattr(proxy, "_port", 0)), _Handler)
        proxy._port = self.server_address[1]

    def get_request(self):
        sock, address = self.socket.accept()
        context = self.proxy.context
        if context is not None:
            # The handshake happens in the handler's thread, on its first read.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.proxy.track(sock)
        return sock, address

    def handle_error(self, request, client_address) -> None:
        self.proxy.note_error(sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection ends after this

    def log_message(self, *args) -> None:
        pass

    def _any(self) -> None:
        self.server.proxy.handle(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def _server_context(tls: CertPair, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls.cert), str(tls.key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


def _close(sock: socket.socket, *, reset: bool) -> None:
    """Close now, with a TCP reset on request (close() alone waits while a handler's files hold the socket)."""
    with contextlib.suppress(OSError, ValueError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())
        else:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
