"""A registry that tries to misdirect credentials: hostile challenges, foreign realms, redirects.

A trap server stands where the hostile registry points; the tests prove what
reaches it (nothing, or a request without credentials) as well as the report.
"""
from __future__ import annotations

import pytest

from .proxy import Rule, redirect, respond, when_host, with_headers

REGISTRY_401 = r"^(GET|HEAD) /v2/"
TARGET_HEAD = r"^HEAD /v2/faults/target/manifests/1$"
SERVICE = "spyglass-test-registry"


def _challenging(value: str):
    """Every 401 from the registry carries this WWW-Authenticate instead of its own."""
    def change(exchange):
        answer = exchange.forward()
        if answer.status == 401:
            answer.replace_header("WWW-Authenticate", value)
        exchange.reply(answer)
    return change


HOSTILE = {
    "no-params": "Bearer",
    "empty-realm": 'Bearer realm=""',
    "ftp-realm": 'Bearer realm="ftp://127.0.0.1/token"',
    "file-realm": 'Bearer realm="file:///etc/passwd"',
    "script-realm": 'Bearer realm="javascript:alert(1)"',
    "relative-realm": 'Bearer realm="/token"',
    "unknown-schemes": "Negotiate abc, NTLM, Digest nonce=1",
    "commas": "Bearer " + "," * 6000,
    "quotes": '"' * 6000,
    "backslashes": "Bearer realm=\"" + "\\" * 6000,
    "long-realm": 'Bearer realm="https://' + "a" * 7000 + '.example/token"',
    "many-challenges": ", ".join(f'Bearer{i} realm="https://x{i}.example/"' for i in range(300)),
    "control-chars": 'Bearer realm="https://127.0.0.1\x01/token",service="\x7f"',
    "latin-1": 'Bearer realm="https://r\xe9gistry.example/token"',
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_challenge_is_unauthorized_for_that_registry_only(world, value):
    with world.proxy.rules(Rule(REGISTRY_401, _challenging(value))):
        result = world.scan()
        assert not world.proxy.seen("^GET /token")
    world.check(result, world.all_proxied("unauthorized"))
    assert result.seconds < 10


def _not_written_as_loopback(world) -> str:
    """A name for this machine that is no loopback literal: plain http toward it needs --insecure-registry
    (between loopback addresses docker allows it, see the loopback tests below)."""
    if not world.host_name:
        pytest.skip("this machine's name does not resolve to loopback only")
    return world.host_name


def test_credentials_never_go_to_a_realm_over_plain_http(world):
    with world.trap(tls=False) as trap:
        realm = f"http://{_not_written_as_loopback(world)}:{trap.port}/token"
        with world.proxy.rules(Rule(REGISTRY_401, _challenging(f'Bearer realm="{realm}",service="{SERVICE}"'))):
            result = world.scan()
        assert trap.accepted == 0
    world.check(result, world.all_proxied("unauthorized"))
    assert "plain http" in result.by_name()["f-ok"]["error"]


def test_a_realm_url_carrying_secrets_is_redacted_in_errors(world):
    with world.trap(tls=False) as trap:
        realm = f"http://spy:hunter2@{_not_written_as_loopback(world)}:{trap.port}/token?password=hunter2&token=hunter2"
        with world.proxy.rules(Rule(REGISTRY_401, _challenging(f'Bearer realm="{realm}"'))):
            result = world.scan()
        assert trap.accepted == 0
    world.check(result, world.all_proxied("unauthorized"))
    assert "hunter2" not in result.stdout + result.stderr


INTERNAL_FORMS = ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "017700000001",
                  "0177.0.0.1", "127.000.000.001", "0.0.0.0", "0", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]",
                  "LOCALHOST", "localhost."]


@pytest.mark.parametrize("host", INTERNAL_FORMS)
def test_a_realm_on_a_loopback_address_is_refused_for_a_registry_that_is_not(world, host):
    if not world.host_name:
        pytest.skip("this machine's name does not resolve to loopback only")
    with world.trap() as trap:
        challenge = f'Bearer realm="https://{host}:{trap.port}/token",service="{SERVICE}"'
        with world.proxy.rules(Rule(REGISTRY_401, when_host(world.host_name, _challenging(challenge)))):
            result = world.scan()
        assert trap.accepted == 0 and not trap.records
    world.check(result, {"f-named": "unauthorized"})
    assert "internal address" in result.by_name()["f-named"]["error"]


def test_a_realm_on_the_registrys_own_loopback_host_is_fine(world):
    """The stack's registry and token server both live on 127.0.0.1: that is no reason to refuse."""
    world.check(world.scan(), {})


def _digest_of_target(world) -> str:
    with world.stack.secure_http() as registry:
        return registry.digest_of("faults/target", "1")


def test_a_redirect_to_another_host_never_carries_the_authorization_header(world):
    digest = _digest_of_target(world)
    found = respond(200, {"Docker-Content-Digest": digest,
                          "Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    with world.trap(answer=found) as trap:
        target = f"https://localhost:{trap.port}/v2/faults/target/manifests/1"
        with world.proxy.rules(Rule(TARGET_HEAD, redirect(target))):
            result = world.scan()
            original = world.proxy.seen(TARGET_HEAD)[0]
        (followed,) = trap.records
    world.check(result, {})
    assert original.headers["authorization"].startswith("Bearer ")
    assert "authorization" not in followed.headers


def test_a_redirect_to_plain_http_is_refused(world):
    with world.trap(tls=False) as trap:
        target = f"http://{_not_written_as_loopback(world)}:{trap.port}/v2/faults/target/manifests/1"
        with world.proxy.rules(Rule(TARGET_HEAD, redirect(target))):
            result = world.scan()
        assert trap.accepted == 0
    world.check(result, {"f-target": "registry-error"})
    assert "plain http" in result.by_name()["f-target"]["error"]


# Between loopback addresses docker allows plain http; traffic there never leaves the machine.

def test_a_loopback_registry_may_send_credentials_to_a_loopback_realm_over_plain_http(world):
    with world.trap(tls=False) as trap:
        realm = f"http://127.0.0.1:{trap.port}/token"
        with world.proxy.rules(Rule(REGISTRY_401, when_host("127.0.0.1", _challenging(
                f'Bearer realm="{realm}",service="{SERVICE}"')))):
            world.scan()
        asked = trap.seen("^GET /token")
    assert asked and all(r.headers["authorization"].startswith("Basic ") for r in asked)


def test_a_redirect_from_a_loopback_registry_to_plain_http_on_loopback_is_followed(world):
    digest = _digest_of_target(world)
    found = respond(200, {"Docker-Content-Digest": digest,
                          "Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    with world.trap(tls=False, answer=found) as trap:
        target = f"http://127.0.0.1:{trap.port}/v2/faults/target/manifests/1"
        with world.proxy.rules(Rule(TARGET_HEAD, when_host("127.0.0.1", redirect(target)))):
            result = world.scan()
        (followed,) = trap.records
    assert result.by_name()["f-target"]["status"] == "fresh"
    assert "authorization" not in followed.headers  # another origin: the token stays behind


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_loop_is_bounded(world, status):
    with world.proxy.rules(Rule(TARGET_HEAD, redirect(lambda exchange: exchange.path, status))):
        result = world.scan()
        loops = world.proxy.seen(TARGET_HEAD)
    world.check(result, {"f-target": "registry-error"})
    assert "redirects" in result.by_name()["f-target"]["error"]
    assert len(loops) == 6  # the request and five redirects, once: a loop is not worth retrying


def test_a_redirect_to_a_file_url_is_refused(world):
    with world.proxy.rules(Rule(TARGET_HEAD, redirect("file:///etc/shadow"))):
        result = world.scan()
    world.check(result, {"f-target": "registry-error"})


def test_a_ping_that_points_at_basic_auth_sends_the_credential_to_the_registry_only(world):
    """Basic on the registry itself is legitimate: the credential goes to the host it is stored for."""
    with world.proxy.rules(Rule(r"^GET /v2/$", with_headers({"WWW-Authenticate": 'Basic realm="registry"'}))):
        result = world.scan()
        basics = [r for r in world.proxy.seen("^HEAD ") if r.headers.get("authorization", "").startswith("Basic ")]
    # The real registry wants a token: after Basic is refused, the manifest 401's Bearer challenge is followed.
    world.check(result, {})
    assert all(r.headers["host"] in (world.proxy.address, world.named_registry) for r in basics)
