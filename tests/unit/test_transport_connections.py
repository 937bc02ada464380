"""The transport's connections over real sockets: opened early, kept alive, watched, closed.

Small threaded servers on loopback count what they see: the connections they
accept and the ones that end (a TLS 1.3 one sends session tickets after the
handshake), and a trickling server holds a request open one byte at a time.
Counts prove what reached the network, never a stopwatch.
"""
from __future__ import annotations

import ast
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3

from engine.errors import RegistryTimeoutError, TransportError
from engine.tlsconfig import TLSPolicy
from engine.transport import HttpPools, Timeouts
from tests.faults.certs import Authority
from tests.stack.okserver import OkHandler, serve_ok

TRANSPORT = Path(__file__).parents[2] / "engine" / "transport.py"


class _CountingServer(ThreadingHTTPServer):
    """Counts connections accepted and ended; remembers its own handler threads."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None, handler=OkHandler):
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context
        self.accepted = 0
        self.ended = 0
        self.handlers: set[threading.Thread] = set()
        self.watchers_seen: list[int] = []  # spyglass-watch threads alive at each request
        self.changed = threading.Condition()

    def get_request(self):
        sock, address = self.socket.accept()
        with self.changed:
            self.accepted += 1
        return (self.context.wrap_socket(sock, server_side=True) if self.context else sock), address

    def process_request_thread(self, request, client_address):
        with self.changed:
            self.handlers.add(threading.current_thread())
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request):
        super().shutdown_request(request)
        with self.changed:
            self.ended += 1
            self.changed.notify_all()

    def wait_until_all_ended(self) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.ended == self.accepted, timeout=10)


class _WatchingHandler(OkHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.watchers_seen.append(sum(t.name == "spyglass-watch" for t in threading.enumerate()))
        super().do_GET()


class _DroppingHandler(OkHandler):
    """Answers, then closes the connection without saying so (as a server's idle timeout does)."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        super().do_GET()
        self.close_connection = True


class _Trickler:
    """Reads a request, then sends a status line one byte every 50 ms until the client goes."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.asked = threading.Event()  # a request arrived
        self.client_gone = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            self.asked.set()
            try:
                for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                self.client_gone.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return Authority.create(tmp_path_factory.mktemp("transport-ca"), "transport test CA")


def _serve(server: _CountingServer):
    httpd = serve_ok(server)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(authority):
    pair = authority.server("loopback", ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3  # whose servers send tickets after the handshake
    context.load_cert_chain(pair.cert, pair.key)
    yield from _serve(_CountingServer(context, _WatchingHandler))


@pytest.fixture
def plain_server():
    yield from _serve(_CountingServer())


@pytest.fixture
def dropping_server():
    yield from _serve(_CountingServer(handler=_DroppingHandler))


@pytest.fixture
def trickler():
    trickling = _Trickler()
    yield trickling
    trickling.close()


def _pools(authority, size=4, **timeouts) -> HttpPools:
    return HttpPools(TLSPolicy(extra_ca_pem=authority.cert.read_text()), maxsize=size, timeouts=Timeouts(**timeouts))


# -- connections opened early ----------------------------------------------------------------------

def test_connections_opened_early_serve_the_requests_that_follow(server, authority):
    base = f"https://127.0.0.1:{server.server_port}"
    with _pools(authority) as pools:
        assert pools.open_connections(base, 4) == 4
        assert server.accepted == 4
        time.sleep(0.3)  # the server's session tickets are now waiting on every idle socket
        with ThreadPoolExecutor(4) as side:
            statuses = list(side.map(lambda _: pools.request("GET", f"{base}/v2/").status, range(8)))
    assert statuses == [200] * 8
    assert server.accepted == 4  # none was taken for dropped and opened again


def test_the_premise_an_idle_tls13_connection_has_bytes_waiting(server, authority):
    """What the transport's connections must tell apart from a dropped connection."""
    context = ssl.create_default_context(cafile=str(authority.cert))
    plain = urllib3.connection.HTTPSConnection("127.0.0.1", server.server_port, ssl_context=context)
    plain.connect()
    time.sleep(0.3)
    try:
        assert not plain.is_connected  # urllib3's own test: readable means dropped
    finally:
        plain.close()


def test_opening_again_counts_the_idle_connections_and_opens_none(server, authority):
    base = f"https://127.0.0.1:{server.server_port}"
    with _pools(authority) as pools:
        assert pools.open_connections(base, 3) == 3
        assert pools.open_connections(base, 3) == 3
        assert pools.open_connections(base, 9) == 4  # no more than maxsize
    assert server.accepted == 4


def test_opening_toward_nothing_costs_nothing_and_the_request_reports_it(authority):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with _pools(authority) as pools:
        assert pools.open_connections(f"https://127.0.0.1:{port}", 3) == 0
        with pytest.raises(TransportError, match="connection refused"):
            pools.request("GET", f"https://127.0.0.1:{port}/v2/")


def test_a_server_that_never_finishes_the_handshake_holds_no_connection_past_the_limit(authority):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes TCP; nobody ever answers the TLS ClientHello
    try:
        with _pools(authority, connect=0.3, read=0.3, total=1.0) as pools:
            started = time.monotonic()
            assert pools.open_connections(f"https://127.0.0.1:{silent.getsockname()[1]}", 3) == 0
            assert time.monotonic() - started < 3.0  # each attempt is bounded by the connect limit (0.3 s)
    finally:
        silent.close()


# -- kept alive ------------------------------------------------------------------------------------

def test_a_connection_the_server_dropped_while_idle_is_not_used_again(dropping_server):
    base = f"http://127.0.0.1:{dropping_server.server_port}"
    with HttpPools(maxsize=2) as pools:
        for done in range(1, 4):
            assert pools.request("GET", f"{base}/v2/").status == 200
            assert dropping_server.wait_until_all_ended() and dropping_server.ended == done
    assert dropping_server.accepted == 3  # each request found the idle one dropped and opened another


def test_sequential_requests_share_one_connection(plain_server):
    base = f"http://127.0.0.1:{plain_server.server_port}"
    with HttpPools(maxsize=2) as pools:
        assert [pools.request("GET", f"{base}/v2/").status for _ in range(5)] == [200] * 5
    assert plain_server.accepted == 1


# -- the watcher -----------------------------------------------------------------------------------

def test_one_watcher_thread_serves_every_request(server, authority):
    base = f"https://127.0.0.1:{server.server_port}"
    with _pools(authority) as pools, ThreadPoolExecutor(4) as side:
        list(side.map(lambda _: pools.request("GET", f"{base}/v2/"), range(12)))
    assert len(server.watchers_seen) == 12 and set(server.watchers_seen) == {1}


def test_a_trickling_answer_is_cut_at_the_total_limit(trickler):
    with HttpPools(timeouts=Timeouts(connect=2.0, read=10.0, total=0.5)) as pools:
        with pytest.raises(RegistryTimeoutError, match="no complete answer in time"):
            pools.request("GET", f"http://127.0.0.1:{trickler.port}/v2/")  # each byte well inside `read`
    assert trickler.client_gone.wait(5)


def test_a_silent_server_meets_the_read_limit(trickler):
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        with HttpPools(timeouts=Timeouts(connect=2.0, read=0.3, total=30.0)) as pools:
            with pytest.raises(RegistryTimeoutError) as raised:
                pools.request("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/v2/")
        assert "no complete answer" not in str(raised.value)  # the read limit, not the watcher
    finally:
        silent.close()


# -- closing ---------------------------------------------------------------------------------------

def test_close_closes_every_idle_connection(server, authority):
    base = f"https://127.0.0.1:{server.server_port}"
    pools = _pools(authority)
    assert pools.open_connections(base, 3) == 3
    assert pools.request("GET", f"{base}/v2/").status == 200
    pools.close()
    assert server.wait_until_all_ended() and server.accepted == server.ended == 3


def test_close_leaves_no_thread_behind(server, authority, trickler):
    before = set(threading.enumerate())
    base = f"https://127.0.0.1:{server.server_port}"
    with _pools(authority, total=0.3) as pools:
        pools.open_connections(base, 4)
        with ThreadPoolExecutor(4) as side:
            list(side.map(lambda _: pools.request("GET", f"{base}/v2/"), range(8)))
        with pytest.raises(RegistryTimeoutError):
            pools.request("GET", f"http://127.0.0.1:{trickler.port}/v2/")
    assert set(threading.enumerate()) - before - server.handlers == set()


def test_close_cuts_short_a_request_under_way(trickler):
    pools = HttpPools(timeouts=Timeouts(total=60.0))
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            pools.request("GET", f"http://127.0.0.1:{trickler.port}/v2/")
        except TransportError as exc:
            failures.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    assert trickler.asked.wait(5)
    pools.close()
    asking.join(5)
    assert not asking.is_alive()
    assert len(failures) == 1 and "closed" in str(failures[0])


def test_a_closed_transport_refuses_requests_without_a_network_call(plain_server):
    base = f"http://127.0.0.1:{plain_server.server_port}"
    pools = HttpPools()
    pools.close()
    pools.close()  # idempotent
    with pytest.raises(TransportError, match="closed"):
        pools.request("GET", f"{base}/v2/")
    with pytest.raises(TransportError, match="closed"):
        pools.open_connections(base, 2)
    assert plain_server.accepted == 0


# -- urllib3's public API only ---------------------------------------------------------------------

def test_the_transport_uses_no_private_name_of_another_object():
    """Underscore names only on the transport's own objects (self, cls, its module): no urllib3
    internals such as a pool's _get_conn, and no subclass that could override them."""
    tree = ast.parse(TRANSPORT.read_text())
    foreign = [f"line {node.lineno}: .{node.attr}" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})]
    assert foreign == []
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("urllib3") for alias in node.names}
    subclasses = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                  for base in node.bases if ast.unparse(base).split(".")[0] in imported | {"urllib3"}]
    assert subclasses == []


def test_the_watcher_ends_on_its_own_soon_after_the_last_request(plain_server):
    """Not at the last request's total limit (60 s here): a process that forgot close() exits."""
    base = f"http://127.0.0.1:{plain_server.server_port}"
    before = set(threading.enumerate())
    pools = HttpPools(timeouts=Timeouts(total=60.0))
    assert pools.request("GET", f"{base}/v2/").status == 200
    [watcher] = [t for t in set(threading.enumerate()) - before if t.name == "spyglass-watch"]
    watcher.join(10)
    assert not watcher.is_alive()
    assert pools.request("GET", f"{base}/v2/").status == 200  # a new one starts for the next request
    pools.close()
