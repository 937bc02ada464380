"""Fakes passed in where the engine takes collaborators: a table-driven HTTP transport."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import urllib3

from engine.tlsconfig import TLSPolicy
from engine.transport import Request, Response


class TablePools:
    """A Transport (with HttpPools' extras) that answers requests from a list of (predicate, response) rules; anything unmatched fails the test.

    A rule is (method, path_prefix, handler) where handler(request) returns (status, headers, body).
    Every request is recorded as a dict with method, path, query, headers.
    """

    def __init__(self, rules, tls: TLSPolicy | None = None):
        self.rules = list(rules)
        self.tls = tls or TLSPolicy()
        self.requests: list[dict] = []
        self.opened: list[tuple[str, int]] = []  # open_connections(base_url, count) calls

    def load_trust(self):
        return None

    def open_connections(self, base_url, count, *, timeout=None):
        self.opened.append((base_url, count))
        return 0

    def round_trip(self, sent: Request) -> Response:
        parts = urlsplit(sent.url)
        request = {"method": sent.method, "url": sent.url, "host": parts.netloc, "path": parts.path,
                   "query": parse_qs(parts.query), "headers": dict(sent.headers), "body": sent.body,
                   "timeout": sent.timeout, "max_body": sent.max_body}
        self.requests.append(request)
        for rule_method, prefix, handler in self.rules:
            if rule_method == sent.method and parts.path.startswith(prefix):
                status, response_headers, response_body = handler(request)
                return Response(status, urllib3.HTTPHeaderDict(response_headers), response_body, sent.url)
        raise AssertionError(f"unexpected request {sent.method} {sent.url}")

    def kinds(self, method=None, prefix=""):
        return [r for r in self.requests if (method is None or r["method"] == method) and r["path"].startswith(prefix)]
