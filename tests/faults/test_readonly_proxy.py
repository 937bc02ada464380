"""The least-privilege set-up of docs/security.md, run for real: nginx in front of the daemon's socket.

The nginx block is taken from the document itself (only paths and the port are
changed), so the documentation cannot drift from what was tested. Through it a
scan gets its baseline answers, while every call outside the five listings is
refused, and a client without a certificate from the scanners' CA gets nothing.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import urllib3

from tests.stack.procs import free_port

from .certs import Authority

NGINX = "/usr/sbin/nginx"
DOC = Path(__file__).parents[2] / "docs" / "security.md"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (apt: nginx-light)")


def documented_server_block() -> str:
    found = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/security.md lost its nginx example"
    return found.group(1)


@pytest.fixture
def readonly(world, tmp_path):
    scanners = Authority.create(tmp_path / "scanners", "spyglass scanners CA")
    server = world.authority.server("readonly-proxy", ["127.0.0.1"])
    port = free_port()
    block = (documented_server_block()
             .replace("listen 2376 ssl;", f"listen 127.0.0.1:{port} ssl;")
             .replace("/etc/docker-readonly/server-cert.pem", str(server.cert))
             .replace("/etc/docker-readonly/server-key.pem", str(server.key))
             .replace("/etc/docker-readonly/scanner-ca.pem", str(scanners.cert))
             .replace("/var/run/docker.sock", str(world.stack.daemon.socket)))
    temp = tmp_path / "nginx"
    temp.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
        user root;
        daemon off;
        worker_processes 1;
        pid {temp}/nginx.pid;
        error_log {temp}/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log {temp}/access.log;
            client_body_temp_path {temp}/body;
            proxy_temp_path {temp}/proxy;
            {block}
        }}""")
    child = subprocess.Popen([NGINX, "-p", str(temp), "-c", str(conf)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, child)
        client = scanners.client("scanner")
        certs = tmp_path / "certs"
        certs.mkdir()
        for source, target in ((world.authority.cert, "ca.pem"), (client.cert, "cert.pem"), (client.key, "key.pem")):
            shutil.copyfile(source, certs / target)
        yield {"port": port, "certs": certs, "env": {"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
                                                      "DOCKER_CERT_PATH": str(certs)}, "log": temp / "access.log"}
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_for_port(port: int, child: subprocess.Popen) -> None:
    import socket
    for _ in range(100):
        if child.poll() is not None:
            raise RuntimeError(f"nginx exited: {child.stderr.read().decode()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not listen")


def _http(certs: Path, *, with_cert: bool = True) -> urllib3.PoolManager:
    cert = dict(cert_file=str(certs / "cert.pem"), key_file=str(certs / "key.pem")) if with_cert else {}
    return urllib3.PoolManager(ca_certs=str(certs / "ca.pem"), retries=False, timeout=10, **cert)


def test_a_scan_through_the_read_only_proxy_gets_its_baseline_answers(world, readonly):
    result = world.scan(env=readonly["env"])
    world.check(result, {})


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1.41/containers/create"),
    ("POST", "/v1.41/containers/{id}/exec"),
    ("GET", "/v1.41/containers/{id}/logs?stdout=1"),
    ("GET", "/v1.41/containers/{id}/export"),
    ("GET", "/v1.41/containers/{id}/archive?path=/"),
    ("DELETE", "/v1.41/containers/{id}"),
    ("POST", "/v1.41/containers/json"),
    ("GET", "/v1.41/info"),
    ("GET", "/v1.41/secrets"),
    ("GET", "/v1.41/containers/json/../../info"),
    ("GET", "/v1.41/images/json%2f..%2f..%2finfo"),
])
def test_every_other_call_is_refused(world, readonly, method, path):
    container = world.stack.daemon.admin.inspect_container("f-ok")["Id"]
    response = _http(readonly["certs"]).request(method, f"https://127.0.0.1:{readonly['port']}"
                                                + path.format(id=container), body=b"{}" if method == "POST" else None)
    assert response.status == 403, (response.status, response.data[:200])


def test_the_listing_calls_answer(world, readonly):
    http = _http(readonly["certs"])
    for path in ("/_ping", "/version", "/v1.41/containers/json?all=1", "/v1.41/images/json"):
        assert http.request("GET", f"https://127.0.0.1:{readonly['port']}{path}").status == 200


def test_a_client_without_a_scanner_certificate_gets_nothing(world, readonly):
    response = _http(readonly["certs"], with_cert=False).request(
        "GET", f"https://127.0.0.1:{readonly['port']}/v1.41/containers/json")
    assert response.status == 400  # nginx: "No required SSL certificate was sent"
    assert b"Id" not in response.data
