"""The tag digests shared by a fleet run's invocations, on DynamoDB (moto)."""
from __future__ import annotations

import hashlib
import logging

import pytest

from engine.clock import FakeClock
from engine.digestcache import DigestKey
from engine.mediatypes import MANIFEST_ACCEPT, OCI_INDEX, Descriptor
from handler.aws.dynamodb import DynamoDigestCache

KEY = DigestKey("registry.example.com", "team/app", "1.4", MANIFEST_ACCEPT)
DESCRIPTOR = Descriptor("sha256:" + "c" * 64, OCI_INDEX)


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


def cache(aws, clock, table=None, ttl=300.0, run="run-1"):
    return DynamoDigestCache(table or aws.table, run=run, client=aws.client("dynamodb"), clock=clock, ttl=ttl)


def test_a_digest_stored_by_one_invocation_is_read_by_the_next(aws, clock):
    cache(aws, clock).put(KEY, DESCRIPTOR)
    reader = cache(aws, clock)
    assert reader.get(KEY) == DESCRIPTOR
    assert reader.stats() == {"reads": 1, "hits": 1, "writes": 0, "degraded": False, "claims": 0, "waits": 0}


def test_the_key_is_a_digest_and_the_ttl_attribute_is_set(aws, clock):
    cache(aws, clock, ttl=120.5).put(KEY, DESCRIPTOR)
    [item] = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    assert item["pk"]["S"] == "digest#" + hashlib.sha256(f"run-1\n{KEY.digest()}".encode()).hexdigest()
    assert "team/app" not in item["pk"]["S"] and "registry.example.com" not in item["pk"]["S"]
    assert int(item["expires"]["N"]) == 1_700_000_121
    assert item["media_type"]["S"] == OCI_INDEX


def test_an_expired_item_that_ttl_has_not_removed_yet_is_not_used(aws, clock):
    cache(aws, clock, ttl=300).put(KEY, DESCRIPTOR)
    clock.advance(299)
    assert cache(aws, clock).get(KEY) == DESCRIPTOR
    clock.advance(1)
    reader = cache(aws, clock)
    assert reader.get(KEY) is None and reader.stats()["reads"] == 1 and reader.stats()["hits"] == 0


def test_the_next_run_asks_again_however_soon_it_starts(aws, clock):
    cache(aws, clock, run="run-1").put(KEY, DESCRIPTOR)
    assert cache(aws, clock, run="run-2").get(KEY) is None
    assert cache(aws, clock, run="run-1").get(KEY) == DESCRIPTOR


def test_a_later_head_replaces_the_digest(aws, clock):
    cache(aws, clock).put(KEY, DESCRIPTOR)
    newer = Descriptor("sha256:" + "d" * 64, OCI_INDEX)
    cache(aws, clock).put(KEY, newer)
    assert cache(aws, clock).get(KEY) == newer


@pytest.mark.parametrize("attributes", [
    {"digest": {"S": "not a digest"}, "expires_at": {"N": "1800000000"}},
    {"digest": {"N": "7"}, "expires_at": {"N": "1800000000"}},
    {"digest": {"S": "sha256:" + "c" * 64}},
    {"digest": {"S": "sha256:" + "c" * 64}, "expires_at": {"S": "soon"}},
])
def test_a_corrupt_item_is_a_miss_with_a_warning(aws, clock, caplog, attributes):
    key = "digest#" + hashlib.sha256(f"run-1\n{KEY.digest()}".encode()).hexdigest()
    aws.client("dynamodb").put_item(TableName=aws.table, Item={"pk": {"S": key}, **attributes})
    with caplog.at_level(logging.WARNING, logger="spyglass.aws"):
        assert cache(aws, clock).get(KEY) is None
    assert any("digest cache: ignoring a malformed item" in r.getMessage() for r in caplog.records)


def test_a_failing_table_degrades_after_one_warning_and_stops_asking(aws, clock, caplog):
    broken = cache(aws, clock, table="no-such-table")
    with caplog.at_level(logging.WARNING, logger="spyglass.aws"):
        assert broken.get(KEY) is None
        broken.put(KEY, DESCRIPTOR)
        assert broken.get(KEY) is None
    warnings = [r.getMessage() for r in caplog.records if "digest cache table" in r.getMessage()]
    assert len(warnings) == 1 and "ResourceNotFoundException" in warnings[0] and "asking the registries" in warnings[0]
    assert broken.stats() == {"reads": 0, "hits": 0, "writes": 0, "degraded": True, "claims": 0, "waits": 0}


def test_the_registry_client_behind_the_table_sends_one_head_for_two_batches(aws, clock):
    from engine.mediatypes import DOCKER_MANIFEST
    from engine.name import parse_registry
    from engine.registry import layered
    from engine.retry import Backoff
    from tests.unit.fakes import TablePools

    digest = "sha256:" + "e" * 64
    pools = TablePools([("GET", "/v2/", lambda _: (200, {}, b"")),
                        ("HEAD", "/v2/", lambda _: (200, {"Docker-Content-Digest": digest,
                                                          "Content-Type": DOCKER_MANIFEST}, b""))])
    for _ in range(2):
        client = layered(parse_registry("reg.example"), pools=pools, clock=clock, backoff=Backoff(),
                         digest_cache=cache(aws, clock)).client
        assert client.head_manifest("team/app", "1.4") == Descriptor(digest, DOCKER_MANIFEST)
    assert len(pools.kinds("HEAD")) == 1


# -- batches that start together: one claims the HEAD, the others wait for its answer ---------------

def test_batches_that_start_together_send_one_head_between_them(aws):
    import threading
    import time

    from engine.clock import SystemClock
    from engine.mediatypes import DOCKER_MANIFEST
    from engine.name import parse_registry
    from engine.registry import layered
    from engine.retry import Backoff
    from tests.unit.fakes import TablePools

    digest = "sha256:" + "f" * 64

    def slow_head(_):
        time.sleep(0.4)  # a registry far away: every batch misses the table before the first answer
        return 200, {"Docker-Content-Digest": digest, "Content-Type": DOCKER_MANIFEST}, b""

    pools = TablePools([("GET", "/v2/", lambda _: (200, {}, b"")), ("HEAD", "/v2/", slow_head)])
    # DynamoDB checks a condition and writes as one step; moto does the two with no lock between them,
    # so four threads could all pass the same check. One lock around each call gives the service's
    # atomicity back (the calls still interleave as four batches' would).
    atomic = _Serialized(aws.client("dynamodb"), threading.Lock())
    caches = [DynamoDigestCache(aws.table, run="run-1", client=atomic, clock=SystemClock(), ttl=300.0)
              for _ in range(4)]
    answers, start = [], threading.Barrier(len(caches))

    def batch(digests) -> None:
        client = layered(parse_registry("reg.example"), pools=pools, backoff=Backoff(), digest_cache=digests).client
        start.wait()
        answers.append(client.head_manifest("team/app", "1.4").digest)

    threads = [threading.Thread(target=batch, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [digest] * 4
    assert len(pools.kinds("HEAD")) == 1
    assert sum(c.claims for c in caches) == 1 and sum(c.waits for c in caches) == 3


def test_a_claim_that_ends_without_an_answer_lets_the_waiter_ask_itself(aws, clock):
    assert cache(aws, clock).get(KEY) is None  # claimed; its HEAD fails, so nothing is put
    waiter = cache(aws, clock)
    started = clock.monotonic()
    assert waiter.get(KEY) is None
    assert waiter.stats()["waits"] == 1 and clock.monotonic() - started >= 5.0  # it waited out the claim


def test_an_abandoned_claim_lets_the_waiters_ask_at_once(aws, clock):
    claimant = cache(aws, clock)
    assert claimant.get(KEY) is None
    claimant.abandon(KEY)
    other = cache(aws, clock)
    assert other.get(KEY) is None and other.stats()["claims"] == 1 and other.stats()["waits"] == 0


def test_abandon_never_removes_a_digest(aws, clock):
    cache(aws, clock).put(KEY, DESCRIPTOR)
    cache(aws, clock).abandon(KEY)
    assert cache(aws, clock).get(KEY) == DESCRIPTOR


def test_a_claim_older_than_its_time_is_taken_over(aws, clock):
    assert cache(aws, clock).get(KEY) is None
    clock.advance(6)
    late = cache(aws, clock)
    assert late.get(KEY) is None and late.stats()["claims"] == 1 and late.stats()["waits"] == 0


class _Serialized:
    """A client whose calls run one at a time (see the test above)."""

    def __init__(self, client, lock):
        self._client, self._lock = client, lock

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            with self._lock:
                return method(*args, **kwargs)
        return call

