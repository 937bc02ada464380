"""The integration stack itself works: each test proves one thing a scan relies on."""
from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
import requests
import urllib3

from tests.stack import DockerDaemon, make_image, pull, run_container, untag
from tests.stack.dockerd import API_VERSION
from tests.stack.procs import pids_with_arg
from tests.stack.tokens import decode_unverified

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(stack):
    """Two public repositories and one private one on the secure registry, tag `1` each."""
    repositories = ("smoke/one", "smoke/two", "private/smoke")
    return {repo: stack.publish(stack.secure, repo, "1", f"smoke-{repo}")[1] for repo in repositories}


@pytest.fixture()
def http(stack):
    pool = urllib3.PoolManager(ca_certs=str(stack.registry_ca), retries=False)
    yield pool
    pool.clear()


def _token(http, stack, scopes, account=None) -> str:
    headers = {}
    if account is not None:
        basic = base64.b64encode(f"{account.username}:{account.password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    query = "&".join([f"service={stack.token_server.service}"] + [f"scope={s}" for s in scopes])
    response = http.request("GET", f"{stack.token_server.realm}?{query}", headers=headers)
    assert response.status == 200, response.data
    return json.loads(response.data)["token"]


def _tags(http, stack, repository, token=None) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request("GET", f"{stack.secure.url}/v2/{repository}/tags/list", headers=headers)


# -- the daemon ---------------------------------------------------------------


def test_daemon_answers_mutual_tls_with_client_cert(stack):
    client = stack.daemon.tls_client()
    try:
        assert client.version()["ApiVersion"] == API_VERSION
    finally:
        client.close()


def test_daemon_refuses_tls_client_without_cert(stack):
    client = stack.daemon.tls_client(client_cert=False)
    try:
        with pytest.raises(requests.exceptions.RequestException):
            client.ping()
    finally:
        client.close()


def test_daemon_logs_each_api_call_for_counting(stack):
    client = stack.daemon.tls_client()
    mark = stack.daemon.mark()
    client.containers(all=True)
    client.close()
    assert [call.method for call in stack.daemon.api_calls_since(mark)] == ["GET"]
    assert stack.daemon.api_calls_since(mark)[0].path.startswith(f"/v{API_VERSION}/containers/json?")


def test_env_points_at_the_tls_endpoint_with_a_cert_dir(stack):
    env = stack.env()
    assert env["DOCKER_HOST"] == stack.daemon.host and env["DOCKER_TLS_VERIFY"] == "1"
    assert {"ca.pem", "cert.pem", "key.pem"} <= {p.name for p in stack.daemon.cert_dir.iterdir()}


# -- images, push and pull -------------------------------------------------------


def test_pushed_then_pulled_image_keeps_its_repo_digest(stack, published):
    client, name = stack.daemon.admin, f"{stack.secure.address}/smoke/one"
    digest = published["smoke/one"]
    assert client.inspect_image(f"{name}:1")["RepoDigests"] == [f"{name}@{digest}"]
    untag(client, f"{name}:1")
    pull(client, name, "1", stack.alice.auth_config())
    assert client.inspect_image(f"{name}:1")["RepoDigests"] == [f"{name}@{digest}"]


def test_variants_give_distinct_digests(published):
    assert len(set(published.values())) == len(published)


def test_push_to_plain_registry_needs_no_credentials(stack):
    _, digest = stack.publish(stack.plain, "smoke/plain", "1", "smoke-plain")  # publish() sends no auth here
    with stack.plain_http() as registry:
        assert registry.digest_of("smoke/plain", "1") == digest


# -- registry and token server ------------------------------------------------------


def test_registry_challenges_with_bearer_realm_of_token_server(stack, published, http):
    response = _tags(http, stack, "smoke/one")
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{stack.token_server.realm}"')
    assert f'service="{stack.token_server.service}"' in challenge


def test_registry_accepts_anonymous_pull_token_for_public_repo(stack, published, http):
    token = _token(http, stack, ["repository:smoke/one:pull"])
    assert _tags(http, stack, "smoke/one", token).status == 200


def test_combined_scope_token_works_for_both_repositories(stack, published, http):
    mark = stack.token_server.mark()
    token = _token(http, stack, ["repository:smoke/one:pull", "repository:smoke/two:pull"], stack.alice)
    assert _tags(http, stack, "smoke/one", token).status == 200
    assert _tags(http, stack, "smoke/two", token).status == 200
    [request] = stack.token_server.requests_since(mark)
    assert request == ("GET", ("repository:smoke/one:pull", "repository:smoke/two:pull"), "alice", 200)


def test_token_server_can_refuse_combined_scopes(stack, published, http):
    with stack.token_server.overridden(grant_combined=False):
        token = _token(http, stack, ["repository:smoke/one:pull", "repository:smoke/two:pull"])
    assert [a["name"] for a in decode_unverified(token)[1]["access"]] == ["smoke/one"]
    assert _tags(http, stack, "smoke/two", token).status == 401


def test_private_repo_refuses_anonymous_pull(stack, published, http):
    token = _token(http, stack, ["repository:private/smoke:pull"])
    response = _tags(http, stack, "private/smoke", token)
    assert response.status == 401
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_private_repo_admits_alice(stack, published, http):
    token = _token(http, stack, ["repository:private/smoke:pull"], stack.alice)
    assert _tags(http, stack, "private/smoke", token).status == 200


def test_token_server_rejects_wrong_password(stack, http):
    basic = base64.b64encode(b"alice:wrong").decode()
    response = http.request("GET", f"{stack.token_server.realm}?scope=repository:smoke/one:pull",
                            headers={"Authorization": f"Basic {basic}"})
    assert response.status == 401


def test_registry_log_counts_requests(stack, published, http):
    mark = stack.secure.mark()
    _tags(http, stack, "smoke/one")
    assert stack.secure.requests_since(mark) == [("GET", "/v2/smoke/one/tags/list", 401)]


# -- the demo fleet -------------------------------------------------------------


def test_demo_fleet_names_every_container_on_the_daemon(stack, demo_fleet):
    names = {c["Names"][0].lstrip("/") for c in stack.daemon.admin.containers(all=True)}
    assert set(demo_fleet) <= names


def test_demo_fleet_registry_state_matches_expectations(stack, demo_fleet):
    client, address = stack.daemon.admin, stack.secure.address

    def local_digest(container):
        image = client.inspect_image(client.inspect_container(container)["Image"])
        return image["RepoDigests"][0].split("@", 1)[1]

    with stack.secure_http() as registry:
        assert registry.digest_of("demo/web", "1") == local_digest("web-1")
        assert registry.digest_of("demo/stale", "1") != local_digest("stale")
        assert registry.digest_of("demo/gone", "1") is None
        _, index = registry.get_manifest("demo/multi", "multi")
    assert local_digest("multi") in {m["digest"] for m in json.loads(index)["manifests"]}
    assert client.inspect_container("stopped")["State"]["Status"] == "created"
    assert client.inspect_container("pinned")["Config"]["Image"].startswith(f"{address}/demo/pinned@sha256:")


# -- stopping leaves nothing behind ---------------------------------------------------


def test_daemon_stop_leaves_no_process_cgroup_or_dir(stack, tmp_path):
    daemon = DockerDaemon(tmp_path / "lone", stack.pki).start()
    try:
        runtime_dir, name = daemon.runtime_dir, daemon.name
        image = f"lone/{secrets.token_hex(3)}"
        make_image(daemon.admin, image, "1", "lone")
        run_container(daemon.admin, "lone", f"{image}:1")
    finally:
        daemon.stop()
    assert pids_with_arg(str(runtime_dir)) == []
    assert pids_with_arg(f"\0-namespace\0{name}\0") == []
    assert not runtime_dir.exists() and not (tmp_path / "lone" / "data").exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{name}"))


def test_token_server_oauth_password_grant_then_refresh(stack, published, http):
    form = {"grant_type": "password", "username": stack.alice.username, "password": stack.alice.password,
            "service": stack.token_server.service, "scope": "repository:private/smoke:pull",
            "client_id": "spyglass-tests", "access_type": "offline"}
    first = json.loads(http.request_encode_body("POST", stack.token_server.realm, fields=form,
                                                encode_multipart=False).data)
    refreshed = http.request_encode_body("POST", stack.token_server.realm, encode_multipart=False, fields={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "service": stack.token_server.service, "scope": "repository:private/smoke:pull"})
    assert refreshed.status == 200
    assert _tags(http, stack, "private/smoke", json.loads(refreshed.data)["access_token"]).status == 200


def test_token_response_can_omit_expires_in(stack, http):
    with stack.token_server.overridden(expires_in=None):
        response = http.request("GET", f"{stack.token_server.realm}?scope=repository:smoke/one:pull")
    body = json.loads(response.data)
    assert "expires_in" not in body and {"token", "access_token", "issued_at"} <= set(body)


def test_daemon_login_is_answered_by_the_token_server(stack, tmp_path):
    # dockerd 20.10 logs in with GET + Basic (offline_token=true), not the OAuth2 POST.
    mark = stack.token_server.mark()
    answer = stack.daemon.admin.login(stack.alice.username, stack.alice.password, registry=stack.secure.address,
                                      dockercfg_path=str(tmp_path / "config.json"))
    assert answer["Status"] == "Login Succeeded"
    assert [(r.method, r.username, r.status) for r in stack.token_server.requests_since(mark)] == [
        ("GET", "alice", 200)]
