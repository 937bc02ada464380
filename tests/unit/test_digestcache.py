"""The digest cache in front of the manifest HEAD, driven through a table transport (no I/O).

The DynamoDB implementation is tested with moto in tests/aws/test_digest_cache.py.
"""
import logging

import pytest

from engine.clock import FakeClock
from engine.digestcache import DigestKey, MemoryDigestCache
from engine.mediatypes import DOCKER_MANIFEST, MANIFEST_ACCEPT, Descriptor
from engine.name import parse_registry
from engine.registry import layered
from engine.retry import Backoff
from tests.unit.fakes import TablePools

REGISTRY = parse_registry("reg.example:5000")
DIGEST = "sha256:" + "b" * 64
KEY = DigestKey("reg.example:5000", "team/app", "1.4", MANIFEST_ACCEPT)


def head_ok(_):
    return 200, {"Docker-Content-Digest": DIGEST, "Content-Type": DOCKER_MANIFEST}, b""


def pools(*extra):
    return TablePools([("GET", "/v2/", lambda _: (200, {}, b"")), ("HEAD", "/v2/", head_ok), *extra])


def client(table, cache, clock=None):
    """A fresh client, as the next batch of a fleet run builds one."""
    return layered(REGISTRY, pools=table, repositories=("team/app",), clock=clock or FakeClock(),
                   backoff=Backoff(jitter=lambda cap: 0.0), digest_cache=cache).client


def test_an_entry_is_served_until_its_ttl_and_not_after():
    clock = FakeClock()
    cache = MemoryDigestCache(ttl=300, clock=clock)
    cache.put(KEY, Descriptor(DIGEST, DOCKER_MANIFEST))
    clock.advance(299.9)
    assert cache.get(KEY) == Descriptor(DIGEST, DOCKER_MANIFEST)
    clock.advance(0.1)
    assert cache.get(KEY) is None


@pytest.mark.parametrize("other", [
    DigestKey("other.example", "team/app", "1.4", MANIFEST_ACCEPT),
    DigestKey("reg.example:5000", "team/api", "1.4", MANIFEST_ACCEPT),
    DigestKey("reg.example:5000", "team/app", "1.5", MANIFEST_ACCEPT),
    DigestKey("reg.example:5000", "team/app", "1.4", DOCKER_MANIFEST),  # a registry answers this with a child
])
def test_every_part_of_the_key_tells_entries_apart(other):
    cache = MemoryDigestCache(clock=FakeClock())
    cache.put(KEY, Descriptor(DIGEST, DOCKER_MANIFEST))
    assert cache.get(other) is None
    assert other.digest() != KEY.digest()


def test_a_second_batch_of_the_run_sends_no_head_for_a_tag_the_first_looked_up():
    cache, table = MemoryDigestCache(clock=FakeClock()), pools()
    assert client(table, cache).head_manifest("team/app", "1.4").digest == DIGEST
    assert client(table, cache).head_manifest("team/app", "1.4").digest == DIGEST
    assert len(table.kinds("HEAD")) == 1
    assert cache.get(KEY) == Descriptor(DIGEST, DOCKER_MANIFEST)


def test_after_the_ttl_the_tag_is_asked_again():
    clock = FakeClock()
    cache, table = MemoryDigestCache(ttl=60, clock=clock), pools()
    client(table, cache, clock).head_manifest("team/app", "1.4")
    clock.advance(61)
    client(table, cache, clock).head_manifest("team/app", "1.4")
    assert len(table.kinds("HEAD")) == 2


def test_the_digest_of_a_get_fallback_is_remembered_too():
    body = b'{"schemaVersion": 2}'
    table = TablePools([("GET", "/v2/team/app/manifests/", lambda _: (200, {"Content-Type": DOCKER_MANIFEST}, body)),
                        ("GET", "/v2/", lambda _: (200, {}, b"")),
                        ("HEAD", "/v2/", lambda _: (200, {"Content-Type": DOCKER_MANIFEST}, b""))])
    cache = MemoryDigestCache(clock=FakeClock())
    first = client(table, cache).head_manifest("team/app", "1.4")
    assert client(table, cache).head_manifest("team/app", "1.4") == first
    assert len(table.kinds("HEAD")) == 1 and len(table.kinds("GET", "/v2/team/app/manifests/")) == 1


def test_a_failed_head_is_not_remembered_and_is_abandoned():
    calls, abandoned = [], []

    def not_found(request):
        calls.append(request)
        return 404, {"Content-Type": "application/json"}, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}'

    table = TablePools([("GET", "/v2/", lambda _: (200, {}, b"")), ("HEAD", "/v2/", not_found)])
    cache = MemoryDigestCache(clock=FakeClock())
    cache.abandon = abandoned.append
    for _ in range(2):
        with pytest.raises(Exception):
            client(table, cache).head_manifest("team/app", "1.4")
    assert len(calls) == 2 and cache.get(KEY) is None and abandoned == [KEY, KEY]


def test_a_digest_reference_is_neither_read_from_nor_written_to_the_cache():
    class Refusing:
        def get(self, key):
            raise AssertionError("read for a digest")

        def put(self, key, descriptor):
            raise AssertionError("written for a digest")

        def abandon(self, key):
            raise AssertionError("abandoned for a digest")

    table = pools()
    assert client(table, Refusing()).head_manifest("team/app", DIGEST).digest == DIGEST


class Broken:
    def __init__(self):
        self.writes = 0

    def get(self, key):
        raise ConnectionError("cache unreachable")

    def put(self, key, descriptor):
        self.writes += 1
        raise ConnectionError("cache unreachable")

    def abandon(self, key):
        raise ConnectionError("cache unreachable")


def test_a_failing_cache_is_a_miss_with_a_warning_and_the_head_goes_out(caplog):
    table, broken = pools(), Broken()
    with caplog.at_level(logging.WARNING, logger="spyglass.registry"):
        assert client(table, broken).head_manifest("team/app", "1.4").digest == DIGEST
    assert len(table.kinds("HEAD")) == 1 and broken.writes == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("digest cache read for reg.example:5000/team/app failed (ConnectionError)" in m for m in messages)
    assert any("digest cache put for reg.example:5000/team/app failed (ConnectionError)" in m for m in messages)


def test_a_nonpositive_ttl_is_refused():
    with pytest.raises(ValueError):
        MemoryDigestCache(ttl=0)
