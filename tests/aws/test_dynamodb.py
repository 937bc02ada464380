"""The shared token cache and the notify state on DynamoDB (moto)."""
from __future__ import annotations

import random
import threading

import pytest

from engine.clock import FakeClock
from engine.tokens import MemoryTokenCache, Token, TokenKey
from handler.aws.dynamodb import DeliveredState, DynamoTokenStore, NotifyState

KEY = TokenKey("https://auth.example.com/token", "registry.example.com", ("repository:team/app:pull",), "id-1")


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


def store(aws, clock, table=None):
    return DynamoTokenStore(table or aws.table, client=aws.client("dynamodb"), clock=clock)


def test_a_token_written_by_one_invocation_is_read_by_the_next(aws, clock):
    store(aws, clock).put(KEY, Token("secret-token", clock.now() + 300))
    assert store(aws, clock).get(KEY) == Token("secret-token", clock.now() + 300)


def test_the_item_key_is_a_digest_and_the_ttl_attribute_is_set(aws, clock):
    store(aws, clock).put(KEY, Token("secret-token", clock.now() + 300.5))
    [item] = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    assert item["pk"]["S"] == "token#" + KEY.digest()
    assert "secret-token" not in item["pk"]["S"] and "auth.example.com" not in item["pk"]["S"]
    assert int(item["expires"]["N"]) == 1_700_000_301


def test_an_expired_item_that_ttl_has_not_removed_yet_is_not_used(aws, clock):
    store(aws, clock).put(KEY, Token("old", clock.now() + 60))
    clock.advance(61)
    assert store(aws, clock).get(KEY) is None
    cache = MemoryTokenCache(clock=clock, shared=store(aws, clock))
    assert cache.get_or_fetch(KEY, lambda: Token("new", clock.now() + 300)).value == "new"
    assert cache.fetches == 1


def test_two_caches_in_a_row_fetch_once(aws, clock):
    first = MemoryTokenCache(clock=clock, shared=store(aws, clock))
    first.get_or_fetch(KEY, lambda: Token("t1", clock.now() + 300))
    second = MemoryTokenCache(clock=clock, shared=store(aws, clock))
    assert second.get_or_fetch(KEY, lambda: pytest.fail("fetched again")).value == "t1"


def test_a_later_expiry_wins_whatever_the_order_of_concurrent_writers(aws, clock):
    expiries = [clock.now() + 100 + i for i in range(16)]
    random.Random(7).shuffle(expiries)
    stores = [store(aws, clock) for _ in expiries]
    start = threading.Barrier(len(expiries))

    def write(i: int) -> None:
        start.wait()
        stores[i].put(KEY, Token(f"t{expiries[i]:.0f}", expiries[i]))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(expiries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store(aws, clock).get(KEY).expires_at == max(expiries)
    assert not any(s.degraded for s in stores)


def test_an_older_token_does_not_replace_a_newer_one(aws, clock):
    store(aws, clock).put(KEY, Token("newer", clock.now() + 600))
    store(aws, clock).put(KEY, Token("older", clock.now() + 300))
    assert store(aws, clock).get(KEY).value == "newer"


def test_a_failing_table_degrades_to_memory_with_one_warning(aws, clock, caplog):
    broken = store(aws, clock, table="no-such-table")
    cache = MemoryTokenCache(clock=clock, shared=broken)
    keys = [TokenKey("r", "s", (f"repository:a{i}:pull",), "") for i in range(3)]
    for key in keys:
        assert cache.get_or_fetch(key, lambda: Token("t", clock.now() + 300)).value == "t"
    assert broken.degraded and cache.fetches == 3
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "token cache table" in r.getMessage()]
    assert len(warnings) == 1 and "ResourceNotFoundException" in warnings[0].getMessage()


def test_notify_state_round_trip_and_an_older_scan_does_not_overwrite(aws, clock):
    state = NotifyState(aws.table, client=aws.client("dynamodb"), clock=clock)
    assert state.last("tcp://h:2376") is None
    assert state.record("tcp://h:2376", DeliveredState("fp-2", "scan-2", 2000.0))
    assert not state.record("tcp://h:2376", DeliveredState("fp-1", "scan-1", 1000.0))
    assert state.last("tcp://h:2376") == DeliveredState("fp-2", "scan-2", 2000.0)
    assert state.last("tcp://other:2376") is None


def test_the_notify_store_for_the_policy_flow_records_with_its_scan_and_time(aws, clock):
    from handler.aws.dynamodb import DeliveredFingerprints

    state = NotifyState(aws.table, client=aws.client("dynamodb"), clock=clock)
    store = DeliveredFingerprints(state, scan_id="scan-1", delivered_at=lambda: 1000.0, what="report")
    assert store.last("tcp://h:2376") is None
    assert store.record("tcp://h:2376", "fp-1") == ""
    assert store.last("tcp://h:2376") == "fp-1"
    assert state.last("tcp://h:2376") == DeliveredState("fp-1", "scan-1", 1000.0)
    state.record("tcp://h:2376", DeliveredState("fp-2", "scan-2", 2000.0))
    assert store.record("tcp://h:2376", "fp-3") == "" and store.last("tcp://h:2376") == "fp-2"  # the later stays


def test_a_notify_table_that_fails_is_a_warning_a_notification_and_no_record(aws, clock, caplog):
    from handler.aws.dynamodb import DeliveredFingerprints

    state = NotifyState("no-such-table", client=aws.client("dynamodb"), clock=clock)
    store = DeliveredFingerprints(state, scan_id="run-1", delivered_at=clock.now, what="fleet report")
    with caplog.at_level("WARNING", logger="spyglass.aws"):
        assert store.last("fleet:prod") is None
        problem = store.record("fleet:prod", "fp-1")
    assert "ResourceNotFoundException" in problem and "no-such-table" in problem
    read, write = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "last delivered fleet report from no-such-table" in read and "notifying anyway" in read
    assert "ResourceNotFoundException" in write and "the next run may notify again" in write


def test_token_cache_spec_for_the_cli(aws, tmp_path):
    from engine.errors import ConfigurationError
    from handler.cli import _token_store, read_settings

    def cli_store(env):  # the CLI's own path: its settings, then the store they name
        return _token_store(read_settings(["scan"], env, tmp_path))

    assert cli_store({"TOKEN_CACHE": "memory"}) is None and cli_store({"TOKEN_CACHE": ""}) is None
    assert isinstance(cli_store({"TOKEN_CACHE": f"dynamodb:{aws.table}"}), DynamoTokenStore)
    with pytest.raises(ConfigurationError, match="TOKEN_CACHE"):
        cli_store({"TOKEN_CACHE": "redis://x"})
