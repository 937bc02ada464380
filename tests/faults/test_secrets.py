"""No secret leaves spyglass: everything a scan writes is searched for every secret it held.

One session of scans at debug log level, in both log formats and every report
format, with a password, an identity token (docker's OAuth refresh token), the
bearer tokens the registry accepted, and the daemon client's private key in
play, plus faults that put error text in front of the user: a refused token, a
registry that echoes credentials in its error body, a realm URL carrying
secrets, a TLS failure. Everything written (stdout, stderr, the report files) is
collected and searched.
"""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode

import pytest
import urllib3

from tests.notify.servers import Webhooks, free_port

from .proxy import Answer, Rule, respond

TARGET_HEAD = r"^HEAD /v2/faults/target/manifests/1$"


def _identity_token(world) -> str:
    """A refresh token from the stack's token server, as `docker login` stores it."""
    stack = world.stack
    http = urllib3.PoolManager(ca_certs=str(stack.pki.ca), retries=False)
    form = urlencode({"grant_type": "password", "username": stack.alice.username, "password": stack.alice.password,
                      "service": "spyglass-test-registry", "access_type": "offline", "client_id": "test",
                      "scope": "repository:private/faults:pull"})
    response = http.request("POST", stack.token_server.realm, body=form,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 200, response.data
    return json.loads(response.data)["refresh_token"]


def _key_fragments(path) -> list[str]:
    """Lines of a PEM private key long enough to be unmistakable."""
    return [line for line in path.read_text().splitlines() if len(line) >= 40 and "-----" not in line]


@pytest.fixture
def identity_config(world):
    token = _identity_token(world)
    path = world.workdir / "identity-config" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"auths": {world.proxy.address: {
        "auth": base64.b64encode(b"<token>:").decode(), "identitytoken": token}}}))
    return token, path


def test_nothing_written_carries_a_secret(world, identity_config, tmp_path):
    identity, identity_path = identity_config
    stack = world.stack
    written: list[str] = []

    def scan(*args, **kw):
        result = world.scan("--log-level", "debug", *args, **kw)
        written.extend([result.stdout, result.stderr])
        return result

    echo = json.dumps({"errors": [{"code": "DENIED", "message": "token rejected"}],
                       "detail": "Authorization: Basic YWxpY2U6"}).encode()
    with world.proxy.rules():
        for output in ("json", "text", "markdown"):
            for log_format in ("text", "json"):
                report_file = tmp_path / f"{output}-{log_format}.json"
                scan("--output", output, "--log-format", log_format, "--report-file", str(report_file))
                written.append(report_file.read_text())
        scan("--docker-config", str(identity_path), "--log-format", "json")
        seen = list(world.proxy.records)
    # Notification URLs are secrets too (issue 15): one refused, one answering 500, at debug level.
    notify_password, notify_token = "notify-Pw-0c4be1", "notify-hook-8e21d9f0"
    with Webhooks() as hooks:
        for log_format in ("text", "json"):
            scan("--log-format", log_format, "--report-file", str(tmp_path / f"notify-{log_format}.json"),
                 "--notify", f"json://spy:{notify_password}@127.0.0.1:{free_port()}/{notify_token}",
                 "--notify", f"form://spy:{notify_password}@{hooks.authority}/fail/{notify_token}")
            written.append((tmp_path / f"notify-{log_format}.json").read_text())
        assert len(hooks.requests) == 2, "the failing notify URL should have been tried"
    # Faults that make error text: each with the registry answering the request that carried a token.
    with world.proxy.rules(Rule(TARGET_HEAD, _echoing_refusal), Rule(r"^(GET|POST) /token", _echoing_refusal)):
        scan("--log-format", "json")
        scan("--docker-config", str(identity_path))
        seen += world.proxy.records
    realm = f"https://alice:{stack.alice.password}@127.0.0.1:1/token?password={stack.alice.password}&token={identity}"
    with world.proxy.rules(Rule(r"^(GET|HEAD) /v2/", respond(401, {"WWW-Authenticate": f'Bearer realm="{realm}"'},
                                                             echo))):
        scan()
    with world.proxy.serving(world.rogue.server("rogue-secrets", ["127.0.0.1"])), world.proxy.rules():
        scan()

    bearer = {h["authorization"].split(" ", 1)[1] for r in seen for h in [r.headers]
              if h.get("authorization", "").startswith("Bearer ")}
    assert bearer, "the scans should have used bearer tokens"
    assert any(r.method == "POST" and r.path.startswith("/token") for r in seen), "the identity token was not used"
    everything = "\n".join(written)
    for shown in ("unauthorized", "REDACTED", "TLS failed", "invalid credential", "not notified"):
        assert shown in everything, f"a fault scan should have shown {shown!r}"
    alice = stack.alice
    secrets = {
        "password": alice.password,
        "admin password": stack.admin_account.password,
        "basic credential": base64.b64encode(f"{alice.username}:{alice.password}".encode()).decode(),
        "identity token": identity,
        **{f"bearer token {i}": token for i, token in enumerate(sorted(bearer))},
        **{f"bearer signature {i}": token.rsplit(".", 1)[-1] for i, token in enumerate(sorted(bearer))},
        **{f"client key line {i}": line for i, line in enumerate(_key_fragments(stack.daemon.cert_dir / "key.pem"))},
        "notify URL password": notify_password,
        "notify URL token": notify_token,
    }
    leaked = [name for name, value in secrets.items() if value and value in everything]
    assert not leaked, leaked
    assert "PRIVATE KEY" not in everything
    assert not re.search(r"(?i)bearer\s+ey", everything)


def _echoing_refusal(exchange) -> None:
    """A 401 whose body quotes the Authorization header the client sent (some registries do)."""
    sent = exchange.headers.get("Authorization", "")
    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": f"invalid credential: {sent}",
                                   "detail": {"header": sent}}]}).encode()
    challenge = (f'Bearer realm="https://{exchange.authority}/token",service="spyglass-test-registry",'
                 'scope="repository:faults/target:pull",error="invalid_token"')
    exchange.reply(Answer(401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")], body))
