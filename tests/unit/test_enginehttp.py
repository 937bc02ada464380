"""The listing's Engine API client (engine/enginehttp.py) against a small real HTTP server.

The server answers as a daemon would (API-Version on /_ping, JSON lists, {"message": ...} errors)
over loopback TCP and over a unix socket; the real dockerd of the integration stack covers TLS.
"""
from __future__ import annotations

import json
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.daemon import DaemonSettings, DockerDaemon
from engine.enginehttp import EngineClient, EngineHTTPError, TLSContexts, TLSFiles, connection
from engine.errors import DaemonError

CONTAINERS = [{"Id": "c" * 64, "Names": ["/web"], "Image": "registry.test/web:1", "ImageID": "sha256:" + "a" * 64,
               "State": "running", "Labels": {}}]
IMAGES = [{"Id": "sha256:" + "a" * 64, "RepoDigests": ["registry.test/web@sha256:" + "b" * 64]}]


class _Daemon(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as dockerd: a client's calls share its connection

    def do_GET(self):  # noqa: N802 - the standard library's name
        self.server.paths.append(self.path)
        self.server.connections.add(id(self.connection))
        version = self.server.version
        if self.server.refuse and self.path.startswith("/v"):
            self._answer(400, json.dumps({"message": self.server.refuse}).encode())
        elif self.path == "/_ping":
            self._answer(200, b"OK", {"API-Version": version} if version and self.server.ping_header else {})
        elif self.path == "/version":
            self._answer(200, json.dumps({"ApiVersion": version}).encode())
        elif self.path == f"/v{version}/containers/json?all=1":
            self._answer(200, json.dumps(CONTAINERS).encode())
        elif self.path == f"/v{version}/images/json":
            self._answer(200, json.dumps(IMAGES).encode())
        else:
            self._answer(404, json.dumps({"message": f"page not found: {self.path}"}).encode())

    def _answer(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(server):
    server.paths, server.connections, server.version, server.ping_header = [], set(), "1.43", True
    server.refuse = ""  # a message: every versioned call answers 400 with it
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def tcp_daemon():
    server = _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Daemon))
    yield server
    server.shutdown()
    server.server_close()


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port) for its logs


@pytest.fixture
def unix_daemon(tmp_path):
    path = tmp_path / "docker.sock"
    server = _serve(_UnixServer(str(path), _Daemon))
    yield server, path
    server.shutdown()
    server.server_close()


def _client(host: str, version: str | None = None) -> EngineClient:
    return EngineClient(connection(host, None, TLSContexts(), timeout=5), version)


def test_the_version_comes_from_the_ping_header_and_every_call_is_made_in_it(tcp_daemon):
    client = _client(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}")
    assert client.api_version == "1.43"
    assert client.containers(all=True) == CONTAINERS
    assert client.images() == IMAGES
    assert tcp_daemon.paths == ["/_ping", "/v1.43/containers/json?all=1", "/v1.43/images/json"]
    assert len(tcp_daemon.connections) == 1  # one connection for all three
    client.close()


def test_without_the_header_the_version_comes_from_get_version(tcp_daemon):
    tcp_daemon.ping_header = False
    client = _client(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}")
    assert client.api_version == "1.43"
    assert tcp_daemon.paths == ["/_ping", "/version"]
    client.close()


def test_a_client_given_a_version_asks_for_none(tcp_daemon):
    client = _client(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}", version="1.41")
    with pytest.raises(EngineHTTPError) as caught:
        client.inspect_container("web")
    assert tcp_daemon.paths == ["/v1.41/containers/web/json"]
    assert caught.value.status_code == 404 and caught.value.explanation.startswith("page not found")
    client.close()


def test_a_unix_socket_is_spoken_to_as_the_docker_cli_does(unix_daemon):
    server, path = unix_daemon
    listing = DockerDaemon(DaemonSettings(f"unix://{path}")).list_containers()
    assert [c.name for c in listing.containers] == ["web"]
    assert listing.containers[0].repo_digests == tuple(IMAGES[0]["RepoDigests"])
    assert listing.api_version == "1.43"


def test_a_refusing_daemon_is_an_error_entry_not_an_unreachable_one(tcp_daemon):
    tcp_daemon.refuse = "client version 1.43 is too old. Minimum supported API version is 1.44"
    daemon = DockerDaemon(DaemonSettings(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}"))
    with pytest.raises(DaemonError) as caught:
        daemon.list_containers()
    assert caught.value.reason == "daemon-refused" and not caught.value.unreachable
    assert "Minimum supported API version is 1.44" in str(caught.value)


@pytest.mark.parametrize("host, reason", [
    ("tcp://127.0.0.1:{closed}", "connection-refused"),
    ("unix://{missing}", "no-such-socket"),
])
def test_an_endpoint_that_cannot_be_reached_says_why(tmp_path, host, reason):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    daemon = DockerDaemon(DaemonSettings(host.format(closed=closed, missing=tmp_path / "none.sock"), timeout=5))
    with pytest.raises(DaemonError) as caught:
        daemon.list_containers()
    assert caught.value.reason == reason and caught.value.unreachable


def test_a_scheme_the_client_does_not_speak_is_refused_before_any_connection():
    with pytest.raises(ValueError, match="not a tcp:// or unix://"):
        connection("ssh://user@host", None, TLSContexts(), timeout=5)


def test_equal_files_share_one_context_and_other_files_get_their_own():
    contexts = TLSContexts()
    unverified = TLSFiles(verify=False)
    assert contexts.context(unverified) is contexts.context(TLSFiles(verify=False))
    assert contexts.context(TLSFiles(verify=True)) is not contexts.context(unverified)


def test_a_warmed_listing_uses_the_two_connections_opened_before_it(tcp_daemon):
    daemon = DockerDaemon(DaemonSettings(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}"))
    with ThreadPoolExecutor(2) as warming:
        daemon.warm(warming)
    assert sorted(tcp_daemon.paths) == ["/_ping", "/_ping"]  # connected and negotiated, nothing listed
    listing = daemon.list_containers()
    assert [c.name for c in listing.containers] == ["web"]
    assert sorted(tcp_daemon.paths) == ["/_ping", "/_ping", "/v1.43/containers/json?all=1", "/v1.43/images/json"]
    assert len(tcp_daemon.connections) == 2
    daemon.cool()  # nothing left to close: the listing took them


def test_cool_closes_what_no_listing_took(tcp_daemon):
    daemon = DockerDaemon(DaemonSettings(f"tcp://127.0.0.1:{tcp_daemon.server_address[1]}"))
    with ThreadPoolExecutor(2) as warming:
        daemon.warm(warming)
    taken = daemon._warmed[0]
    daemon.cool()
    assert taken._made == [] and daemon._warmed is None
    # and a later listing connects afresh
    daemon.list_containers()
    assert tcp_daemon.paths.count("/_ping") == 4
