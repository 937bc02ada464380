"""The token cache: keys, expiry against an injected clock, one fetch per key under concurrency."""
import threading

import pytest

from engine.bearer import parse_token_response
from engine.clock import FakeClock
from engine.errors import RegistryError
from engine.tokens import Token, TokenKey, MemoryTokenCache
from tests.unit.overlap import Held, overlapping

KEY = TokenKey("https://auth.example/token", "registry.example", ("repository:a:pull",), "")


def test_a_cached_token_is_served_until_shortly_before_it_expires():
    clock = FakeClock()
    cache = MemoryTokenCache(clock=clock, margin=5)
    fetched = []

    def fetch():
        fetched.append(1)
        return Token(f"t{len(fetched)}", clock.now() + 60)

    assert cache.get_or_fetch(KEY, fetch).value == "t1"
    clock.advance(54)
    assert cache.get_or_fetch(KEY, fetch).value == "t1"
    clock.advance(1.5)  # now inside the margin
    assert cache.get_or_fetch(KEY, fetch).value == "t2"
    assert len(fetched) == 2


def test_keys_differ_by_credential_identity_and_scopes():
    cache = MemoryTokenCache(clock=FakeClock())
    other_credential = TokenKey(KEY.realm, KEY.service, KEY.scopes, "identity-b")
    other_scopes = TokenKey(KEY.realm, KEY.service, ("repository:b:pull",), "")
    values = iter(["x", "y", "z"])
    tokens = {k: cache.get_or_fetch(k, lambda: Token(next(values), 2e9)).value
              for k in (KEY, other_credential, other_scopes)}
    assert sorted(tokens.values()) == ["x", "y", "z"]


def test_discard_forgets_only_the_token_that_was_refused():
    cache = MemoryTokenCache(clock=FakeClock())
    first = cache.get_or_fetch(KEY, lambda: Token("old", 2e9))
    cache.discard(KEY, Token("someone-else", 2e9))
    assert cache.get_or_fetch(KEY, lambda: Token("new", 2e9)) == first
    cache.discard(KEY, first)
    assert cache.get_or_fetch(KEY, lambda: Token("new", 2e9)).value == "new"


def test_concurrent_callers_for_one_key_fetch_once():
    cache = MemoryTokenCache(clock=FakeClock())
    fetch = Held(lambda: Token("shared", 2e9))
    results = overlapping(cache._fetching, KEY, fetch, lambda: cache.get_or_fetch(KEY, fetch).value, 32)
    assert results == ["shared"] * 32
    assert fetch.calls == 1 and cache.fetches == 1


def test_concurrent_callers_share_a_failed_fetch_and_the_next_caller_tries_again():
    def refused():
        raise RegistryError("fetch token: HTTP 503", status=503)

    cache = MemoryTokenCache(clock=FakeClock())
    fetch = Held(refused)
    results = overlapping(cache._fetching, KEY, fetch, lambda: cache.get_or_fetch(KEY, fetch), 8)
    assert fetch.calls == 1 and all(isinstance(r, RegistryError) for r in results) and len(results) == 8
    assert cache.get_or_fetch(KEY, lambda: Token("later", 2e9)).value == "later"


def test_many_threads_with_a_moving_clock_never_get_an_expired_token():
    clock = FakeClock()
    cache = MemoryTokenCache(clock=clock, margin=0)
    lock = threading.Lock()
    problems = []

    def fetch():
        return Token("t", clock.now() + 1)

    def worker():
        for _ in range(200):
            token = cache.get_or_fetch(KEY, fetch)
            if not token.expires_at > clock.now() - 1.0:  # the clock moves between get and check
                problems.append(token)
            with lock:
                clock.advance(0.01)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert problems == []


class _Store:
    def __init__(self):
        self.items = {}

    def get(self, key):
        return self.items.get(key)

    def put(self, key, token):
        self.items[key] = token


def test_a_shared_store_serves_a_second_cache_but_not_an_expired_item():
    clock = FakeClock()
    store = _Store()
    MemoryTokenCache(clock=clock, shared=store).get_or_fetch(KEY, lambda: Token("from-first", clock.now() + 60))
    second = MemoryTokenCache(clock=clock, shared=store)
    assert second.get_or_fetch(KEY, lambda: Token("fetched", clock.now() + 60)).value == "from-first"
    clock.advance(120)
    third = MemoryTokenCache(clock=clock, shared=store)
    assert third.get_or_fetch(KEY, lambda: Token("fetched", clock.now() + 60)).value == "fetched"


@pytest.mark.parametrize("body, expected_life", [
    (b'{"token": "a", "expires_in": 300}', 300),
    (b'{"access_token": "a"}', 60),             # absent: the spec's 60 s
    (b'{"token": "a", "expires_in": 0}', 60),
    (b'{"token": "a", "expires_in": "300"}', 60),
    (b'{"token": "a", "expires_in": 120, "issued_at": "2023-11-14T22:13:20Z"}', 120),
])
def test_token_response_lifetimes(body, expected_life):
    now = 1_700_000_000.0
    token = parse_token_response(body, now=now, operation="fetch token", registry="r")
    assert token.expires_at == pytest.approx(now + expected_life, abs=1)


def test_issued_at_in_the_past_shortens_the_life():
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    token = parse_token_response(b'{"token":"a","expires_in":120,"issued_at":"2023-11-14T22:12:20Z"}',
                                 now=now, operation="op", registry="r")
    assert token.expires_at == pytest.approx(now + 60)


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"token": ""}', b'{"token": 5}', b'{}'])
def test_token_responses_without_a_token_are_registry_errors(body):
    with pytest.raises(RegistryError) as caught:
        parse_token_response(body, now=0, operation="fetch token from https://a/token", registry="r")
    assert "fetch token from https://a/token" in str(caught.value)


def test_a_token_never_shows_in_its_repr():
    assert "sekrit" not in repr(Token("sekrit", 1.0))
