"""The digest behind a tag, remembered for a few minutes so a fleet asks each registry once.

A fleet runs the same images on many endpoints; scanned in batches (several Lambda
invocations of one Step Functions run), every batch would HEAD the same tags again.
A ``DigestCache`` sits in front of ``RegistryClient.head_manifest``:

    get(key)  → the Descriptor a recent HEAD returned, or None (absent, expired, unreadable)
    put(key, descriptor) after a successful HEAD
    abandon(key) after a failed one (a shared cache may have told others to wait for it)

The key is everything that decides the answer: registry, repository, tag and the Accept
list sent (a registry resolves a multi-platform tag differently when index types are not
accepted). Entries live ``ttl`` seconds; expiry is checked on every read, because a shared
store's own expiry (DynamoDB's TTL deletion) runs late. The registry client treats any
error from a cache as a miss: a cache can cost a HEAD, never a lookup.

``MemoryDigestCache`` is the in-process implementation (tests, and one process scanning
several endpoints); the Lambda's DynamoDB one is handler/aws/dynamodb.py's.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock, SystemClock
from .mediatypes import Descriptor

DEFAULT_TTL = 300.0  # seconds: one run's batches fall inside it; a tag pushed since is seen next run


@dataclass(frozen=True)
class DigestKey:
    registry: str  # the registry's name (docker.io, not registry-1.docker.io)
    repository: str
    tag: str
    accept: str  # the Accept header the HEAD carries

    def digest(self) -> str:
        """A fixed-length key for stores (no repository or tag text in a table's keys)."""
        text = "\n".join([self.registry, self.repository, self.tag, self.accept])
        return hashlib.sha256(text.encode()).hexdigest()


class DigestCache(Protocol):
    def get(self, key: DigestKey) -> Descriptor | None: ...

    def put(self, key: DigestKey, descriptor: Descriptor) -> None: ...

    def abandon(self, key: DigestKey) -> None: ...


class MemoryDigestCache:
    """Descriptors in a dict, each until ``ttl`` seconds after it was stored; safe between threads."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, clock: Clock | None = None):
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._ttl = ttl
        self._clock = clock or SystemClock()
        self._entries: dict[DigestKey, tuple[Descriptor, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: DigestKey) -> Descriptor | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        descriptor, expires_at = entry
        return descriptor if self._clock.now() < expires_at else None

    def put(self, key: DigestKey, descriptor: Descriptor) -> None:
        with self._lock:
            self._entries[key] = (descriptor, self._clock.now() + self._ttl)

    def abandon(self, key: DigestKey) -> None:
        """Nothing to undo: in one process the scan already asks each tag once."""
