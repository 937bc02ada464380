"""Connections opened ahead of their requests (HttpPools.open_connections), over real sockets.

A small threaded HTTPS server on loopback (TLS 1.3, keep-alive) counts the
connections it accepts: the proof that a connection opened early is the one a
later request uses, and not dropped and opened again.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import pytest
import urllib3

from engine.errors import TransportError
from engine.tlsconfig import TLSPolicy
from engine.transport import HttpPools, Timeouts
from tests.faults.certs import Authority
from tests.stack.okserver import OkHandler, serve_ok


class _CountingTLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext):
        super().__init__(("127.0.0.1", 0), OkHandler)
        self.context = context
        self.accepted = 0
        self._count_lock = threading.Lock()

    def get_request(self):
        sock, address = self.socket.accept()
        with self._count_lock:
            self.accepted += 1
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return Authority.create(tmp_path_factory.mktemp("transport-ca"), "transport test CA")


@pytest.fixture
def server(authority, tmp_path):
    pair = authority.server("loopback", ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3  # whose servers send tickets after the handshake
    context.load_cert_chain(pair.cert, pair.key)
    httpd = serve_ok(_CountingTLSServer(context))
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _pools(authority, size=4) -> HttpPools:
    return HttpPools(TLSPolicy(extra_ca_pem=authority.cert.read_text()), maxsize=size)


def test_connections_opened_early_serve_the_requests_that_follow(server, authority):
    pools = _pools(authority)
    base = f"https://127.0.0.1:{server.server_port}"
    assert pools.open_connections(base, 4) == 4
    assert server.accepted == 4
    time.sleep(0.3)  # the server's session tickets are now waiting on every idle socket
    with ThreadPoolExecutor(4) as side:
        statuses = list(side.map(lambda _: pools.request("GET", f"{base}/v2/").status, range(8)))
    assert statuses == [200] * 8
    assert server.accepted == 4  # none was taken for dropped and opened again
    pools.close()


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


def test_opening_toward_nothing_costs_nothing_and_the_request_reports_it(authority):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    pools = _pools(authority)
    assert pools.open_connections(f"https://127.0.0.1:{port}", 3) == 0
    with pytest.raises(TransportError, match="connection refused"):
        pools.request("GET", f"https://127.0.0.1:{port}/v2/")


def test_a_server_that_never_finishes_the_handshake_holds_no_connection_past_the_limit(authority):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes TCP; nobody ever answers the TLS ClientHello
    try:
        pools = HttpPools(TLSPolicy(extra_ca_pem=authority.cert.read_text()), maxsize=4,
                          timeouts=Timeouts(connect=0.3, read=0.3, total=1.0))
        started = time.monotonic()
        assert pools.open_connections(f"https://127.0.0.1:{silent.getsockname()[1]}", 3) == 0
        assert time.monotonic() - started < 3.0  # each attempt is bounded by the connect limit (0.3 s)
    finally:
        silent.close()
