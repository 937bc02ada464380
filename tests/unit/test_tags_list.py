"""RegistryClient.list_tags through the layers: pages by the Link header, and every bound."""
from __future__ import annotations

import json

import pytest

from engine.clock import FakeClock
from engine.errors import RateLimitedError, RegistryError
from engine.link import next_link
from engine.registry import TagLimits, layered
from engine.retry import Backoff
from tests.unit.fakes import TablePools
from tests.unit.test_registry_client import REGISTRY, ping_401, token_ok

TAGS = [f"1.{i}.0" for i in range(10)]


def paged(tags=TAGS, link=lambda request, last: f'</v2/a/tags/list?n=3&last={last}>; rel="next"'):
    """distribution's pagination: n tags after `last`, and a Link while more remain."""
    def handler(request):
        if not request["headers"].get("Authorization", "").startswith("Bearer tok:"):
            return 401, {"WWW-Authenticate": 'Bearer realm="https://auth.example/token",service="reg.example"'}, b""
        n = int(request["query"].get("n", ["1000"])[0])
        last = request["query"].get("last", [None])[0]
        start = tags.index(last) + 1 if last else 0
        page = tags[start:start + n]
        headers = {"Link": link(request, page[-1])} if start + n < len(tags) else {}
        return 200, headers, json.dumps({"name": "a", "tags": page}).encode()
    return handler


def run(handler, limits=TagLimits(page_size=3), repositories=("a",)):
    pools = TablePools([("GET", "/v2/a/tags/list", handler), ("GET", "/v2/", ping_401), ("GET", "/token", token_ok)])
    layers = layered(REGISTRY, pools=pools, repositories=repositories, clock=FakeClock(),
                     backoff=Backoff(jitter=lambda cap: 0.0))
    return pools, layers, lambda: layers.client.list_tags("a", limits)


def test_every_page_is_read_and_counted_as_tags_requests():
    pools, layers, list_tags = run(paged())
    assert list_tags() == TAGS
    assert layers.stats.requests["tags"] == 4  # four pages of 3; the ping found the scheme first
    assert [r["query"].get("last") for r in pools.kinds("GET", "/v2/a/tags/list")][-4:] == \
        [None, ["1.2.0"], ["1.5.0"], ["1.8.0"]]
    (token,) = pools.kinds("GET", "/token")
    assert token["query"]["scope"] == ["repository:a:pull"]


def test_a_combined_token_planned_for_the_heads_covers_the_tags_list():
    pools, layers, list_tags = run(paged(), repositories=("a", "b"))
    layers.auth.prime(0)
    assert list_tags() == TAGS
    assert len(pools.kinds("GET", "/token")) == 1
    assert len(pools.kinds("GET", "/v2/a/tags/list")) == 4


def test_an_absolute_next_link_on_the_same_host_is_followed():
    _, _, list_tags = run(paged(link=lambda r, last: f'<https://reg.example:5000/v2/a/tags/list?n=3&last={last}>; rel=next'))
    assert list_tags() == TAGS


@pytest.mark.parametrize("link, why", [
    (lambda r, last: '</v2/a/tags/list?n=3>; rel="next"', "already read"),
    (lambda r, last: f'<https://elsewhere.example/v2/a/tags/list?last={last}>; rel="next"', "another host"),
])
def test_a_loop_or_another_host_ends_the_list_with_an_error(link, why):
    _, _, list_tags = run(paged(link=link))
    with pytest.raises(RegistryError, match=why) as caught:
        list_tags()
    assert (caught.value.registry, caught.value.repository) == ("reg.example:5000", "a")


def test_pages_tags_and_bytes_are_bounded():
    with pytest.raises(RegistryError, match="more than 2 pages"):
        run(paged(), TagLimits(page_size=3, pages=2))[2]()
    with pytest.raises(RegistryError, match="more than 5 tags"):
        run(paged(), TagLimits(page_size=3, tags=5))[2]()
    # The transport enforces each request's max_body (test_transport); here: what each page may read.
    pools, _, list_tags = run(paged(), TagLimits(page_size=3, page_bytes=60, total_bytes=150))
    with pytest.raises(RegistryError, match="more than 150 bytes in all"):
        list_tags()
    budgets = [r["max_body"] for r in pools.kinds("GET", "/v2/a/tags/list")]
    read = [len(json.dumps({"name": "a", "tags": TAGS[i:i + 3]})) for i in range(0, 10, 3)]
    assert budgets == [60, 60, 150 - sum(read[:2])]


@pytest.mark.parametrize("body, why", [(b"<html>", "not valid JSON"), (b'{"tags": [1, 2]}', "not a tags list"),
                                       (b'["1.0"]', "not a tags list")])
def test_a_body_that_is_not_a_tags_list_is_an_error(body, why):
    _, _, list_tags = run(lambda request: (200, {}, body))
    with pytest.raises(RegistryError, match=why):
        list_tags()


def test_a_repository_without_tags_has_an_empty_list():
    assert run(lambda request: (200, {}, b'{"name": "a", "tags": null}'))[2]() == []


def test_failures_are_classified_like_manifest_requests():
    _, layers, list_tags = run(lambda request: (429, {}, b""))
    with pytest.raises(RateLimitedError):
        list_tags()


@pytest.mark.parametrize("values, expected", [
    (['</v2/a/tags/list?n=2&last=b>; rel="next"'], "/v2/a/tags/list?n=2&last=b"),
    (['<https://x/first>; rel="first", </next,with,commas>; rel="prev next"'], "/next,with,commas"),
    (['</p>; rel="prev"', '</n>; REL=Next'], "/n"),
    (['</p>; title="next"'], None),
    ([], None),
])
def test_next_link(values, expected):
    assert next_link(values) == expected
