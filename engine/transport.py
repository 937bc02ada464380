"""HTTP for registries: one kept-alive urllib3 pool per (scheme, host, port), shared by all threads.

This is the only module that talks to urllib3. It knows nothing of registries'
auth; it sends one request (following a bounded number of redirects), caps the
body it reads, and turns every failure into a typed error that names the
operation and a redacted URL.

Per-read timeouts cannot stop a server that sends one byte at a time, so each
request also has a total limit (the smaller of ``Timeouts.total`` and what the
caller's deadline leaves): a timer shuts the request's socket when it passes.

Connections can be opened ahead of the requests that will use them
(``open_connections``): a scan opens its lookups' connections while it is still
pinging the registry and fetching its token, so that no lookup pays a TCP and
TLS handshake after the token is in hand.
"""
from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Mapping, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    EmptyPoolError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ConnectTimeoutError,
    SSLError,
)
from urllib3.util.wait import wait_for_read

from .errors import RegistryError, RegistryTimeoutError, TLSError, TransportError, redact_url
from .tlsconfig import TLSPolicy
from .version import user_agent

USER_AGENT = user_agent()
MAX_REDIRECTS = 5
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # manifests are limited to 4 MiB by the distribution spec
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
_THIS_HOST = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": 0.0.0.0 reaches local services
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,254}}$)({_LABEL}\.)*{_LABEL}\.?", re.IGNORECASE)  # RFC 1123 names, "_" allowed


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0  # between two reads
    total: float = 60.0  # one request from connect to its last byte, however the server trickles


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


@dataclass(frozen=True)
class Request:
    """One HTTP request as the registry layers see it."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float | None = None  # what the caller's deadline leaves, None for no deadline
    max_body: int = DEFAULT_MAX_BODY
    operation: str = ""  # "HEAD manifest reg/repo:tag", for error messages


class Transport(Protocol):
    """The one-method interface every registry layer takes and (for wrappers) provides."""

    def round_trip(self, request: Request) -> Response: ...


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
        self._trust_lock = threading.Lock()
        self._verified: ssl.SSLContext | None = None
        self._current = threading.local()  # the running request's _Watch, seen by its connection

    @property
    def tls(self) -> TLSPolicy:
        return self._tls

    def load_trust(self) -> ssl.SSLContext:
        """The verifying TLS context, built once (loading certifi's bundle costs tens of ms of CPU,
        so a scan starts it in the background while the daemon lists)."""
        with self._trust_lock:
            if self._verified is None:
                self._verified = self._tls.verified_context()
            return self._verified

    def open_connections(self, base_url: str, count: int, *, timeout: float | None = None) -> int:
        """Open up to `count` connections to base_url's origin, side by side, and leave them idle in
        its pool; returns how many are open. Failures are dropped: the requests that follow meet
        the same failure and report it. Each handshake is bounded like a request's connect."""
        scheme, host, port = _split(base_url)
        pool = self._pool(scheme, host, port)
        limit = _cap(self._timeouts.connect, timeout)
        taken = pool.take_idle(count)
        opened: list[bool] = []
        threads = [threading.Thread(target=lambda c=conn: opened.append(self._open_one(pool, c, limit)),
                                    name="spyglass-connect", daemon=True) for conn in taken]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(opened)

    def _open_one(self, pool: _PoolMixin, conn: HTTPConnection, limit: float) -> bool:
        watch = self._current.watch = _Watch(limit)
        try:
            if conn.sock is None:
                conn.timeout = limit
                conn.connect()
            return True
        except (HTTPError, OSError):
            conn.close()
            return False
        finally:
            watch.cancel()
            self._current.watch = None
            pool.give_back(conn)

    def round_trip(self, request: Request) -> Response:
        return self.request(request.method, request.url, headers=dict(request.headers), body=request.body,
                            timeout=request.timeout, max_body=request.max_body, operation=request.operation)

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
            self._check_redirect(target, url, operation)
            if response.status == 303:
                method, body = ("GET" if method != "HEAD" else "HEAD"), None
            url = target
        raise RegistryError(f"{operation}: more than {MAX_REDIRECTS} redirects")

    def _check_redirect(self, target: str, source: str, operation: str) -> None:
        """A redirect is no way around TLS (plain http only toward a host whose mode allows it), nor inward."""
        scheme, host, port = _split(target)
        if scheme == "http" and not self._tls.mode_for(host, port).allows_plain_http:
            raise RegistryError(f"{operation}: refusing a redirect to plain http ({shown_url(target)})")
        if internal_host(host) and not internal_host(_split(source)[1]):
            raise RegistryError(f"{operation}: refusing a redirect to an internal address ({shown_url(target)})")

    def _send(self, method, url, headers, body, timeout, max_body, operation) -> Response:
        scheme, host, port = _split(url)
        pool = self._pool(scheme, host, port)
        path = _path_and_query(url)
        limit = urllib3.Timeout(connect=_cap(self._timeouts.connect, timeout), read=_cap(self._timeouts.read, timeout))
        watch = self._current.watch = _Watch(_cap(self._timeouts.total, timeout))
        try:
            raw = pool.urlopen(method, path, headers=headers, body=body, retries=False, redirect=False,
                               timeout=limit, preload_content=False, assert_same_host=False)
            try:
                data = _read_capped(raw, max_body, operation)
            finally:
                raw.release_conn()
        except (HTTPError, OSError) as exc:
            if watch.fired:
                raise RegistryTimeoutError(f"{operation}: timed out (no complete answer in time)") from exc
            raise _transport_error(exc, operation) from exc
        finally:
            watch.cancel()
            self._current.watch = None
        return Response(status=raw.status, headers=raw.headers, body=data, url=url)

    def _pool(self, scheme: str, host: str, port: int) -> urllib3.HTTPConnectionPool:
        verify = scheme == "https" and self._tls.mode_for(host, port).verifies
        key = (scheme, host, port, verify)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._new_pool(scheme, host, port, verify)
                self._pools[key] = pool
            return pool

    def _new_pool(self, scheme, host, port, verify) -> urllib3.HTTPConnectionPool:
        common = dict(maxsize=self._maxsize, block=True, retries=False, current=self._current)
        if scheme == "http":
            return _Pool(host, port, **common)
        if verify:
            context = self.load_trust()
        else:
            context = self._tls.unverified_context()
        return _TLSPool(host, port, ssl_context=context, assert_hostname=None if verify else False, **common)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def valid_host(host: str) -> bool:
    """An IP address or an ASCII DNS name (what a registry, realm or redirect may name)."""
    return host_address(host) is not None or bool(_HOST_NAME.fullmatch(host))


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal stands for, in any form the C resolver accepts (127.1, 0x7f000001, ...)."""
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fA-FxX.]+", host):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return getattr(address, "ipv4_mapped", None) or address


def internal_host(host: str) -> bool:
    """Loopback, link-local, unspecified or a cloud metadata endpoint, judged by the host as written.

    A DNS name that resolves to such an address is not caught: see docs/security.md.
    """
    name = host.lower().strip("[]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or name in _METADATA_HOSTS:
        return True
    address = host_address(name)
    return address is not None and (address.is_loopback or address.is_link_local or address.is_unspecified
                                     or address in _METADATA_ADDRESSES or address in _THIS_HOST)


def shown_url(url: str, limit: int = 200) -> str:
    """A URL as an error may show it: redacted, and cut when a server made it absurdly long."""
    text = redact_url(url)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _transport_error(exc: BaseException, operation: str) -> TransportError:
    """The typed error for a urllib3 or socket failure (the order matters: urllib3's classes overlap)."""
    if isinstance(exc, NewConnectionError):  # urllib3 derives it from ConnectTimeoutError, yet it is a refusal
        return TransportError(f"{operation}: {_connection_reason(exc)}")
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return RegistryTimeoutError(f"{operation}: timed out")
    if isinstance(exc, SSLError):
        return TLSError(f"{operation}: TLS failed ({_ssl_reason(exc)})")
    return TransportError(f"{operation}: {_connection_reason(exc)}")


class _Watch:
    """Shuts the socket of one request that outlives its total limit, from a timer thread."""

    def __init__(self, seconds: float):
        self.fired = False
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.fired:
                _shut(connection)

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection: HTTPConnection) -> None:
    # socket.socket's own shutdown, also for TLS sockets: it wakes a read blocked in another thread.
    if connection.sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)


class _Watched:
    """A connection that shows itself to the _Watch of the request it serves (connect, then send)."""

    def __init__(self, *args, current: threading.local, **kwargs):
        super().__init__(*args, **kwargs)
        self._current = current

    def connect(self) -> None:
        self._show()
        super().connect()

    def request(self, *args, **kwargs) -> None:
        self._show()
        super().request(*args, **kwargs)

    def _show(self) -> None:
        watch = getattr(self._current, "watch", None)
        if watch is not None:
            watch.attach(self)


class _Connection(_Watched, HTTPConnection):
    pass


class _TLSConnection(_Watched, HTTPSConnection):
    @property
    def is_connected(self) -> bool:
        # urllib3 takes an idle socket with bytes waiting for a dropped connection. A TLS 1.3 server
        # sends its session tickets after the handshake, so a connection opened ahead of its first
        # request has such bytes: let OpenSSL read them, and only data or EOF count as dropped.
        if self.sock is None:
            return False
        if not wait_for_read(self.sock, timeout=0.0):
            return True
        return isinstance(self.sock, ssl.SSLSocket) and _only_tls_records_waiting(self.sock)


def _only_tls_records_waiting(sock: ssl.SSLSocket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1)  # returns data or b"" (EOF): either way the connection is no longer usable
        return False
    except ssl.SSLWantReadError:
        return True  # records read, no application data
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


class _PoolMixin:
    """Checkout of idle connection slots for open_connections, through urllib3's own (internal,
    stable since 1.x) _get_conn/_put_conn: the pool stays the only owner of its connections."""

    def take_idle(self, count: int) -> list[HTTPConnection]:
        """Up to `count` connections the pool can spare now, without waiting for one."""
        taken = []
        while len(taken) < count:
            try:
                taken.append(self._get_conn(timeout=0))
            except EmptyPoolError:
                break
        return taken

    def give_back(self, conn: HTTPConnection) -> None:
        self._put_conn(conn)


class _Pool(_PoolMixin, urllib3.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(_PoolMixin, urllib3.HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


def _read_capped(raw, max_body: int, operation: str) -> bytes:
    chunks, total = [], 0
    for chunk in raw.stream(64 * 1024, decode_content=True):
        total += len(chunk)
        if total > max_body:  # not temporary: asking again would bring the same body
            raise RegistryError(f"{operation}: response body larger than {max_body} bytes")
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
