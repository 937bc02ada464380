"""Registry and token-server faults, injected by the proxy in front of the real ones.

Every case ends with a report: the containers the fault hits carry the right
reason, every other container still gets its baseline answer, and no traceback
reaches stderr. Times are measured on the wall clock of the scan.
"""
from __future__ import annotations

import json

import pytest

from .proxy import (Rule, drip, hang, huge, respond, reset, rewrite, truncate, with_headers)

TARGET_HEAD = r"^HEAD /v2/faults/target/manifests/1$"
TARGET_GET = r"^GET /v2/faults/target/manifests/"
PING = r"^GET /v2/$"
TOKEN = r"^GET /token\?"


def _without_digest(answer) -> None:
    answer.headers = [(k, v) for k, v in answer.headers if k.lower() != "docker-content-digest"]


# -- 5xx and resets: retried with capped, jittered backoff, then registry-error -----------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_manifest_that_keeps_failing_is_retried_then_a_registry_error(world, status):
    with world.proxy.rules(Rule(TARGET_HEAD, respond(status, body=b'{"errors":[{"code":"UNAVAILABLE"}]}'))):
        result = world.scan()
        attempts = world.proxy.seen(TARGET_HEAD)
    world.check(result, {"f-target": "registry-error"})
    assert len(attempts) == 3
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:])]
    assert all(gap <= 0.25 + 0.5 + 0.2 for gap in gaps), gaps  # jittered, capped backoff: U(0, .25), U(0, .5)
    assert f"HTTP {status}" in result.by_name()["f-target"]["error"]


def test_two_503s_then_success_is_fresh(world):
    with world.proxy.rules(Rule(TARGET_HEAD, respond(503), times=2)):
        result = world.scan()
        assert len(world.proxy.seen(TARGET_HEAD)) == 3
    world.check(result, {})


def test_connection_resets_are_retried_then_a_registry_error(world):
    with world.proxy.rules(Rule(TARGET_HEAD, reset)):
        result = world.scan()
        assert len(world.proxy.seen(TARGET_HEAD)) == 3
    world.check(result, {"f-target": "registry-error"})
    assert "connection" in result.by_name()["f-target"]["error"]


def test_one_reset_is_absorbed_by_a_retry(world):
    with world.proxy.rules(Rule(TARGET_HEAD, reset, times=1)):
        result = world.scan()
    world.check(result, {})


def test_a_ping_that_fails_once_is_retried(world):
    with world.proxy.rules(Rule(PING, respond(503), times=1)):
        result = world.scan()
    world.check(result, {})


def test_a_token_server_that_fails_once_is_retried(world):
    with world.proxy.rules(Rule(TOKEN, reset, times=1)):
        result = world.scan()
    world.check(result, {})


def test_a_registry_that_is_down_costs_its_containers_only(world):
    with world.proxy.rules(Rule(PING, respond(502))):
        result = world.scan()
    world.check(result, world.all_proxied("registry-error"))


# -- 429: Retry-After honoured when it fits the deadline, else rate-limited at once -----------------------


def test_429_with_a_retry_after_that_fits_is_waited_for(world):
    with world.proxy.rules(Rule(TARGET_HEAD, respond(429, {"Retry-After": "1"}), times=1)):
        result = world.scan(timeout=20)
        first, second = world.proxy.seen(TARGET_HEAD)
    world.check(result, {})
    assert 0.95 <= second.at - first.at < 4.0  # honoured, and not much more (generous for a loaded host)


def test_429_with_a_retry_after_beyond_the_deadline_is_rate_limited_at_once(world):
    with world.proxy.rules(Rule(TARGET_HEAD, respond(429, {"Retry-After": "60"}))):
        result = world.scan(timeout=10)
        assert len(world.proxy.seen(TARGET_HEAD)) == 1
    world.check(result, {"f-target": "rate-limited"})
    assert result.seconds < 5


def test_429_without_retry_after_is_rate_limited_at_once(world):
    with world.proxy.rules(Rule(TARGET_HEAD, respond(429, body=b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'))):
        result = world.scan()
        assert len(world.proxy.seen(TARGET_HEAD)) == 1
    world.check(result, {"f-target": "rate-limited"})


def test_docker_hub_rate_limit_headers_are_reported(world):
    limits = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}
    with world.proxy.rules(Rule(r"^HEAD /v2/", with_headers(limits))):
        result = world.scan()
    world.check(result, {})
    assert result.registry(world.proxy.address)["rate_limit"] == limits


def test_rate_limit_headers_on_a_429_are_reported_too(world):
    limits = {"RateLimit-Limit": "100;w=21600", "RateLimit-Remaining": "0;w=21600"}
    with world.proxy.rules(Rule(TARGET_HEAD, respond(429, limits))):
        result = world.scan()
    world.check(result, {"f-target": "rate-limited"})
    assert result.registry(world.proxy.address)["rate_limit"]["ratelimit-remaining"] == "0;w=21600"


# -- silence and slowness: a timeout within the configured limits, never a hang ---------------------------


@pytest.mark.parametrize("action", [hang, drip(1.0)], ids=["never-answers", "one-byte-a-second"])
def test_a_silent_or_dripping_manifest_is_a_timeout_and_the_process_exits(world, action):
    with world.proxy.rules(Rule(TARGET_HEAD, action)):
        result = world.scan_process(timeout=3, wall=30)
    world.check(result, {"f-target": "timeout"})
    assert result.seconds < 3 + 3, result.seconds  # the deadline, plus interpreter start and exit


@pytest.mark.parametrize("action", [hang, drip(1.0)], ids=["never-answers", "one-byte-a-second"])
def test_a_silent_or_dripping_registry_times_out_its_containers_only_and_the_process_exits(world, action):
    with world.proxy.rules(Rule(PING, action)):  # the handshake, not a lookup, is what waits
        result = world.scan_process(timeout=3, wall=30)
    world.check(result, world.all_proxied("timeout"))
    assert result.seconds < 3 + 3, result.seconds  # the deadline, plus interpreter start and exit


def test_a_silent_token_server_is_a_timeout(world):
    with world.proxy.rules(Rule(TOKEN, hang)):
        result = world.scan(timeout=3)
    world.check(result, world.all_proxied("timeout"))
    assert result.seconds < 3 + 3, result.seconds  # the deadline, plus interpreter start and exit


# -- bodies: truncated, oversized, not JSON, without a token ------------------------------------------------


def test_a_truncated_manifest_is_a_registry_error(world):
    with world.proxy.rules(Rule(TARGET_HEAD, rewrite(_without_digest)), Rule(TARGET_GET, truncate(keep=20))):
        result = world.scan()
    world.check(result, {"f-target": "registry-error"})


def test_a_manifest_larger_than_the_cap_is_refused_without_reading_it_all(world):
    with world.proxy.rules(Rule(TARGET_HEAD, rewrite(_without_digest)),
                           Rule(TARGET_GET, huge(64 * 1024 * 1024, content_type="application/json"))):
        result = world.scan()
        attempts = world.proxy.seen(TARGET_GET)
    world.check(result, {"f-target": "registry-error"})
    assert "larger than" in result.by_name()["f-target"]["error"]
    assert len(attempts) == 1  # a body over the cap is not a temporary fault: no retry


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_token_response_larger_than_the_cap_is_refused(world, chunked):
    with world.proxy.rules(Rule(TOKEN, huge(16 * 1024 * 1024, chunked=chunked))):
        result = world.scan()
    world.check(result, world.all_proxied("registry-error"))
    assert "larger than" in result.by_name()["f-target"]["error"]


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"token": ', b"[]", b'{"expires_in": 300}',
                                  b'{"token": ""}', b'{"token": 42}', b"\xff\xfe\x00"],
                         ids=["html", "cut-json", "array", "no-token", "empty-token", "number-token", "binary"])
def test_a_token_response_without_a_usable_token_is_a_registry_error(world, body):
    with world.proxy.rules(Rule(TOKEN, respond(200, {"Content-Type": "application/json"}, body))):
        result = world.scan()
    world.check(result, world.all_proxied("registry-error"))
    assert "token" in result.by_name()["f-target"]["error"]


def test_a_truncated_token_response_is_a_registry_error(world):
    with world.proxy.rules(Rule(TOKEN, truncate(keep=30))):
        result = world.scan()
    world.check(result, world.all_proxied("registry-error"))


# -- tokens: an expired token gets one refresh, then unauthorized ------------------------------------------


def _expired(challenge: str):
    return respond(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                   b'{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}')


def _challenge(world, scope: str) -> str:
    return (f'Bearer realm="https://{world.proxy.address}/token",service="spyglass-test-registry",'
            f'scope="{scope}",error="invalid_token"')


def test_a_token_refused_after_success_is_refreshed_once(world):
    challenge = _challenge(world, "repository:faults/target:pull")
    with world.proxy.rules(Rule(TARGET_HEAD, _expired(challenge), times=1)):
        result = world.scan()
        tokens = [t for t in world.proxy.seen(TOKEN) if t.headers["host"] == world.proxy.address]
        heads = world.proxy.seen(TARGET_HEAD)
    world.check(result, {})
    assert len(heads) == 2
    assert len(_refreshes(tokens)) == 1


def test_a_token_refused_again_after_the_refresh_is_unauthorized(world):
    challenge = _challenge(world, "repository:faults/target:pull")
    with world.proxy.rules(Rule(TARGET_HEAD, _expired(challenge))):
        result = world.scan()
        tokens = [t for t in world.proxy.seen(TOKEN) if t.headers["host"] == world.proxy.address]
        heads = world.proxy.seen(TARGET_HEAD)
    world.check(result, {"f-target": "unauthorized"})
    assert len(heads) == 2 and len(_refreshes(tokens)) == 1  # one refresh, no loop


def _refreshes(tokens) -> list:
    """Token requests for the target's scope alone (a lookup that raced the refusal may refetch the combined one)."""
    return [t for t in tokens if t.path.count("scope=") == 1 and "scope=repository%3Afaults%2Ftarget%3Apull" in t.path]


def test_the_registry_error_body_is_scrubbed_of_credentials(world):
    echo = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "rejected Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig "
                                   "and Basic YWxpY2U6c2VjcmV0"}]}).encode()
    with world.proxy.rules(Rule(TARGET_HEAD, respond(403, {"Content-Type": "application/json"}, echo))):
        result = world.scan()
    world.check(result, {"f-target": "unauthorized"})
    error = result.by_name()["f-target"]["error"]
    assert "eyJhbGciOiJSUzI1NiJ9" not in error and "YWxpY2U6c2VjcmV0" not in error
