"""Distance in userspace: a delaying TCP proxy in front of each server, all on one event loop.

    client ──► 127.0.0.1:<front port> ──(+D)──► 127.0.0.1:<server port>
    client ◄── 127.0.0.1:<front port> ◄──(+D)── server

Every chunk read in either direction is stamped on arrival and written on at
arrival + D, in arrival order: this is latency, not a throughput cap. The
kernel completes the client's TCP handshake with the proxy at once, so the
handshake's round trip is added back: a connection's first chunk towards the
server is held until accept + 3D, when it would have reached a server D away
(SYN, SYN-ACK, then the data). TLS passes through untouched; the servers'
certificates name 127.0.0.1, which every front port shares.

`Network` owns the loop thread, the fronts and the records of every connection
(accept time, first and last bytes each way), which tell when a scan made its
first request to each server. `delay` may change at any time: set-up runs at 0,
scans at D.
"""
from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from dataclasses import dataclass, field

_EOF = object()  # a queued half-close
_LISTEN_BACKLOG = 256


@dataclass
class ConnectionRecord:
    """One client connection through a front; times are time.monotonic() seconds.

    `events` are arrivals at the proxy, in order: ("up", t, bytes) from the client,
    ("down", t, bytes) from the server, ("up-eof", t, 0) and ("down-eof", t, 0).
    The other side sees each one `delay` later.
    """

    front: str
    accepted: float
    events: list[tuple[str, float, int]] = field(default_factory=list)

    def times(self, kind: str) -> list[float]:
        return [t for k, t, _ in self.events if k == kind]

    def bytes(self, kind: str) -> int:
        return sum(n for k, _, n in self.events if k == kind)

    def last_answer(self) -> float | None:
        """Arrival of the last server bytes sent before the client hung up (teardown excluded)."""
        hung_up = next((t for k, t, _ in self.events if k == "up-eof"), None)
        answers = [t for t in self.times("down") if hung_up is None or t < hung_up]
        return answers[-1] if answers else None


@dataclass
class Front:
    name: str
    port: int
    upstream_port: int
    server: asyncio.AbstractServer | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Network:
    """Delaying fronts on 127.0.0.1; `start()` runs the loop thread, `stop()` closes everything."""

    def __init__(self, delay: float = 0.0, *, handshake: bool = True):
        self.delay = delay  # seconds each way
        self.handshake = handshake  # add the TCP handshake's round trip to each new connection
        self.fronts: dict[str, Front] = {}
        self._records: list[ConnectionRecord] = []
        self._late: list[float] = []  # per forwarded chunk: seconds written after its release time
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Network:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-network", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def front(self, name: str, upstream_port: int) -> Front:
        """Listen on a free port of 127.0.0.1 and forward, delayed, to `upstream_port`."""
        future = asyncio.run_coroutine_threadsafe(self._listen(name, upstream_port), self._loop)
        front = future.result(timeout=10)
        self.fronts[name] = front
        return front

    # -- records --------------------------------------------------------------

    def mark(self) -> int:
        with self._lock:
            return len(self._records)

    def late_mark(self) -> int:
        with self._lock:
            return len(self._late)

    def lateness_since(self, mark: int) -> list[float]:
        """How late each chunk forwarded since the mark left the proxy: the emulation's own error."""
        with self._lock:
            return self._late[mark:]

    def records_since(self, mark: int) -> list[ConnectionRecord]:
        """Copies, so a reader never sees a record change under it."""
        with self._lock:
            return [ConnectionRecord(r.front, r.accepted, list(r.events)) for r in self._records[mark:]]

    def _record(self, front: str) -> ConnectionRecord:
        record = ConnectionRecord(front, time.monotonic())
        with self._lock:
            self._records.append(record)
        return record

    # -- on the loop ------------------------------------------------------------

    async def _listen(self, name: str, upstream_port: int) -> Front:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        front = Front(name, sock.getsockname()[1], upstream_port)
        front.server = await self._loop.create_server(
            lambda: _ClientSide(self, front), sock=sock, backlog=_LISTEN_BACKLOG)
        return front

    async def _close_all(self) -> None:
        for front in self.fronts.values():
            front.server.close()
        for link in list(self._links):
            link.close()
        for front in self.fronts.values():
            await front.server.wait_closed()


class _Pipe:
    """One direction of one connection: chunks wait in arrival order until their release time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, network: Network):
        self._loop, self._network = loop, network
        self._queue: collections.deque = collections.deque()
        self._target: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._not_before = 0.0  # release times never go backwards, so order holds when the delay changes
        self.closed = False

    def attach(self, transport: asyncio.Transport) -> None:
        self._target = transport
        self._drain()

    def push(self, item, *, hold_until: float = 0.0) -> None:
        release = max(self._loop.time() + self._network.delay, hold_until, self._not_before)
        self._not_before = release
        self._queue.append((release, item))
        if self._timer is None:
            self._drain()

    @property
    def last_release(self) -> float:
        return self._not_before

    def _drain(self) -> None:
        self._timer = None
        if self._target is None or self.closed:
            return
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            release, item = self._queue.popleft()
            with self._network._lock:
                self._network._late.append(now - release)
            if item is _EOF:
                self._send_eof()
            elif not self._target.is_closing():
                self._target.write(item)
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._drain)

    def _send_eof(self) -> None:
        if not self._target.is_closing() and self._target.can_write_eof():
            try:
                self._target.write_eof()
            except OSError:
                pass  # the peer is gone already; its own close reaches the other side

    def cancel(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Link:
    """Both directions of one client connection, and when to close it."""

    def __init__(self, network: Network, front: Front, client: asyncio.Transport):
        loop = asyncio.get_running_loop()
        self.network, self.front, self.client = network, front, client
        self.server: asyncio.Transport | None = None
        self.record = network._record(front.name)
        self.up = _Pipe(loop, network)
        self.down = _Pipe(loop, network)
        # The client believes it is connected already; its first bytes reach the server when they
        # would have after a real handshake: SYN (D), SYN-ACK (D), data (D).
        self.hold_until = loop.time() + 3 * network.delay if network.handshake else 0.0
        self.up_eof = self.down_eof = False
        network._links.add(self)
        loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(lambda: _ServerSide(self), "127.0.0.1",
                                                        self.front.upstream_port)
        except OSError:
            self.close()  # nothing listens there: the client sees a reset-like close
            return
        self.server = transport
        self.up.attach(transport)

    def from_client(self, data: bytes) -> None:
        self._note("up", len(data))
        self.up.push(data, hold_until=self.hold_until)

    def from_server(self, data: bytes) -> None:
        self._note("down", len(data))
        self.down.push(data)

    def client_eof(self) -> None:
        self._note("up-eof", 0)
        self.up_eof = True
        self.up.push(_EOF)
        self._close_when_done()

    def server_eof(self) -> None:
        self._note("down-eof", 0)
        self.down_eof = True
        self.down.push(_EOF)
        self._close_when_done()

    def _note(self, kind: str, size: int) -> None:
        with self.network._lock:
            self.record.events.append((kind, time.monotonic(), size))

    def lost(self) -> None:
        """One side went away without a clean half-close: deliver what is queued, then close."""
        self._close_after_queued()

    def _close_when_done(self) -> None:
        if self.up_eof and self.down_eof:
            self._close_after_queued()

    def _close_after_queued(self) -> None:
        loop = asyncio.get_running_loop()
        loop.call_at(max(self.up.last_release, self.down.last_release, loop.time()) + 0.001, self.close)

    def close(self) -> None:
        self.up.cancel()
        self.down.cancel()
        for transport in (self.client, self.server):
            if transport is not None and not transport.is_closing():
                transport.close()
        self.network._links.discard(self)


class _ClientSide(asyncio.Protocol):
    def __init__(self, network: Network, front: Front):
        self.network, self.front = network, front
        self.link: _Link | None = None

    def connection_made(self, transport) -> None:
        _no_delay(transport)
        self.link = _Link(self.network, self.front, transport)
        self.link.down.attach(transport)

    def data_received(self, data: bytes) -> None:
        self.link.from_client(data)

    def eof_received(self) -> bool:
        self.link.client_eof()
        return True  # keep our side open: the answer may still be on its way

    def connection_lost(self, exc) -> None:
        if self.link is not None:
            self.link.lost()


class _ServerSide(asyncio.Protocol):
    def __init__(self, link: _Link):
        self.link = link

    def connection_made(self, transport) -> None:
        _no_delay(transport)

    def data_received(self, data: bytes) -> None:
        self.link.from_server(data)

    def eof_received(self) -> bool:
        self.link.server_eof()
        return True

    def connection_lost(self, exc) -> None:
        self.link.lost()


def _no_delay(transport: asyncio.BaseTransport) -> None:
    # Nagle would hold small chunks back behind unacknowledged ones and add delay of its own.
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
