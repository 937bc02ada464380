"""The token cache hammered by many threads while a fake clock moves expiry under them.

Two promises: one fetch per key for each lifetime of its token (however many
callers arrive at once), and never a token served after its usable life has
ended (expiry minus the margin, on the clock as it stood when the caller asked).
"""
from __future__ import annotations

import random
import threading
from collections import Counter

from engine.clock import FakeClock
from engine.tokens import EXPIRY_MARGIN, MemoryTokenCache, Token, TokenKey

THREADS, KEYS, ROUNDS, CALLS = 16, 6, 8, 40
LIFETIME = 60.0
KEYS_USED = [TokenKey("https://auth.example/token", "registry", (f"repository:r{i}:pull",), f"id{i % 2}")
             for i in range(KEYS)]


class SharedStore:
    """A TokenStore like DynamoDB's: holds what it is given, and may hand back expired tokens (late TTL)."""

    def __init__(self):
        self.items: dict[TokenKey, Token] = {}
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            return self.items.get(key)

    def put(self, key, token):
        with self.lock:
            self.items[key] = token


def _hammer(cache: MemoryTokenCache, clock: FakeClock, fetches: Counter, lock: threading.Lock,
            stale: list, barrier: threading.Barrier, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        barrier.wait()  # every thread starts a round together; the clock moved between rounds
        for _ in range(CALLS):
            key = rng.choice(KEYS_USED)
            asked_at = clock.now()

            def fetch(key=key):
                with lock:
                    fetches[(key, round(clock.now() // LIFETIME))] += 1
                return Token(f"{key.scopes[0]}@{clock.now()}", clock.now() + LIFETIME)

            token = cache.get_or_fetch(key, fetch)
            if token.expires_at - EXPIRY_MARGIN <= asked_at:  # judged here, not by the cache's own rule
                stale.append((key, token.expires_at, asked_at))
        barrier.wait()


def _run(shared=None) -> tuple[Counter, list]:
    clock = FakeClock(start=1_700_000_000.0 - 1_700_000_000.0 % LIFETIME)
    cache = MemoryTokenCache(clock=clock, shared=shared)
    fetches, lock, stale = Counter(), threading.Lock(), []

    def between_rounds():
        clock.advance(LIFETIME)  # every token from the last round is now past its life

    barrier = threading.Barrier(THREADS, action=None)
    mover = threading.Barrier(THREADS, action=between_rounds)
    threads = [threading.Thread(target=_hammer, args=(cache, clock, fetches, lock, stale, _Alternating(barrier, mover),
                                                      seed)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return fetches, stale


class _Alternating:
    """Start-of-round waits on one barrier, end-of-round waits on the one that moves the clock."""

    def __init__(self, start: threading.Barrier, end: threading.Barrier):
        self._barriers, self._next = (start, end), 0

    def wait(self):
        barrier = self._barriers[self._next]
        self._next ^= 1
        barrier.wait(timeout=30)


def test_many_threads_fetch_once_per_key_and_lifetime_and_never_see_a_stale_token():
    fetches, stale = _run()
    assert not stale
    assert fetches and max(fetches.values()) == 1, [k for k, n in fetches.items() if n > 1]
    assert len(fetches) <= KEYS * ROUNDS


def test_with_a_shared_store_that_returns_expired_tokens_nothing_stale_is_served():
    store = SharedStore()
    fetches, stale = _run(shared=store)
    assert not stale
    assert max(fetches.values()) == 1


def test_a_clock_moving_during_the_calls_never_yields_a_stale_token():
    clock = FakeClock()
    cache = MemoryTokenCache(clock=clock, margin=EXPIRY_MARGIN)
    stale, fetched = [], Counter()
    stop = threading.Event()

    def mover():
        while not stop.is_set():
            clock.advance(0.5)
            stop.wait(0.0005)

    def caller(seed: int):
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.choice(KEYS_USED)
            asked_at = clock.now()
            token = cache.get_or_fetch(key, lambda key=key: (fetched.update([key]),
                                                             Token("t", clock.now() + 20.0))[1])
            if token.expires_at - EXPIRY_MARGIN <= asked_at:
                stale.append((token.expires_at, asked_at))

    moving = threading.Thread(target=mover)
    callers = [threading.Thread(target=caller, args=(seed,)) for seed in range(THREADS)]
    moving.start()
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=60)
    stop.set()
    moving.join()
    assert not stale
    assert sum(fetched.values()) >= KEYS
