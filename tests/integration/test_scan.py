"""`spyglass scan` against the real stack: a TLS dockerd, a token-auth registry, a plain one.

Each test runs the CLI in-process with the stack's environment and checks the JSON
report against what the fixture knows to be true, and request counts against the
servers' own logs.
"""
from __future__ import annotations

import io
import json
import socket
import threading
from collections import Counter
from pathlib import Path

import jsonschema

from engine.report import schema
from handler.cli import main
from tests.reportdoc import containers_of

SCHEMA = schema()


def scan(stack, *args, env_extra=None, drop_args=()):
    """Run the CLI; returns (exit code, report dict or None, stderr)."""
    base = [a for a in stack.scan_args()]
    for flag in drop_args:
        i = base.index(flag)
        del base[i:i + 2]
    env = stack.env() | (env_extra or {})
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "json", *base, *args], env=env, stdout=out, stderr=err,
                home=Path(stack.workdir))
    report = json.loads(out.getvalue()) if out.getvalue().strip() else None
    if report is not None:
        jsonschema.validate(report, SCHEMA)
    return code, report, err.getvalue()


def by_name(report, names=None):
    return {c["name"]: c for c in containers_of(report) if names is None or c["name"] in names}


def test_the_report_matches_the_fleet(stack, demo_fleet):
    code, report, err = scan(stack)
    assert code == 0, err
    found = by_name(report, demo_fleet)
    assert {name: (c["status"], c["reason"]) for name, c in found.items()} == demo_fleet
    assert "Traceback" not in err


def test_stale_and_fresh_entries_carry_the_digests_that_decided_them(stack, demo_fleet):
    _, report, _ = scan(stack, "stale", "web-1")
    stale, fresh = by_name(report)["stale"], by_name(report)["web-1"]
    assert stale["remote_digest"] not in stale["local_digests"]
    with stack.secure_http() as registry:
        assert stale["remote_digest"] == registry.digest_of("demo/stale", "1")
    assert fresh["remote_digest"] in fresh["local_digests"]
    assert stale["reference"] == f"{stack.secure.address}/demo/stale:1"


def test_a_scan_costs_four_engine_calls_one_ping_and_token_per_credential_and_one_head_per_image(stack, demo_fleet):
    daemon_mark, registry_mark, token_mark = stack.daemon.mark(), stack.secure.mark(), stack.token_server.mark()
    code, report, err = scan(stack)
    assert code == 0, err
    calls = stack.daemon.api_calls_since(daemon_mark)
    # two connections, each with its version negotiation (GET /_ping): one lists containers, the other images;
    # no per-container call on this fleet
    assert sorted(c.path.split("?")[0] for c in calls) == [
        "/_ping", "/_ping", "/v1.41/containers/json", "/v1.41/images/json"], calls
    secure_refs = {c["reference"] for c in containers_of(report)
                   if c["registry"] == stack.secure.address and c["status"] in ("fresh", "stale", "error")}
    requests = Counter((r.method, r.path.split("/manifests/")[0] if "/manifests/" in r.path else r.path)
                       for r in stack.secure.requests_since(registry_mark))
    heads = sum(n for (method, _), n in requests.items() if method == "HEAD")
    assert heads == len(secure_refs)
    assert requests[("GET", "/v2/")] == 1
    tokens = stack.token_server.requests_since(token_mark)
    # alice's credential is stored for the whole host: one token covers every repository
    assert [(t.username, len(t.scopes)) for t in tokens] == [("alice", len({r.rsplit(":", 1)[0] for r in secure_refs}))]
    stats = {r["name"]: r["requests"] for r in report["registries"]}[stack.secure.address]
    assert stats["head"] == heads and stats["token"] == 1 and stats["ping"] == 1


def test_without_the_registry_ca_the_secure_registry_is_a_tls_error_and_the_rest_still_decided(stack, demo_fleet):
    code, report, _ = scan(stack, drop_args=("--registry-ca",))
    assert code == 0
    containers = by_name(report, demo_fleet)
    assert containers["web-1"]["status"] == "error" and containers["web-1"]["reason"] == "tls"
    assert stack.secure.address in containers["web-1"]["error"]
    assert containers["plain"]["status"] == "fresh"


def test_a_private_repository_without_credentials_is_unauthorized(stack, demo_fleet, tmp_path):
    empty = tmp_path / "config.json"
    empty.write_text("{}")
    code, report, _ = scan(stack, "private", "web-1", "--docker-config", str(empty), drop_args=("--docker-config",))
    containers = by_name(report)
    assert containers["private"]["status"] == "error" and containers["private"]["reason"] == "unauthorized"
    assert containers["web-1"]["status"] == "fresh"


def test_a_token_server_that_refuses_combined_scopes_still_gives_a_correct_report(stack, demo_fleet):
    with stack.token_server.overridden(grant_combined=False):
        code, report, err = scan(stack)
    assert code == 0, err
    assert {n: (c["status"], c["reason"]) for n, c in by_name(report, demo_fleet).items()} == demo_fleet


def test_names_limit_the_scan(stack, demo_fleet):
    _, report, _ = scan(stack, "web-1", "/stale")
    assert sorted(by_name(report)) == ["stale", "web-1"]


def test_fail_on_stale_exits_1_and_text_output_reads_at_a_glance(stack, demo_fleet):
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--output", "text", "--fail-on-stale", *stack.scan_args(), "stale", "web-1"],
                env=stack.env(), stdout=out, stderr=err, home=Path(stack.workdir))
    assert code == 1
    lines = out.getvalue().splitlines()
    assert "2 containers scanned: 1 stale, 1 fresh, 0 skipped, 0 errors" in lines[0]
    assert lines[2].split()[:3] == ["STATUS", "CONTAINER", "IMAGE"]
    assert lines[3].startswith("stale")


def test_include_stopped_checks_the_stopped_container(stack, demo_fleet):
    _, report, _ = scan(stack, "--include-stopped", "stopped")
    assert by_name(report)["stopped"]["status"] == "fresh"


def test_the_report_file_holds_the_same_json(stack, demo_fleet, tmp_path):
    path = tmp_path / "out" / "report.json"
    _, report, _ = scan(stack, "--report-file", str(path), "web-1")
    written = json.loads(path.read_text())
    jsonschema.validate(written, SCHEMA)
    assert containers_of(written) == containers_of(report)


def test_a_deadline_reached_before_the_registries_answer_still_yields_a_report(stack, demo_fleet):
    code, report, _ = scan(stack, "--timeout", "0.001")
    assert code in (0, 3)
    if code == 0:  # the listing itself can beat a 1 ms deadline only rarely; the report is still whole
        checked = [c for c in containers_of(report) if c["status"] == "error"]
        assert checked and all(c["reason"] == "timeout" for c in checked)


def test_a_client_without_a_certificate_is_refused_with_exit_3(stack, demo_fleet, tmp_path):
    env = stack.env() | {"DOCKER_CERT_PATH": str(tmp_path)}
    (tmp_path / "ca.pem").write_bytes(Path(stack.pki.ca).read_bytes())
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", *stack.scan_args()], env=env, stdout=out, stderr=err, home=tmp_path)
    assert code == 3 and out.getvalue() == ""
    assert "cannot scan" in err.getvalue() and "Traceback" not in err.getvalue()


def test_no_secret_reaches_the_output_or_the_logs(stack, demo_fleet):
    code, report, err = scan(stack, "--log-level", "debug")
    text = json.dumps(report) + err
    assert stack.alice.password not in text and stack.admin_account.password not in text
    assert "Bearer ey" not in text and "PRIVATE KEY" not in text


def test_the_daemon_s_unix_socket_and_plain_tcp_give_the_verdicts_of_its_tls_endpoint(stack, demo_fleet, tmp_path):
    """The listing speaks unix:// and tcp:// without TLS too (DOCKER_HOST's other everyday forms):
    the same daemon, reached over its own socket and over a loopback forwarder to that socket."""
    _, over_tls, _ = scan(stack)
    plain_env = {"DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": str(tmp_path / "no-certs")}
    code, over_unix, err = scan(stack, env_extra={"DOCKER_HOST": f"unix://{stack.daemon.socket}", **plain_env})
    assert code == 0, err
    with _TcpToUnix(stack.daemon.socket) as port:
        code, over_tcp, err = scan(stack, env_extra={"DOCKER_HOST": f"tcp://127.0.0.1:{port}", **plain_env})
    assert code == 0, err

    def verdicts(report):
        return {c["name"]: (c["status"], c.get("remote_digest")) for c in containers_of(report)}

    assert verdicts(over_unix) == verdicts(over_tls) == verdicts(over_tcp)
    assert by_name(over_unix, demo_fleet).keys() == demo_fleet.keys()
    assert over_unix["endpoints"][0]["api_version"] == over_tls["endpoints"][0]["api_version"]


class _TcpToUnix:
    """A loopback TCP port whose connections are spliced to a unix socket, one thread per direction."""

    def __init__(self, path):
        self._path = str(path)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._open: list = []

    def __enter__(self) -> int:
        threading.Thread(target=self._accept, daemon=True).start()
        return self._server.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self._server.close()
        for sock in self._open:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(self._path)
            self._open += [client, daemon]
            for source, sink in ((client, daemon), (daemon, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(1)
        except OSError:
            pass
