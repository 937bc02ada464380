"""Registries on loopback over plain http, as the docker daemon allows: the scheme choice (ping),
the token realm, and redirects. A table transport drives the rules; real sockets on 127.0.0.1
prove that OpenSSL's own failure leads to http and that redirects keep their limits."""
from __future__ import annotations

import http.server
import logging
import ssl
import threading
from contextlib import contextmanager

import pytest

from engine.bearer import check_realm
from engine.errors import RegistryError, RegistryTimeoutError, TLSError, TransportError, UnauthorizedError
from engine.ping import ping
from engine.tlsconfig import TLSMode, TLSPolicy
from engine.transport import HttpPools
from tests.unit.fakes import TablePools


def not_tls() -> TLSError:
    """The transport's error when the peer answered a ClientHello with plain http."""
    cause = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    cause.reason = "WRONG_VERSION_NUMBER"
    error = TLSError("ping host: TLS failed (wrong version number)")
    error.__cause__ = cause
    return error


def bad_certificate() -> TLSError:
    error = TLSError("ping host: TLS failed (certificate verify failed)")
    error.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return error


def answering(https_failure: Exception | None):
    def handler(request):
        if request["url"].startswith("https:") and https_failure is not None:
            raise https_failure
        return 200, {}, b"{}"
    return handler


def schemes(pools: TablePools) -> list[str]:
    return [r["url"].split(":", 1)[0] for r in pools.requests]


@pytest.mark.parametrize("host, mode", [
    ("127.0.0.1:5000", TLSMode.VERIFY_OR_PLAIN),
    ("localhost:5000", TLSMode.VERIFY_OR_PLAIN),
    ("[::1]:5000", TLSMode.VERIFY_OR_PLAIN),
    ("reg.example:5000", TLSMode.INSECURE),
])
def test_a_registry_that_speaks_plain_http_is_pinged_over_http_after_https(host, mode):
    pools = TablePools([("GET", "/v2/", answering(not_tls()))])
    assert ping(pools, host, mode=mode).base_url == f"http://{host}"
    assert schemes(pools) == ["https", "http"]


@pytest.mark.parametrize("failure, mode", [
    (bad_certificate(), TLSMode.VERIFY_OR_PLAIN),  # a loopback certificate failure stays a TLS error
    (TransportError("ping host: connection refused"), TLSMode.VERIFY_OR_PLAIN),
    (RegistryTimeoutError("ping host: timed out"), TLSMode.VERIFY_OR_PLAIN),
    (RegistryTimeoutError("ping host: timed out"), TLSMode.INSECURE),
    (not_tls(), TLSMode.VERIFY),  # a registry not on loopback and not named insecure: https only
])
def test_no_plain_http_after_any_other_failure(failure, mode):
    pools = TablePools([("GET", "/v2/", answering(failure))])
    with pytest.raises(type(failure)):
        ping(pools, "127.0.0.1:5000", mode=mode)
    assert schemes(pools) == ["https"]


def test_a_named_insecure_registry_tries_http_after_a_certificate_failure_too():
    pools = TablePools([("GET", "/v2/", answering(bad_certificate()))])
    assert ping(pools, "reg.example", mode=TLSMode.INSECURE).base_url == "http://reg.example"


def test_a_loopback_registry_that_speaks_tls_stays_on_https():
    pools = TablePools([("GET", "/v2/", answering(None))])
    assert ping(pools, "127.0.0.1:5000", mode=TLSMode.VERIFY_OR_PLAIN).base_url == "https://127.0.0.1:5000"


def test_plain_http_on_loopback_is_a_warning_naming_the_registry(caplog):
    pools = TablePools([("GET", "/v2/", answering(not_tls()))])
    with caplog.at_level(logging.WARNING, logger="spyglass"):
        ping(pools, "127.0.0.1:5000", mode=TLSMode.VERIFY_OR_PLAIN)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "127.0.0.1:5000" in record.getMessage() and "plain http" in record.getMessage()


# --- real sockets on 127.0.0.1 ---------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    redirect_to = ""

    def do_GET(self):  # noqa: N802 - the http.server API
        if self.path.startswith("/v2/"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:1/token",service="local"')
        else:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def plain_http_server(redirect_to: str = ""):
    handler = type("Handler", (_Handler,), {"redirect_to": redirect_to})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_real_plain_http_server_on_loopback_is_found_without_being_named():
    pools = HttpPools(TLSPolicy())
    try:
        with plain_http_server() as address:
            found = ping(pools, address, mode=pools.tls.mode_for("127.0.0.1", int(address.split(":")[1])))
    finally:
        pools.close()
    assert found.base_url == f"http://{address}" and found.challenges[0].scheme == "bearer"


@pytest.mark.parametrize("target, allowed", [
    ("http://127.0.0.1:{port}/v2/", True),
    ("http://localhost:{port}/v2/", True),
    ("http://registry.example.com/v2/", False),
    ("http://10.0.0.1/v2/", False),
])
def test_a_redirect_to_plain_http_stays_on_loopback(target, allowed):
    pools = HttpPools(TLSPolicy())
    try:
        with plain_http_server() as final, plain_http_server(
                redirect_to=target.format(port=final.split(":")[1])) as address:
            request = lambda: pools.request("GET", f"http://{address}/elsewhere", operation="GET test")  # noqa: E731
            if allowed:
                assert request().status == 401  # the loopback target's own answer
            else:
                with pytest.raises(RegistryError, match="refusing a redirect to plain http"):
                    request()
    finally:
        pools.close()


# --- the token realm ---------------------------------------------------------------------

@pytest.mark.parametrize("registry, realm, allowed", [
    ("127.0.0.1:5000", "http://127.0.0.1:5001/token", True),
    ("localhost:5000", "http://localhost:5001/token", True),
    ("[::1]:5000", "http://[::1]:5001/token", True),
    ("127.0.0.1:5000", "http://localhost/token", True),
    ("127.0.0.1:5000", "http://auth.example.com/token", False),  # credentials would leave the machine in clear
    ("reg.example.com", "http://127.0.0.1/token", False),
    ("reg.example.com", "http://auth.example.com/token", False),
])
def test_credentials_go_to_a_plain_http_realm_only_from_loopback_to_loopback(registry, realm, allowed):
    def check():
        check_realm(realm, registry_host=registry, insecure=False, sends_credentials=True)
    if allowed:
        check()
    else:
        with pytest.raises(UnauthorizedError):
            check()
