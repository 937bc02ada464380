"""A token server after the distribution token spec, in a thread of the test process.

    GET  /token?service=S&scope=A&scope=B    Basic auth optional (anonymous pulls)
    POST /token  grant_type=password|refresh_token   docker's OAuth2 flow

Who may do what is an `AccessPolicy`: admins pull and push everywhere, private
repositories are pulled only by named readers, everything else is pulled by
anyone. Each request is recorded (never its password) so tests can count the
token round trips a scan made. `TokenSettings` holds the switches a test may
flip for a while with `overridden(...)`: token lifetime, and whether several
scopes in one request are all granted or only the first (some token servers
refuse combined scopes).
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from .access import AccessPolicy, parse_scope
from .pki import CertPair
from .tokens import Access, Signer, claims

# What the spec says a client assumes when the response has no expires_in.
_DEFAULT_LIFETIME = 60


@dataclass(frozen=True)
class TokenSettings:
    expires_in: int | None = 300  # None: leave expires_in out of the response
    grant_combined: bool = True


class TokenRequest(NamedTuple):
    # A NamedTuple so tests can compare a record with a plain tuple.
    method: str
    scopes: tuple[str, ...]
    username: str | None
    status: int


_Answer = tuple[str | None, list[str], dict]  # (username, scopes, response body)


class _Denied(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


class TokenServer:
    """Start with `start()`; `realm` is then `https://127.0.0.1:<port>/token`."""

    def __init__(self, *, signer: Signer, tls: CertPair, policy: AccessPolicy, service: str,
                 issuer: str = "spyglass-test-token-issuer", settings: TokenSettings = TokenSettings(),
                 clock: Callable[[], float] = time.time):
        self.signer, self.policy, self.service, self.issuer = signer, policy, service, issuer
        self.settings = settings
        self._tls, self._clock = tls, clock
        self._lock = threading.Lock()
        self._records: list[TokenRequest] = []
        self._refresh: dict[str, str] = {}  # refresh token -> username
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def start(self) -> TokenServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.socket = _tls_context(self._tls).wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False)  # handshake in the request thread
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    @contextlib.contextmanager
    def overridden(self, **changes) -> Iterator[TokenSettings]:
        """Change some settings for the duration of a `with` block."""
        before = self.settings
        self.settings = replace(before, **changes)
        try:
            yield self.settings
        finally:
            self.settings = before

    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._records)

    def mark(self) -> int:
        with self._lock:
            return len(self._records)

    def requests_since(self, mark: int) -> list[TokenRequest]:
        with self._lock:
            return self._records[mark:]

    # -- the exchange, free of HTTP so each step stays small ------------------

    def answer_get(self, query: Mapping[str, list[str]], authorization: str | None) -> _Answer:
        scopes = query.get("scope", [])
        self._check_service(query)
        username = self._authenticate(authorization)
        return username, scopes, self._grant(username, scopes)

    def answer_post(self, form: Mapping[str, list[str]]) -> _Answer:
        scopes = " ".join(form.get("scope", [])).split()  # OAuth2 joins scopes with spaces
        self._check_service(form)
        username = self._oauth_user(form)
        body = self._grant(username, scopes)
        if _first(form, "access_type") == "offline" or _first(form, "grant_type") == "refresh_token":
            body["refresh_token"] = self._new_refresh_token(username)
        return username, scopes, body

    def record(self, method: str, scopes: list[str], username: str | None, status: int) -> None:
        with self._lock:
            self._records.append(TokenRequest(method, tuple(scopes), username, status))

    def _check_service(self, params: Mapping[str, list[str]]) -> None:
        service = _first(params, "service")
        if service is not None and service != self.service:
            raise _Denied(400, "invalid_request", f"unknown service {service!r}")

    def _authenticate(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        username, password = _parse_basic(authorization)
        if not self.policy.check_password(username, password):
            raise _Denied(401, "invalid_grant", "bad credentials")
        return username

    def _oauth_user(self, form: Mapping[str, list[str]]) -> str:
        grant_type = _first(form, "grant_type")
        if grant_type == "password":
            username, password = _first(form, "username") or "", _first(form, "password") or ""
            if not self.policy.check_password(username, password):
                raise _Denied(401, "invalid_grant", "bad credentials")
            return username
        if grant_type == "refresh_token":
            with self._lock:
                username = self._refresh.get(_first(form, "refresh_token") or "")
            if username is None:
                raise _Denied(401, "invalid_grant", "unknown refresh token")
            return username
        raise _Denied(400, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def _grant(self, username: str | None, scopes: list[str]) -> dict:
        settings = self.settings
        considered = scopes if settings.grant_combined else scopes[:1]
        access = [item for item in (self._access_for(username, s) for s in considered) if item]
        lifetime = settings.expires_in or _DEFAULT_LIFETIME
        now = int(self._clock())
        token = self.signer.sign(claims(issuer=self.issuer, subject=username or "", audience=self.service,
                                        access=access, issued_at=now, expires_in=lifetime))
        body = {"token": token, "access_token": token, "issued_at": _rfc3339(now)}
        if settings.expires_in is not None:
            body["expires_in"] = settings.expires_in
        return body

    def _access_for(self, username: str | None, scope: str) -> Access | None:
        parsed = parse_scope(scope)
        if parsed is None:
            return None
        resource_type, name, requested = parsed
        allowed = self.policy.allowed(username, resource_type, name)
        granted = tuple(a for a in requested if a in allowed)
        return Access(name=name, actions=granted, type=resource_type) if granted else None

    def _new_refresh_token(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = username
        return token


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as registries' token endpoints do
        timeout = 30

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path != "/token":
                return self._send(404, {"errors": [{"code": "not_found"}]})
            query = parse_qs(url.query, keep_blank_values=True)
            self._exchange("GET", query.get("scope", []),
                           lambda: server.answer_get(query, self.headers.get("Authorization")))

        def do_POST(self):
            if urlsplit(self.path).path != "/token":
                return self._send(404, {"errors": [{"code": "not_found"}]})
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            self._exchange("POST", " ".join(form.get("scope", [])).split(), lambda: server.answer_post(form))

        def _exchange(self, method, scopes, answer):
            try:
                username, scopes, body = answer()
            except _Denied as denied:
                server.record(method, scopes, None, denied.status)
                return self._send(denied.status, {"error": denied.code, "details": str(denied)})
            server.record(method, scopes, username, 200)
            self._send(200, body)

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="spyglass-test"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass  # requests are recorded structurally; stderr noise would only hide test output

    return Handler


def _tls_context(pair: CertPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    return context


def _parse_basic(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise _Denied(401, "invalid_request", f"unsupported authorization scheme {scheme!r}")
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _Denied(400, "invalid_request", "malformed basic credentials") from None
    if not sep:
        raise _Denied(400, "invalid_request", "malformed basic credentials")
    return username, password


def _first(params: Mapping[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def _rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
