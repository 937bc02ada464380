"""The auth layer around a table transport: ping once, Basic, Bearer with one refresh, prime."""
import json
import threading

import pytest

from engine.auth import AuthTransport
from engine.authn import Credential
from engine.clock import FakeClock
from engine.errors import RegistryError, TLSError, UnauthorizedError
from engine.name import parse_registry
from engine.tlsconfig import TLSMode
from engine.transport import Request
from tests.unit.fakes import TablePools
from tests.unit.overlap import Held

REGISTRY = parse_registry("reg.example:5000")
CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg.example"'
ALICE = Credential(username="alice", password="pw-a", source="test")
BOB = Credential(username="bob", password="pw-b", source="test")


class Keychain:
    def __init__(self, credentials=None):
        self.credentials = credentials or {}

    def resolve(self, registry, repository):
        found = self.credentials.get(repository)
        return found() if callable(found) else found


def ping_401(_):
    return 401, {"WWW-Authenticate": CHALLENGE}, b""


def token_ok(request):
    return 200, {}, json.dumps({"token": "tok:" + ",".join(request["query"].get("scope", []))}).encode()


def head_ok(_):
    return 200, {}, b""


def layer(table, repositories=("a", "b"), credentials=None, insecure=False, opened=None):
    mode = TLSMode.INSECURE if insecure else TLSMode.VERIFY
    return AuthTransport(table, REGISTRY, mode=mode, keychain=Keychain(credentials), clock=FakeClock(),
                         repositories=repositories,
                         open_connections=None if opened is None else lambda url, n: opened.append((url, n)))


def head(auth, repository="a"):
    return auth.round_trip(Request("HEAD", f"https://reg.example:5000/v2/{repository}/manifests/1"))


def test_an_open_registry_gets_the_request_as_it_is_after_one_ping():
    table = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", head_ok)])
    auth = layer(table)
    for repository in ("a", "b", "a"):
        assert head(auth, repository).status == 200
    assert [r["method"] for r in table.requests] == ["GET", "HEAD", "HEAD", "HEAD"]
    assert all("Authorization" not in r["headers"] for r in table.requests)


def test_basic_sends_each_repository_its_own_credential():
    table = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")),
                        ("HEAD", "/v2/", head_ok)])
    auth = layer(table, credentials={"a": ALICE, "b": BOB})
    head(auth, "a")
    head(auth, "b")
    assert [r["headers"]["Authorization"] for r in table.kinds("HEAD")] == ["Basic YWxpY2U6cHctYQ==",
                                                                            "Basic Ym9iOnB3LWI="]


def test_bearer_sends_one_combined_token_for_the_planned_repositories():
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    auth = layer(table)
    head(auth, "a")
    head(auth, "b")
    assert len(table.kinds("GET", "/token")) == 1
    assert {r["headers"]["Authorization"] for r in table.kinds("HEAD")} == {
        "Bearer tok:repository:a:pull,repository:b:pull"}


def test_a_401_refreshes_once_with_a_token_for_the_repository_alone():
    heads = iter([401, 200])
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok),
                        ("HEAD", "/v2/", lambda r: (next(heads), {"WWW-Authenticate": CHALLENGE}, b""))])
    assert head(layer(table)).status == 200
    assert [t["query"]["scope"] for t in table.kinds("GET", "/token")] == [
        ["repository:a:pull", "repository:b:pull"], ["repository:a:pull"]]
    assert table.kinds("HEAD")[1]["headers"]["Authorization"] == "Bearer tok:repository:a:pull"


def test_a_second_401_is_the_answer_no_loop():
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok),
                        ("HEAD", "/v2/", lambda r: (401, {"WWW-Authenticate": CHALLENGE}, b""))])
    assert head(layer(table)).status == 401
    assert len(table.kinds("HEAD")) == 2 and len(table.kinds("GET", "/token")) == 2


def test_a_401_without_a_bearer_challenge_is_the_answer_at_once():
    table = TablePools([("GET", "/v2/", lambda r: (200, {}, b"")), ("HEAD", "/v2/", lambda r: (401, {}, b""))])
    assert head(layer(table)).status == 401 and len(table.kinds("HEAD")) == 1


@pytest.mark.parametrize("status", [400, 431])
def test_a_combined_token_refused_as_too_large_falls_back_to_one_repository(status):
    def too_large(request):
        return (status if "," in request["headers"]["Authorization"] else 200), {}, b""

    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", too_large)])
    assert head(layer(table)).status == 200
    assert len(table.kinds("HEAD")) == 2


def test_a_400_to_a_single_repository_token_is_the_answer():
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok),
                        ("HEAD", "/v2/", lambda r: (400, {}, b""))])
    assert head(layer(table, repositories=("a",))).status == 400 and len(table.kinds("HEAD")) == 1


@pytest.mark.parametrize("realm, credentials, message", [
    ("http://auth.example/token", {"a": ALICE}, "plain http"),
    ("https://169.254.169.254/latest", {}, "internal address"),
    ("ftp://auth.example/token", {}, "not an http"),
])
def test_a_realm_that_is_no_place_to_ask_is_refused_before_any_token_request(realm, credentials, message):
    challenge = f'Bearer realm="{realm}",service="s"'
    table = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": challenge}, b""))])
    with pytest.raises(UnauthorizedError, match=message):
        head(layer(table, credentials=credentials))
    assert len(table.requests) == 1


def test_a_failed_ping_is_remembered_for_every_request():
    table = TablePools([("GET", "/v2/", lambda r: (502, {}, b""))])
    auth = layer(table)
    for repository in ("a", "b"):
        with pytest.raises(RegistryError) as caught:
            head(auth, repository)
        assert caught.value.status == 502
    assert len(table.requests) == 1


def test_an_insecure_host_without_tls_is_asked_over_http():
    def ping(request):
        if request["url"].startswith("https:"):
            raise TLSError("ping: TLS failed (wrong version number)")
        return 200, {}, b""

    table = TablePools([("GET", "/v2/", ping), ("HEAD", "/v2/", head_ok)])
    head(layer(table, insecure=True))
    assert table.kinds("HEAD")[0]["url"] == "http://reg.example:5000/v2/a/manifests/1"


def test_requests_to_other_hosts_pass_through_untouched():
    table = TablePools([("GET", "/elsewhere", lambda r: (200, {}, b""))])
    layer(table).round_trip(Request("GET", "https://cdn.example/elsewhere"))
    assert [r["url"] for r in table.requests] == ["https://cdn.example/elsewhere"]


def test_prime_fetches_one_token_per_credential_and_opens_connections_beside_the_ping():
    opened = []
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_ok), ("HEAD", "/v2/", head_ok)])
    auth = layer(table, repositories=("a", "b", "team/x", "team/y"),
                 credentials={"team/x": ALICE, "team/y": ALICE}, opened=opened)
    auth.prime(connections=4)
    assert opened == [("https://reg.example:5000", 3)]
    tokens = table.kinds("GET", "/token")
    assert sorted(t["query"]["scope"] for t in tokens) == [["repository:a:pull", "repository:b:pull"],
                                                          ["repository:team/x:pull", "repository:team/y:pull"]]
    for repository in ("a", "b", "team/x", "team/y"):
        head(auth, repository)
    assert len(table.kinds("GET", "/token")) == 2 and len(table.kinds("GET", "/v2/")) == 1


def test_prime_fetches_several_tokens_side_by_side():
    both_asking = threading.Barrier(2, timeout=5)  # breaks if the second token waited for the first

    def token_when_both_ask(request):
        both_asking.wait()
        return token_ok(request)

    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", token_when_both_ask), ("HEAD", "/v2/", head_ok)])
    auth = layer(table, repositories=("a", "team/x"), credentials={"team/x": ALICE})
    auth.prime()
    for repository in ("a", "team/x"):
        assert head(auth, repository).status == 200
    assert len(table.kinds("GET", "/token")) == 2


def test_prime_never_raises_and_its_failure_is_what_the_lookups_report():
    table = TablePools([("GET", "/v2/", ping_401), ("GET", "/token", lambda r: (403, {}, b""))])
    auth = layer(table)
    auth.prime(connections=2)
    for repository in ("a", "b"):
        with pytest.raises(UnauthorizedError):
            head(auth, repository)
    assert len(table.kinds("GET", "/token")) == 1 and not table.kinds("HEAD")


def test_a_credential_helper_at_work_holds_up_no_other_repository():
    helper = Held(lambda: ALICE)
    table = TablePools([("GET", "/v2/", lambda r: (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")),
                        ("HEAD", "/v2/", head_ok)])
    auth = layer(table, repositories=(), credentials={"slow": helper, "quick": BOB})
    slow = threading.Thread(target=lambda: head(auth, "slow"), daemon=True)
    slow.start()
    assert helper.entered.wait(5)
    assert head(auth, "quick").status == 200  # would hang if a lock spanned the helper
    helper.release.set()
    slow.join(5)
    assert helper.calls == 1 and len(table.kinds("HEAD")) == 2
