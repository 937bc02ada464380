"""Per-registry request counts for the report, as a layer under retry (so every attempt counts).

A request's kind is read from what it is: GET /v2/ is the ping, a manifest request is
its method (head, get), a tags list page is "tags", anything else the registry path sends is a token request.
Rate-limit headers (Docker Hub's ``ratelimit-*``) are kept as the registry last sent them.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .transport import Request, Response, Transport

KINDS = ("ping", "token", "head", "get")  # always reported; "tags" only once a tags list was asked for
RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining")


@dataclass
class RegistryStats:
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rate_limit: dict[str, str] = field(default_factory=dict)


def request_kind(request: Request) -> str:
    path = urlsplit(request.url).path
    if path == "/v2/":
        return "ping"
    if "/manifests/" in path:
        return request.method.lower()
    if path.endswith("/tags/list"):
        return "tags"
    return "token"


class CountingTransport:
    def __init__(self, inner: Transport, stats: RegistryStats):
        self._inner = inner
        self.stats = stats
        self._lock = threading.Lock()

    def round_trip(self, request: Request) -> Response:
        kind = request_kind(request)
        with self._lock:
            self.stats.requests[kind] = self.stats.requests.get(kind, 0) + 1
        response = self._inner.round_trip(request)
        seen = {name: response.header(name) for name in RATE_LIMIT_HEADERS if response.header(name)}
        if seen:
            with self._lock:
                self.stats.rate_limit.update(seen)
        return response
