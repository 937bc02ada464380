"""Registry bearer tokens and the cache that keeps them for an invocation.

A token is cached under everything that decides what it grants: the realm, the
service, the scopes and the identity of the credential that obtained it (a
non-secret digest, see ``authn.Credential.identity``). Two requests for the
same key at once fetch once; the second waits for the first and shares its token,
or its error (``singleflight``).

``TokenCache`` is the interface the registry client uses. ``MemoryTokenCache``
is the default; a shared store (DynamoDB, say) plugs in behind it as
``shared=`` and is consulted only when memory has nothing fresh.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

from .clock import Clock, SystemClock
from .singleflight import SingleFlight

DEFAULT_EXPIRES_IN = 60.0  # the token spec: a token without expires_in lives 60 seconds
EXPIRY_MARGIN = 5.0  # stop using a token this long before it expires: requests take time


@dataclass(frozen=True)
class TokenKey:
    realm: str
    service: str
    scopes: tuple[str, ...]
    credential_identity: str  # "" for anonymous

    def digest(self) -> str:
        """A fixed-length key for stores that should not hold realm or scope text verbatim."""
        text = "\n".join([self.realm, self.service, *self.scopes, self.credential_identity])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float  # wall-clock seconds since the epoch

    def usable(self, now: float, margin: float = EXPIRY_MARGIN) -> bool:
        return now < self.expires_at - margin


class TokenStore(Protocol):
    """A place tokens outlive one invocation in; errors are the store's to absorb."""

    def get(self, key: TokenKey) -> Token | None: ...

    def put(self, key: TokenKey, token: Token) -> None: ...


class TokenCache(Protocol):
    def get_or_fetch(self, key: TokenKey, fetch: Callable[[], Token]) -> Token:
        """A usable token for key, calling fetch at most once across concurrent callers."""

    def discard(self, key: TokenKey, token: Token) -> None:
        """Forget token (a registry refused it) unless another caller already replaced it."""


class MemoryTokenCache:
    def __init__(self, *, clock: Clock | None = None, shared: TokenStore | None = None,
                 margin: float = EXPIRY_MARGIN):
        self._clock = clock or SystemClock()
        self._shared = shared
        self._margin = margin
        self._tokens: dict[TokenKey, Token] = {}
        self._fetching: SingleFlight[TokenKey, Token] = SingleFlight()
        self._lock = threading.Lock()
        self.fetches = 0  # how many times fetch was called; the tests and the report read it

    def get_or_fetch(self, key: TokenKey, fetch: Callable[[], Token]) -> Token:
        return self._fresh(key) or self._fetching.do(key, lambda: self._refill(key, fetch))

    def _refill(self, key: TokenKey, fetch: Callable[[], Token]) -> Token:
        # A fetch for this key may have ended between _fresh and this call's start.
        token = self._fresh(key) or self._from_shared(key)
        if token is None:
            token = fetch()
            with self._lock:
                self.fetches += 1
            if self._shared is not None:
                self._shared.put(key, token)
        with self._lock:
            self._tokens[key] = token
        return token

    def discard(self, key: TokenKey, token: Token) -> None:
        with self._lock:
            if self._tokens.get(key) == token:
                del self._tokens[key]

    def _fresh(self, key: TokenKey) -> Token | None:
        with self._lock:
            token = self._tokens.get(key)
        if token is not None and token.usable(self._clock.now(), self._margin):
            return token
        return None

    def _from_shared(self, key: TokenKey) -> Token | None:
        if self._shared is None:
            return None
        token = self._shared.get(key)
        # TTL deletion in a shared store is late: check expiry on every read.
        if token is not None and token.usable(self._clock.now(), self._margin):
            return token
        return None
