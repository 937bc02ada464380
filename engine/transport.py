"""HTTP for registries: kept-alive connections per origin, shared by all threads.

This is the only module that talks to urllib3, and it uses urllib3's public API
only: a connection is a ``urllib3.connection.HTTPConnection`` or
``HTTPSConnection`` driven through ``connect()``, ``request()`` and
``getresponse()``. The module knows nothing of registries' auth; it sends one
request (following a bounded number of redirects), caps the body it reads, and
turns every failure into a typed error that names the operation and a redacted
URL.

Connections: each origin (scheme, host, port, verified or not) keeps up to
``maxsize`` idle connections, the most recently used first. A request takes an
idle one that is still usable or opens a new one, and gives it back once its
answer is read to the end. ``open_connections`` opens connections ahead of the
requests that will use them: a scan opens its lookups' connections while it is
still pinging the registry and fetching its token, so that no lookup pays a TCP
and TLS handshake after the token is in hand.

Per-read timeouts cannot stop a server that sends one byte at a time, so each
request also has a total limit (the smaller of ``Timeouts.total`` and what the
caller's deadline leaves): one watcher thread per HttpPools shuts the socket of
a request that passes it. The watcher runs only while requests do (it ends after
``_Watcher.LINGER`` idle), so a kept HttpPools holds no thread between scans.

Whoever creates an HttpPools closes it (``close()`` or ``with``): that closes
the idle connections, cuts short the requests still running, and ends every
thread the transport started.
"""
from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.client import HTTPException
from typing import Callable, Mapping, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from .errors import RegistryError, RegistryTimeoutError, TLSError, TransportError, causes, redact_url
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
    """Kept-alive connections per (scheme, host, port, verify), created on first use; a Transport.

    ``maxsize`` (idle connections kept per origin) should match the scan's
    concurrency so that every worker finds a kept-alive connection to a host.
    A context manager: leaving the ``with`` block closes it.
    """

    def __init__(self, tls: TLSPolicy | None = None, *, maxsize: int = 8, timeouts: Timeouts = Timeouts()):
        self._tls = tls or TLSPolicy()
        self._maxsize = maxsize
        self._timeouts = timeouts
        self._origins: dict[tuple[str, str, int, bool], _Origin] = {}
        self._openers: set[threading.Thread] = set()  # helpers of open_connections calls under way
        self._closed = False
        self._lock = threading.Lock()
        self._trust_lock = threading.Lock()
        self._verified: ssl.SSLContext | None = None
        self._watcher = _Watcher()

    def __enter__(self) -> HttpPools:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

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
        """Open connections to base_url's origin, side by side, until up to `count` are idle there
        (as many as `maxsize` leaves beside the busy ones); returns how many are. Failures are
        dropped: the requests that follow meet the same failure and report it. Each handshake is
        bounded like a request's connect."""
        origin = self._origin_for(*_split(base_url), operation=f"open connections to {shown_url(base_url)}")
        ready, fresh = origin.reserve(count)
        limit = _cap(self._timeouts.connect, timeout)
        return ready + sum(self._side_by_side([partial(self._open_one, origin, conn, limit) for conn in fresh]))

    def _open_one(self, origin: _Origin, conn: HTTPConnection, limit: float) -> bool:
        watch = self._watcher.watch(conn, limit)  # fired already once close() has begun
        try:
            if not watch.fired:
                conn.timeout = limit
                conn.connect()
            return not watch.fired
        except (HTTPError, OSError):
            return False
        finally:
            watch.cancel()
            origin.give_back(conn, reusable=not watch.fired)

    def _side_by_side(self, calls: list[Callable[[], bool]]) -> list[bool]:
        """Run calls at once: the first in this thread, the others in helpers that close() waits for."""
        results = [False] * len(calls)

        def run(index: int) -> None:
            results[index] = calls[index]()

        with self._lock:  # once closed, no helper starts: the calls, run here, end at once
            helpers = [] if self._closed else [
                threading.Thread(target=run, args=(i,), name="spyglass-connect") for i in range(1, len(calls))]
            self._openers.update(helpers)
        for helper in helpers:
            helper.start()
        try:
            for index in range(len(calls) - len(helpers)):
                run(index)
        finally:
            for helper in helpers:
                helper.join()
            with self._lock:
                self._openers.difference_update(helpers)
        return results

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
        origin = self._origin_for(*_split(url), operation=operation)
        conn = origin.take()
        watch = self._watcher.watch(conn, _cap(self._timeouts.total, timeout))
        reusable = False
        try:
            raw = self._exchange(conn, watch, method, _path_and_query(url), headers, body, timeout)
            data = _read_capped(raw, max_body, operation)
            reusable = raw.closed and conn.sock is not None  # read to its end, and the server keeps it open
        except (HTTPError, OSError, HTTPException) as exc:
            if watch.fired:
                raise self._cut_short(operation) from exc
            raise _transport_error(exc, operation) from exc
        finally:
            watch.cancel()
            origin.give_back(conn, reusable=reusable and not watch.fired)
        return Response(status=raw.status, headers=raw.headers, body=data, url=url)

    def _exchange(self, conn: HTTPConnection, watch: _Watch, method, path, headers, body, timeout):
        """Connect if need be, send, and return the response with its body still to read."""
        conn.timeout = _cap(self._timeouts.connect, timeout)
        if conn.sock is None and not watch.fired:
            conn.connect()
        if watch.fired:  # it passed while the socket did not exist yet, so nothing was shut
            raise TimeoutError("total limit passed while connecting")
        conn.request(method, path, body=body, headers=headers, preload_content=False)
        conn.timeout = _cap(self._timeouts.read, timeout)  # getresponse() puts it on the socket
        return conn.getresponse()

    def _cut_short(self, operation: str) -> TransportError:
        if self._closed:
            return TransportError(f"{operation}: cut short, the connection pools were closed")
        return RegistryTimeoutError(f"{operation}: timed out (no complete answer in time)")

    def _origin_for(self, scheme: str, host: str, port: int, *, operation: str) -> _Origin:
        verify = scheme == "https" and self._tls.mode_for(host, port).verifies
        key = (scheme, host, port, verify)
        with self._lock:
            self._refuse_if_closed(operation)
            origin = self._origins.get(key)
        if origin is None:
            fresh = self._new_origin(scheme, host, port, verify)  # may load the trust store: not under the lock
            with self._lock:
                self._refuse_if_closed(operation)
                origin = self._origins.setdefault(key, fresh)
        return origin

    def _refuse_if_closed(self, operation: str) -> None:
        if self._closed:
            raise TransportError(f"{operation}: the connection pools are closed")

    def _new_origin(self, scheme: str, host: str, port: int, verify: bool) -> _Origin:
        if scheme == "http":
            return _Origin(partial(HTTPConnection, host, port), self._maxsize)
        context = self.load_trust() if verify else self._tls.unverified_context()
        return _Origin(partial(HTTPSConnection, host, port, ssl_context=context,
                               assert_hostname=None if verify else False), self._maxsize)

    def close(self) -> None:
        """Close every idle connection, cut short the requests still running, and wait for the
        threads this transport started. Idempotent; a closed HttpPools refuses new requests."""
        with self._lock:
            self._closed = True
            origins, self._origins = list(self._origins.values()), {}
            openers = list(self._openers)
        self._watcher.close()  # shuts the sockets of requests and handshakes under way
        for opener in openers:
            opener.join()
        for origin in origins:
            origin.close()


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
    """The typed error for a urllib3, http.client or socket failure (the order matters: the classes overlap)."""
    if isinstance(exc, NewConnectionError):  # urllib3 derives it from ConnectTimeoutError, yet it is a refusal
        return TransportError(f"{operation}: {_connection_reason(exc)}")
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return RegistryTimeoutError(f"{operation}: timed out")
    if isinstance(exc, (SSLError, ssl.SSLError)):
        return TLSError(f"{operation}: TLS failed ({_ssl_reason(exc)})")
    return TransportError(f"{operation}: {_connection_reason(exc)}")


class _Origin:
    """The kept-alive connections to one origin: up to `keep` idle ones, the most recently used on top."""

    def __init__(self, new: Callable[[], HTTPConnection], keep: int):
        self._new = new  # a connection not yet connected
        self._keep = keep
        self._idle: list[HTTPConnection] = []
        self._busy = 0  # taken and not yet given back
        self._closed = False
        self._lock = threading.Lock()

    def take(self) -> HTTPConnection:
        """An idle connection that is still usable, else a new one (connected by its first request)."""
        with self._lock:
            self._busy += 1
            while self._idle:
                conn = self._idle.pop()
                if _usable(conn):
                    return conn
                conn.close()
        return self._new()

    def reserve(self, count: int) -> tuple[int, list[HTTPConnection]]:
        """For open_connections: how many usable idle connections count toward `count` (no more than
        `keep` leaves beside the busy ones), and new connections, taken, for the rest."""
        with self._lock:
            for conn in [c for c in self._idle if not _usable(c)]:
                self._idle.remove(conn)
                conn.close()
            wanted = max(0, min(count, self._keep - self._busy))
            ready = min(wanted, len(self._idle))
            self._busy += wanted - ready
        return ready, [self._new() for _ in range(wanted - ready)]

    def give_back(self, conn: HTTPConnection, *, reusable: bool) -> None:
        with self._lock:
            self._busy -= 1
            kept = reusable and conn.sock is not None and not self._closed and len(self._idle) < self._keep
            if kept:
                self._idle.append(conn)
        if not kept:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _usable(conn: HTTPConnection) -> bool:
    """Whether an idle connection can carry a request. urllib3 counts an idle socket with bytes
    waiting as dropped (EOF, or an answer nobody asked for); but a TLS 1.3 server sends its session
    tickets after the handshake, so a connection opened ahead of its first request has such bytes:
    let OpenSSL read them, and only application data or EOF count as dropped."""
    if conn.is_connected:
        return True
    return isinstance(conn.sock, ssl.SSLSocket) and _only_tls_records_waiting(conn.sock)


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


class _Watcher:
    """Shuts the socket of any request past its total limit: one thread for all of an HttpPools'
    requests, sleeping until the nearest deadline (a heap). The thread starts with the first watch
    and ends after LINGER seconds with nothing to watch; close() ends it at once and cuts short
    every request still watched."""

    LINGER = 0.1  # short: a process that forgets close() waits this long for the thread at exit

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._live = 0  # watches neither fired nor cancelled
        self._order = itertools.count()  # ties on a deadline never compare two watches
        self._thread: threading.Thread | None = None
        self._running = False
        self._closed = False

    def watch(self, conn: HTTPConnection, seconds: float) -> _Watch:
        watch = _Watch(self, conn)
        with self._cond:
            if self._closed:
                self._fire(watch)
                return watch
            if len(self._heap) > 64 + 2 * self._live:  # mostly cancelled entries: drop them
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), watch))
            self._live += 1
            self._start()
            if self._heap[0][2] is watch:
                self._cond.notify()
        return watch

    def cancel(self, watch: _Watch) -> None:
        with self._cond:
            if not watch.done:
                watch.done = True
                self._live -= 1
                if self._live == 0:  # only cancelled ones left: the thread, asleep until the
                    self._heap.clear()  # first of them, may start its linger now
                    self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for _, _, watch in self._heap:
                if not watch.done:
                    self._fire(watch)
            self._heap.clear()
            self._live = 0
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        if not self._running:
            if self._thread is not None:
                self._thread.join()  # it has left its loop (under this lock) and only returns now
            self._thread = threading.Thread(target=self._run, name="spyglass-watch")
            self._running = True
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done:
                        self._live -= 1
                        self._fire(watch)
                if self._live == 0:
                    self._heap.clear()
                if self._heap:
                    self._cond.wait(self._heap[0][0] - now)
                elif not self._cond.wait(self.LINGER) and not self._heap:
                    break
            self._running = False

    @staticmethod
    def _fire(watch: _Watch) -> None:
        watch.fired = watch.done = True
        _shut(watch.conn)


class _Watch:
    """One request's total limit, as its watcher sees it (state guarded by the watcher's lock)."""

    def __init__(self, watcher: _Watcher, conn: HTTPConnection):
        self.conn = conn
        self.fired = False
        self.done = False  # fired or cancelled
        self._watcher = watcher

    def cancel(self) -> None:
        self._watcher.cancel(self)


def _shut(connection: HTTPConnection) -> None:
    # socket.socket's own shutdown, also for TLS sockets: it wakes a read blocked in another thread.
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


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
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or "certificate verification failed"
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return cause.reason
    return type(exc).__name__


def _connection_reason(exc: BaseException) -> str:
    """A short cause from the OS error at the bottom of urllib3's wrapping."""
    for cause in causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return "host not found"
    if isinstance(exc, (ProtocolError, HTTPException)):
        return "connection broken"
    return type(exc).__name__

