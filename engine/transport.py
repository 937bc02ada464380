"""HTTP for registries: one kept-alive urllib3 pool per (scheme, host, port), shared by all threads.

This is the only module that talks to urllib3. It knows nothing of registries'
auth; it sends one request (following a bounded number of redirects), caps the
body it reads, and turns every failure into a typed error that names the
operation and a redacted URL.
"""
from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ConnectTimeoutError,
    SSLError,
)

from .errors import RegistryTimeoutError, TLSError, TransportError, redact_url
from .tlsconfig import TLSMode, TLSPolicy

USER_AGENT = "spyglass/0.1"
MAX_REDIRECTS = 5
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # manifests are limited to 4 MiB by the distribution spec


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: urllib3.HTTPHeaderDict
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def header_values(self, name: str) -> list[str]:
        return self.headers.getlist(name)


class HttpPools:
    """Connection pools keyed by (scheme, host, port), created on first use.

    ``maxsize`` should match the scan's concurrency so that every worker can
    hold a kept-alive connection to a host at once.
    """

    def __init__(self, tls: TLSPolicy | None = None, *, maxsize: int = 8, timeouts: Timeouts = Timeouts()):
        self._tls = tls or TLSPolicy()
        self._maxsize = maxsize
        self._timeouts = timeouts
        self._pools: dict[tuple[str, str, int, bool], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._verified: ssl.SSLContext | None = None

    @property
    def tls(self) -> TLSPolicy:
        return self._tls

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                body: bytes | None = None, timeout: float | None = None,
                max_body: int = DEFAULT_MAX_BODY, operation: str = "") -> Response:
        """Send one request; redirects are followed, dropping Authorization when the host changes."""
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        operation = operation or f"{method} {redact_url(url)}"
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers, body, timeout, max_body, operation)
            location = response.header("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status == 303:
                method, body = ("GET" if method != "HEAD" else "HEAD"), None
            url = target
        raise TransportError(f"{operation}: more than {MAX_REDIRECTS} redirects")

    def _send(self, method, url, headers, body, timeout, max_body, operation) -> Response:
        scheme, host, port = _split(url)
        pool = self._pool(scheme, host, port)
        path = _path_and_query(url)
        limit = urllib3.Timeout(connect=_cap(self._timeouts.connect, timeout), read=_cap(self._timeouts.read, timeout))
        try:
            raw = pool.urlopen(method, path, headers=headers, body=body, retries=False, redirect=False,
                               timeout=limit, preload_content=False, assert_same_host=False)
            try:
                data = _read_capped(raw, max_body, operation)
            finally:
                raw.release_conn()
        except NewConnectionError as exc:  # first: urllib3 derives it from ConnectTimeoutError, yet it is a refusal
            raise TransportError(f"{operation}: {_connection_reason(exc)}") from exc
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            raise RegistryTimeoutError(f"{operation}: timed out") from exc
        except SSLError as exc:
            raise TLSError(f"{operation}: TLS failed ({_ssl_reason(exc)})") from exc
        except (NewConnectionError, ProtocolError, MaxRetryError, HTTPError, OSError) as exc:
            raise TransportError(f"{operation}: {_connection_reason(exc)}") from exc
        return Response(status=raw.status, headers=raw.headers, body=data, url=url)

    def _pool(self, scheme: str, host: str, port: int) -> urllib3.HTTPConnectionPool:
        verify = scheme == "https" and self._tls.mode_for(host, port) is TLSMode.VERIFY
        key = (scheme, host, port, verify)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._new_pool(scheme, host, port, verify)
                self._pools[key] = pool
            return pool

    def _new_pool(self, scheme, host, port, verify) -> urllib3.HTTPConnectionPool:
        common = dict(maxsize=self._maxsize, block=True, retries=False)
        if scheme == "http":
            return urllib3.HTTPConnectionPool(host, port, **common)
        if verify:
            if self._verified is None:
                self._verified = self._tls.verified_context()
            context = self._verified
        else:
            context = self._tls.unverified_context()
        return urllib3.HTTPSConnectionPool(host, port, ssl_context=context,
                                           assert_hostname=None if verify else False, **common)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _read_capped(raw, max_body: int, operation: str) -> bytes:
    chunks, total = [], 0
    for chunk in raw.stream(64 * 1024, decode_content=True):
        total += len(chunk)
        if total > max_body:
            raise TransportError(f"{operation}: response body larger than {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _cap(limit: float, deadline_left: float | None) -> float:
    # urllib3 refuses a zero timeout; a spent deadline still gets a token chance to fail fast.
    value = limit if deadline_left is None else min(limit, deadline_left)
    return max(value, 0.001)


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"request {redact_url(url)}: not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TransportError(f"request {redact_url(url)}: bad port") from None
    return parts.scheme, parts.hostname, port


def _origin(url: str) -> tuple[str, str, int]:
    try:
        return _split(url)
    except TransportError:
        return ("", url, 0)


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _ssl_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or "certificate verification failed"
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return cause.reason
    return type(exc).__name__


def _connection_reason(exc: BaseException) -> str:
    """A short cause from the OS error at the bottom of urllib3's wrapping."""
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return "host not found"
    if isinstance(exc, ProtocolError):
        return "connection broken"
    return type(exc).__name__


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        nested = [a for a in exc.args if isinstance(a, BaseException)]
        exc = exc.__cause__ or exc.__context__ or (nested[0] if nested else None) or getattr(exc, "reason", None)
