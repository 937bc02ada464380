"""The registry client's handshake, driven through a table transport (no I/O).

The same behaviours are proven against the real registry in tests/integration.
"""
import hashlib
import json

import pytest

from engine.authn import Credential
from engine.clock import FakeClock
from engine.errors import NotFoundError, RateLimitedError, RegistryError, TLSError, UnauthorizedError
from engine.mediatypes import DOCKER_MANIFEST, OCI_INDEX
from engine.name import parse_registry
from engine.registry import layered
from engine.retry import Backoff
from engine.scope import MAX_SCOPE_CHARS, MAX_SCOPES_PER_TOKEN, scope_chunks
from engine.tlsconfig import TLSPolicy, parse_insecure_registry
from tests.unit.fakes import TablePools

REGISTRY = parse_registry("reg.example:5000")
CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg.example"'
DIGEST = "sha256:" + "a" * 64


def ping_401(_):
    return 401, {"WWW-Authenticate": CHALLENGE}, b""


def token_ok(request):
    scopes = request["query"].get("scope", [])
    return 200, {}, json.dumps({"token": "tok:" + ",".join(sorted(scopes)), "expires_in": 300}).encode()


def head_ok(request):
    if not request["headers"].get("Authorization", "").startswith("Bearer tok:"):
        return 401, {"WWW-Authenticate": CHALLENGE}, b""
    return 200, {"Docker-Content-Digest": DIGEST, "Content-Type": DOCKER_MANIFEST}, b""


class Keychain:
    def __init__(self, credentials):
        self.credentials = credentials

    def resolve(self, registry, repository):
        return self.credentials.get(repository)


class Layers:
    """The layered client as a scan builds it, with the calls the tests make."""

    def __init__(self, pools, repositories, keychain):
        self.layers = layered(REGISTRY, pools=pools, repositories=repositories, clock=FakeClock(),
                              keychain=keychain, backoff=Backoff(jitter=lambda cap: 0.0))
        self.stats = self.layers.stats
        self.handshake = self.layers.auth.prime
        self.head_manifest = self.layers.client.head_manifest
        self.index_children = self.layers.client.index_children


def client(pools, repositories=("a", "b"), keychain=None):
    return Layers(pools, repositories, keychain or Keychain({}))


def test_one_ping_and_one_combined_token_serve_every_planned_repository():
    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    c = client(pools, repositories=("a", "b", "c"))
    for repo in ("a", "b", "c"):
        assert c.head_manifest(repo, "latest").digest == DIGEST
    assert c.stats.requests == {"ping": 1, "token": 1, "head": 3, "get": 0}
    (token_request,) = pools.kinds("GET", "/token")
    assert token_request["query"]["scope"] == ["repository:a:pull", "repository:b:pull", "repository:c:pull"]
    assert token_request["query"]["service"] == ["reg.example"]


def test_repositories_with_different_credentials_get_different_tokens():
    alice = Credential(username="alice", password="pw-a", source="test")
    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    c = client(pools, repositories=("pub", "team/x", "team/y"), keychain=Keychain({"team/x": alice, "team/y": alice}))
    for repo in ("pub", "team/x", "team/y"):
        c.head_manifest(repo, "1")
    tokens = pools.kinds("GET", "/token")
    assert len(tokens) == 2
    with_auth = [t for t in tokens if "Authorization" in t["headers"]]
    assert [t["query"]["scope"] for t in with_auth] == [["repository:team/x:pull", "repository:team/y:pull"]]


def test_a_token_server_that_grants_only_one_scope_falls_back_to_one_token_per_repository():
    def first_scope_only(request):
        return 200, {}, json.dumps({"token": "tok:" + request["query"]["scope"][0]}).encode()

    def head(request):
        repo = request["path"].split("/")[2]
        if request["headers"].get("Authorization") != f"Bearer tok:repository:{repo}:pull":
            return 401, {"WWW-Authenticate": CHALLENGE + f',scope="repository:{repo}:pull"'}, b""
        return 200, {"Docker-Content-Digest": DIGEST}, b""

    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", first_scope_only), ("HEAD", "/v2/", head)])
    c = client(pools)
    assert c.head_manifest("a", "t").digest == DIGEST
    assert c.head_manifest("b", "t").digest == DIGEST
    # a: the combined token happens to work; b: refused, then its own token
    assert c.stats.requests["token"] == 2


def test_a_head_without_digest_falls_back_to_get_and_hashes_the_body():
    body = b'{"schemaVersion": 2}'
    pools = TablePools([("GET", "/v2/a/manifests", lambda r: (200, {"Content-Type": DOCKER_MANIFEST}, body)),
                        ("GET", "/v2/", lambda r: (200, {}, b"")),
                        ("HEAD", "/v2/", lambda r: (200, {}, b""))])
    descriptor = client(pools).head_manifest("a", "latest")
    assert descriptor.digest == "sha256:" + hashlib.sha256(body).hexdigest()


def test_the_accept_list_asks_for_indexes_first():
    pools = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")),
                        ("HEAD", "/v2/", lambda r: (200, {"Docker-Content-Digest": DIGEST}, b""))])
    client(pools).head_manifest("a", "latest")
    accept = pools.kinds("HEAD")[0]["headers"]["Accept"]
    assert accept.split(", ")[:2] == [OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"]


@pytest.mark.parametrize("status, error", [(404, NotFoundError), (401, UnauthorizedError),
                                           (403, UnauthorizedError), (400, RegistryError)])
def test_statuses_map_to_error_classes_that_name_registry_and_repository(status, error):
    pools = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", lambda r: (status, {}, b""))])
    with pytest.raises(error) as caught:
        client(pools).head_manifest("team/app", "1.0")
    assert caught.value.status == status
    assert caught.value.registry == "reg.example:5000" and caught.value.repository == "team/app"
    assert "reg.example:5000/team/app:1.0" in str(caught.value)


def test_server_errors_are_retried_then_reported():
    answers = iter([(503, {}, b""), (200, {"Docker-Content-Digest": DIGEST}, b"")])
    pools = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", lambda r: next(answers))])
    assert client(pools).head_manifest("a", "1").digest == DIGEST
    always = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", lambda r: (502, {}, b""))])
    with pytest.raises(RegistryError) as caught:
        client(always).head_manifest("a", "1")
    assert caught.value.status == 502 and len(always.kinds("HEAD")) == 3


def test_rate_limit_without_retry_after_is_reported_at_once():
    pools = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")),
                        ("HEAD", "/v2/", lambda r: (429, {"ratelimit-remaining": "0;w=21600"}, b""))])
    c = client(pools)
    with pytest.raises(RateLimitedError):
        c.head_manifest("a", "1")
    assert len(pools.kinds("HEAD")) == 1
    assert c.stats.rate_limit == {"ratelimit-remaining": "0;w=21600"}


def test_credentials_are_not_sent_to_a_plain_http_realm():
    challenge = 'Bearer realm="http://auth.example/token",service="s"'
    pools = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": challenge}, b""))])
    alice = Credential(username="alice", password="pw", source="t")
    with pytest.raises(UnauthorizedError) as caught:
        client(pools, keychain=Keychain({"a": alice})).head_manifest("a", "1")
    assert "plain http" in str(caught.value)
    assert not pools.kinds("GET", "/token")


def test_a_realm_on_an_internal_address_is_refused():
    challenge = 'Bearer realm="https://169.254.169.254/latest/meta-data",service="s"'
    pools = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": challenge}, b""))])
    with pytest.raises(UnauthorizedError, match="internal address"):
        client(pools).head_manifest("a", "1")
    assert len(pools.requests) == 1


def test_basic_challenge_sends_the_repository_credential():
    alice = Credential(username="alice", password="pw", source="t")
    pools = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")),
                        ("HEAD", "/v2/", lambda r: (200, {"Docker-Content-Digest": DIGEST}, b""))])
    client(pools, keychain=Keychain({"a": alice})).head_manifest("a", "1")
    assert pools.kinds("HEAD")[0]["headers"]["Authorization"] == "Basic YWxpY2U6cHc="


def test_index_children_lists_platform_digests():
    child = "sha256:" + "b" * 64
    index = json.dumps({"mediaType": OCI_INDEX, "manifests": [{"digest": child}, {"digest": DIGEST}]}).encode()
    pools = TablePools([("GET", "/v2/a/", lambda r: (200, {"Content-Type": OCI_INDEX}, index)),
                        ("GET", "/v2/", lambda r: (200, {}, b""))])
    assert client(pools).index_children("a", DIGEST) == {child, DIGEST}


def test_scope_chunks_keep_urls_short():
    chunks = scope_chunks(f"team/repository-number-{i:04d}" for i in range(300))
    assert sum(len(c) for c in chunks) == 300 and len(chunks) > 1
    assert all(len(c) <= MAX_SCOPES_PER_TOKEN and sum(len(s) + 7 for s in c) <= MAX_SCOPE_CHARS + 60 for c in chunks)
    assert chunks == scope_chunks(reversed([f"team/repository-number-{i:04d}" for i in range(300)]))


def test_a_registry_that_refuses_a_large_combined_token_gets_a_single_repository_one():
    def head(request):
        if request["headers"]["Authorization"].count("repository:") > 1:
            return 431, {}, b""  # request header fields too large
        return 200, {"Docker-Content-Digest": DIGEST}, b""

    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head)])
    assert client(pools, repositories=("a", "b")).head_manifest("a", "1").digest == DIGEST
    assert [t["query"]["scope"] for t in pools.kinds("GET", "/token")] == [
        ["repository:a:pull", "repository:b:pull"], ["repository:a:pull"]]


def test_a_handshake_readies_the_ping_and_every_planned_token_and_opens_connections_beside_them():
    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    c = client(pools, repositories=("a", "b", "c"))
    c.handshake(connections=4)
    assert [r["path"] for r in pools.requests] == ["/v2/", "/token"]
    assert pools.opened == [("https://reg.example:5000", 3)]  # the ping's own connection is the fourth
    for repo in ("a", "b", "c"):
        c.head_manifest(repo, "1")
    assert c.stats.requests == {"ping": 1, "token": 1, "head": 3, "get": 0}


def test_a_failed_handshake_is_reported_by_every_lookup_without_asking_again():
    pools = TablePools([("GET", "/v2/", lambda r: (503, {}, b""))])
    c = client(pools)
    c.handshake(connections=2)  # remembered, not raised
    pings = len(pools.kinds("GET", "/v2/"))
    assert pings == 3  # retried as any temporary failure
    for repo in ("a", "b"):
        with pytest.raises(RegistryError) as caught:
            c.head_manifest(repo, "1")
        assert caught.value.status == 503
    assert len(pools.requests) == pings


def test_a_token_refused_during_the_handshake_is_reported_by_its_lookups_without_asking_again():
    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", lambda r: (403, {}, b"denied"))])
    c = client(pools, repositories=("a", "b"))
    c.handshake(connections=2)
    for repo in ("a", "b"):
        with pytest.raises(RegistryError):
            c.head_manifest(repo, "1")
    assert len(pools.kinds("GET", "/token")) == 1 and not pools.kinds("HEAD")


def test_an_insecure_registry_opens_its_connections_once_the_ping_found_its_scheme():
    def ping(request):
        if request["url"].startswith("https:"):
            raise TLSError("ping reg.example:5000: TLS failed (wrong version number)")
        return 200, {}, b""

    pools = TablePools([("GET", "/v2/", ping)], tls=TLSPolicy(insecure=(parse_insecure_registry("reg.example:5000"),)))
    client(pools).handshake(connections=3)
    assert [r["url"] for r in pools.requests] == ["https://reg.example:5000/v2/", "http://reg.example:5000/v2/"]
    assert pools.opened == [("http://reg.example:5000", 2)]


def test_a_lone_lookup_opens_no_connection_beside_the_ping():
    pools = TablePools([("GET", "/v2/", lambda r: (200, {}, b""))])
    client(pools, repositories=("a",)).handshake(connections=1)
    assert pools.opened == []


def test_a_handshake_fetches_every_token_its_repositories_need_and_no_lookup_fetches_another():
    alice = Credential(username="alice", password="pw-a", source="test")
    many = [f"pub/r{i:03d}" for i in range(MAX_SCOPES_PER_TOKEN + 20)]  # two chunks for the anonymous scopes
    pools = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    c = client(pools, repositories=(*many, "team/x"), keychain=Keychain({"team/x": alice}))
    c.handshake(connections=8)
    tokens = pools.kinds("GET", "/token")
    assert sorted(len(t["query"]["scope"]) for t in tokens) == [1, 20, MAX_SCOPES_PER_TOKEN]
    assert [t["query"]["scope"] for t in tokens if "Authorization" in t["headers"]] == [["repository:team/x:pull"]]
    for repo in (*many, "team/x"):
        c.head_manifest(repo, "1")
    assert len(pools.kinds("GET", "/token")) == 3


def test_a_registry_with_nothing_planned_is_only_pinged():
    pools = TablePools([("GET", "/v2/", ping_401)])
    client(pools, repositories=()).handshake(connections=1)
    assert [r["path"] for r in pools.requests] == ["/v2/"]
