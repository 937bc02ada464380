"""Registry TLS that must not be trusted: the proxy presents a bad certificate.

Each case is `tls` for every container behind the proxy, with nothing sent over
the connection (no HTTP request reached the proxy) and no second try over
unverified TLS or plain http (the proxy saw only refused handshakes).
"""
from __future__ import annotations

from collections import Counter

import pytest
from tests.reportdoc import containers_of


def _certificate(world, case: str):
    names = ["127.0.0.1", "localhost"] + ([world.host_name] if world.host_name else [])
    if case == "unknown-ca":
        return world.rogue.server("rogue-registry", names)
    if case == "expired":
        return world.authority.server("expired-registry", names, expired=True)
    return world.authority.server("wrong-name-registry", ["registry.invalid"])


@pytest.mark.parametrize("case", ["unknown-ca", "expired", "wrong-host-name"])
def test_an_untrusted_certificate_is_a_tls_error_without_fallback(world, case):
    with world.proxy.serving(_certificate(world, case)), world.proxy.rules():
        result = world.scan()
        records, errors, accepted = list(world.proxy.records), list(world.proxy.errors), world.proxy.accepted
    world.check(result, world.all_proxied("tls"))
    assert not records, records  # not one request over a connection we should not trust
    assert accepted >= 1 and all("HTTP_REQUEST" not in e and "http request" not in e for e in errors), errors
    message = result.by_name()["f-ok"]["error"]
    assert "TLS" in message and world.proxy.address in message


def test_an_untrusted_certificate_is_not_retried(world):
    with world.proxy.serving(world.rogue.server("rogue-registry-2", ["127.0.0.1"])), world.proxy.rules():
        result = world.scan()
        accepted = world.proxy.accepted
    # Per registry name (127.0.0.1 and the host name), the ping's connection and, at the same moment,
    # one more for each further lookup up to --concurrency (8). A TLS failure is final and remembered:
    # not one connection after those.
    lookups = Counter(c["registry"] for c in containers_of(result.report) if c["reason"] == "tls")
    assert set(lookups) == {world.proxy.address} | ({world.named_registry} if world.named_registry else set())
    assert accepted == sum(min(8, n) for n in lookups.values())


def test_the_same_proxy_is_trusted_again_with_a_good_certificate(world):
    world.check(world.scan(), {})
