"""engine.authn: config.json lookup order, auth decoding, the credential helper protocol."""
from __future__ import annotations

import base64
import functools
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.authn import (
    ANONYMOUS_KEYCHAIN,
    Credential,
    DockerConfigKeychain,
    default_config_dir,
    run_credential_helper,
)
from engine.errors import ConfigurationError
from engine.name import Registry, parse_registry
from tests.unit.overlap import Held, overlapping

HUB = Registry("docker.io")
REG = Registry("registry.example.com")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def entry(user: str, password: str = "pw") -> dict:
    return {"auth": b64(f"{user}:{password}")}


def username(keychain, registry=REG, repository="team/app"):
    found = keychain.resolve(registry, repository)
    return None if found is None else found.username


class FakeHelpers:
    """A helper runner answering from a table: {(helper, server): Credential | None | Exception}."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, helper, server):
        self.calls.append((helper, server))
        answer = self.answers.get((helper, server))
        if isinstance(answer, Exception):
            raise answer
        return answer


def must_not_run(helper, server):
    raise AssertionError(f"helper {helper} was not expected to run for {server}")


# --- auths lookup ------------------------------------------------------------------

AUTHS_CASES = [
    # keys, registry, repository, expected username
    ({"registry.example.com": entry("bare")}, REG, "team/app", "bare"),
    ({"https://registry.example.com": entry("https")}, REG, "team/app", "https"),
    ({"http://registry.example.com": entry("http")}, REG, "team/app", "http"),
    ({"https://registry.example.com/v1/": entry("v1")}, REG, "team/app", "v1"),
    ({"https://registry.example.com/v2/": entry("v2")}, REG, "team/app", "v2"),
    ({"Registry.Example.COM": entry("case")}, REG, "team/app", "case"),
    ({"registry.example.com:5000": entry("port")}, REG, "team/app", None),
    ({"other.example.com": entry("other")}, REG, "team/app", None),
    # repository prefixes: longest wins, and only at a path boundary
    ({"registry.example.com": entry("host"), "registry.example.com/team": entry("team")}, REG, "team/app", "team"),
    ({"registry.example.com/team": entry("team")}, REG, "team/sub/app", "team"),
    ({"registry.example.com/team": entry("team")}, REG, "team", "team"),
    ({"registry.example.com/team": entry("team")}, REG, "teamx/app", None),
    ({"other.example.com/team": entry("other")}, REG, "team/app", None),
    ({"registry.example.com/team": entry("team"), "registry.example.com": entry("host")}, REG, "teamx/app", "host"),
    ({"registry.example.com/team": entry("team"), "registry.example.com/team/sub": entry("sub")},
     REG, "team/sub/app", "sub"),
    ({"registry.example.com/team/": entry("slash")}, REG, "team/app", "slash"),
    # host-level spellings of one registry: the stored key, then bare, https, http, legacy
    ({"https://registry.example.com": entry("https"), "registry.example.com": entry("bare")}, REG, "a/b", "bare"),
    ({"http://registry.example.com": entry("http"), "https://registry.example.com": entry("https")},
     REG, "a/b", "https"),
    ({"https://registry.example.com/v1/": entry("v1"), "http://registry.example.com": entry("http")},
     REG, "a/b", "http"),
    # an empty placeholder (written when a credsStore holds the secret) is no credential
    ({"registry.example.com": {}}, REG, "a/b", None),
    ({"registry.example.com/team": {}, "registry.example.com": entry("host")}, REG, "team/app", "host"),
    # keys that cannot name a registry are ignored
    ({"not a host": entry("x"), "registry.example.com": entry("ok")}, REG, "a/b", "ok"),
    # Docker Hub under each of its names
    ({"https://index.docker.io/v1/": entry("legacy")}, HUB, "library/nginx", "legacy"),
    ({"index.docker.io": entry("index")}, HUB, "library/nginx", "index"),
    ({"docker.io": entry("docker")}, HUB, "library/nginx", "docker"),
    ({"registry-1.docker.io": entry("reg1")}, HUB, "library/nginx", "reg1"),
    ({"docker.io": entry("docker"), "https://index.docker.io/v1/": entry("legacy")}, HUB, "user/app", "legacy"),
    ({"docker.io/user": entry("user"), "https://index.docker.io/v1/": entry("legacy")}, HUB, "user/app", "user"),
    ({"https://index.docker.io/v1/": entry("hub")}, REG, "a/b", None),
    # IPv6 and ports
    ({"[::1]:5000": entry("v6")}, parse_registry("[::1]:5000"), "app", "v6"),
    ({"https://localhost:5000": entry("local")}, Registry("localhost:5000"), "app", "local"),
]


@pytest.mark.parametrize("auths, registry, repository, expected", AUTHS_CASES)
def test_auths_lookup(auths, registry, repository, expected):
    keychain = DockerConfigKeychain.from_mapping({"auths": auths}, helper_runner=must_not_run)
    assert username(keychain, registry, repository) == expected


def test_credential_from_auths_carries_its_source_and_secret():
    keychain = DockerConfigKeychain.from_mapping(
        {"auths": {"registry.example.com/team": entry("u", "p")}}, source_name="config.json")
    assert keychain.resolve(REG, "team/app") == Credential(
        "u", "p", source='config.json auths["registry.example.com/team"]')


def test_username_password_and_identity_token_fields():
    keychain = DockerConfigKeychain.from_mapping({"auths": {
        "a.example.com": {"username": "u", "password": "p"},
        "b.example.com": {"identitytoken": "tok", "auth": b64("u:p")},
    }})
    a = keychain.resolve(Registry("a.example.com"), "x")
    b = keychain.resolve(Registry("b.example.com"), "x")
    assert (a.username, a.password, a.identity_token) == ("u", "p", "")
    assert (b.username, b.password, b.identity_token) == ("u", "p", "tok")


def test_auth_field_wins_over_username_and_password():
    keychain = DockerConfigKeychain.from_mapping(
        {"auths": {"registry.example.com": {"auth": b64("a:b"), "username": "u", "password": "p"}}})
    assert keychain.resolve(REG, "x") == Credential("a", "b", source='config.json auths["registry.example.com"]')


@pytest.mark.parametrize("auth, expected", [
    (b64("user:pass"), ("user", "pass")),
    (b64("user:pa:ss:"), ("user", "pa:ss:")),
    (b64("user:"), ("user", "")),
    (b64("user:pass\x00\x00"), ("user", "pass")),
    (b64("üser:pässword"), ("üser", "pässword")),
    (b64("user:passw").rstrip("="), ("user", "passw")),           # padding left out
    (b64("user:" + "p" * 80)[:40] + "\n" + b64("user:" + "p" * 80)[40:], ("user", "p" * 80)),
])
def test_auth_decoding(auth, expected):
    keychain = DockerConfigKeychain.from_mapping({"auths": {"registry.example.com": {"auth": auth}}})
    found = keychain.resolve(REG, "x")
    assert (found.username, found.password) == expected


@pytest.mark.parametrize("auth, why", [
    ("not base64!", "not base64"),
    ("YWJj=d", "not base64"),
    ("abcde", "not base64"),
    ("äbc", "not base64"),
    (base64.b64encode(b"\xff\xfe:x").decode(), "not base64 of UTF-8"),
    (b64("nocolon"), "does not decode"),
    (b64(":password"), "does not decode"),
])
def test_bad_auth_names_the_key_but_not_the_value(auth, why):
    with pytest.raises(ConfigurationError) as info:
        DockerConfigKeychain.from_mapping({"auths": {"registry.example.com": {"auth": auth}}})
    message = str(info.value)
    assert why in message and 'auths["registry.example.com"].auth' in message
    assert auth not in message


@pytest.mark.parametrize("data, why", [
    ([], "not a JSON object"),
    ({"auths": []}, "auths is not an object"),
    ({"auths": {"r": "x"}}, 'auths["r"] is not an object'),
    ({"auths": {"r": {"password": 5}}}, 'auths["r"].password is not a string'),
    ({"auths": {1: {}}}, "not a string"),
    ({"credHelpers": "x"}, "credHelpers is not an object"),
    ({"credHelpers": {"r": ["x"]}}, 'credHelpers["r"] is not a string'),
    ({"credsStore": 1}, "credsStore is not a string"),
])
def test_malformed_config_is_a_configuration_error(data, why):
    with pytest.raises(ConfigurationError, match="^load docker config ") as info:
        DockerConfigKeychain.from_mapping(data)
    assert why in str(info.value)


def test_null_and_unknown_fields_read_as_absent():
    keychain = DockerConfigKeychain.from_mapping({
        "auths": {"registry.example.com": {"auth": None, "username": "u", "password": "p", "email": "e"}},
        "credHelpers": None, "credsStore": None, "psFormat": "table", "proxies": {}})
    assert username(keychain) == "u"


# --- credHelpers and credsStore ---------------------------------------------------------

def test_cred_helper_answer_is_final():
    helpers = FakeHelpers({("ecr", "registry.example.com"): None})
    keychain = DockerConfigKeychain.from_mapping(
        {"credHelpers": {"registry.example.com": "ecr"}, "credsStore": "desktop",
         "auths": {"registry.example.com": entry("file")}}, helper_runner=helpers)
    assert keychain.resolve(REG, "a") is None
    assert helpers.calls == [("ecr", "registry.example.com")]


def test_cred_helper_is_asked_with_the_credential_key():
    helpers = FakeHelpers({("desktop", "https://index.docker.io/v1/"): Credential("hub", "pw")})
    keychain = DockerConfigKeychain.from_mapping(
        {"credHelpers": {"docker.io": "desktop"}}, helper_runner=helpers)
    assert keychain.resolve(HUB, "library/nginx") == Credential("hub", "pw")


def test_cred_helper_for_another_registry_is_not_used():
    keychain = DockerConfigKeychain.from_mapping(
        {"credHelpers": {"other.example.com": "ecr"}, "auths": {"registry.example.com": entry("file")}},
        helper_runner=must_not_run)
    assert username(keychain) == "file"


def test_cred_helper_keys_with_a_path_or_empty_name_are_not_helpers():
    keychain = DockerConfigKeychain.from_mapping(
        {"credHelpers": {"registry.example.com/team": "x", "registry.example.com": ""},
         "auths": {"registry.example.com": entry("file")}}, helper_runner=must_not_run)
    assert username(keychain) == "file"


def test_creds_store_comes_before_auths():
    helpers = FakeHelpers({("desktop", "registry.example.com"): Credential("store", "pw")})
    keychain = DockerConfigKeychain.from_mapping(
        {"credsStore": "desktop", "auths": {"registry.example.com": entry("file")}}, helper_runner=helpers)
    assert username(keychain) == "store"


def test_creds_store_without_an_answer_is_anonymous_as_in_docker():
    # docker's native store overwrites what auths holds with the store's (empty) answer
    keychain = DockerConfigKeychain.from_mapping(
        {"credsStore": "desktop", "auths": {"registry.example.com": entry("file")}},
        helper_runner=FakeHelpers({}))
    assert username(keychain) is None


def test_helper_answers_are_remembered_per_helper_and_server():
    helpers = FakeHelpers({("s", "registry.example.com"): Credential("u", "p")})
    keychain = DockerConfigKeychain.from_mapping({"credsStore": "s"}, helper_runner=helpers)
    for repository in ("a", "b", "c"):
        keychain.resolve(REG, repository)
    keychain.resolve(HUB, "library/nginx")
    assert helpers.calls == [("s", "registry.example.com"), ("s", "https://index.docker.io/v1/")]


def test_helper_failure_is_remembered_and_raised_again():
    helpers = FakeHelpers({("s", "registry.example.com"): ConfigurationError("run helper: broken")})
    keychain = DockerConfigKeychain.from_mapping({"credsStore": "s"}, helper_runner=helpers)
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="broken"):
            keychain.resolve(REG, "a")
    assert len(helpers.calls) == 1


def test_concurrent_resolves_run_a_helper_once():
    helper = Held(lambda: Credential("u", "p"))
    keychain = DockerConfigKeychain.from_mapping({"credsStore": "s"}, helper_runner=helper)
    results = overlapping(keychain._answers, ("s", "registry.example.com"), helper,
                          lambda: keychain.resolve(REG, "a"), 8)
    assert helper.calls == 1 and results == [Credential("u", "p")] * 8


def test_concurrent_resolves_share_a_helper_failure():
    def broken():
        raise ConfigurationError("run helper: broken")

    helper = Held(broken)
    keychain = DockerConfigKeychain.from_mapping({"credsStore": "s"}, helper_runner=helper)
    results = overlapping(keychain._answers, ("s", "registry.example.com"), helper,
                          lambda: keychain.resolve(REG, "a"), 8)
    assert helper.calls == 1
    assert all(isinstance(r, ConfigurationError) and "broken" in str(r) for r in results) and len(results) == 8


def test_anonymous_keychain_has_nothing():
    assert ANONYMOUS_KEYCHAIN.resolve(REG, "a") is None


# --- files -------------------------------------------------------------------------------

def test_missing_file_is_an_empty_keychain(tmp_path):
    keychain = DockerConfigKeychain.from_file(tmp_path / "config.json", helper_runner=must_not_run)
    assert keychain.resolve(REG, "a") is None


def test_file_is_read_with_its_path_as_source(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"registry.example.com": entry("u")}}), encoding="utf-8-sig")
    found = DockerConfigKeychain.from_file(path).resolve(REG, "a")
    assert found.source == f'{path} auths["registry.example.com"]'


@pytest.mark.parametrize("content, why", [
    (b'{"auths": {"r": {"password": "hunter2"', "not valid JSON (line 1 column"),
    (b'{"auths": {"r": {"password": "hunter2\xff"}}}', "not UTF-8"),
    (b'["hunter2"]', "not a JSON object"),
])
def test_malformed_file_names_the_file_not_the_content(tmp_path, content, why):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as info:
        DockerConfigKeychain.from_file(path)
    assert str(path) in str(info.value) and why in str(info.value)
    assert "hunter2" not in str(info.value)
    # no chained exception carries the content along either
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_unreadable_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="load docker config .*: Is a directory"):
        DockerConfigKeychain.from_file(tmp_path)


@pytest.mark.parametrize("env, expected", [
    ({"DOCKER_CONFIG": "/etc/docker-cfg"}, Path("/etc/docker-cfg")),
    ({"DOCKER_CONFIG": ""}, Path("/home/u/.docker")),
    ({}, Path("/home/u/.docker")),
])
def test_default_config_dir(env, expected):
    assert default_config_dir(env, Path("/home/u")) == expected


# --- the credential helper protocol ---------------------------------------------------

def completed(returncode=0, stdout=b""):
    def runner(args, **kwargs):
        runner.seen = (args, kwargs)
        return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr=b"")
    return runner


def test_helper_is_run_with_server_on_stdin():
    runner = completed(stdout=b'{"ServerURL": "r", "Username": "u", "Secret": "s"}')
    found = run_credential_helper("ecr-login", "registry.example.com", runner=runner, timeout=3)
    assert found == Credential("u", "s", source='credential helper "ecr-login"')
    args, kwargs = runner.seen
    assert args == ["docker-credential-ecr-login", "get"]
    assert (kwargs["input"], kwargs["timeout"]) == (b"registry.example.com", 3)


def test_token_username_means_identity_token():
    runner = completed(stdout=b'{"Username": "<token>", "Secret": "refresh"}')
    found = run_credential_helper("gcr", "r", runner=runner)
    assert (found.username, found.password, found.identity_token) == ("", "", "refresh")


@pytest.mark.parametrize("returncode, stdout", [
    (1, b"credentials not found in native keychain\n"),
    (0, b'{"Username": "", "Secret": ""}'),
    (0, b'{"Username": "<token>", "Secret": ""}'),
])
def test_helper_without_credentials_gives_none(returncode, stdout):
    assert run_credential_helper("x", "r", runner=completed(returncode, stdout)) is None


SECRET = b"s3cr3t-value"


@pytest.mark.parametrize("runner, why", [
    (completed(1, b"error: " + SECRET), "exited with status 1"),
    (completed(0, b"not json " + SECRET), "malformed answer"),
    (completed(0, b'["' + SECRET + b'"]'), "malformed answer"),
    (completed(0, b'{"Username": 1, "Secret": "' + SECRET + b'"}'), "malformed answer"),
    (completed(0, b"\xff" + SECRET), "malformed answer"),
])
def test_helper_failures_never_quote_the_output(runner, why):
    with pytest.raises(ConfigurationError) as info:
        run_credential_helper("x", "registry.example.com", runner=runner)
    message = str(info.value)
    assert message.startswith('run credential helper "x" for "registry.example.com": ') and why in message
    assert SECRET.decode() not in message


def raising(exc):
    def runner(args, **kwargs):
        raise exc
    return runner


@pytest.mark.parametrize("runner, why", [
    (raising(FileNotFoundError(2, "No such file or directory")), "cannot start docker-credential-x"),
    (raising(PermissionError(13, "Permission denied")), "Permission denied"),
    (raising(subprocess.TimeoutExpired(["x"], 10.0, output=SECRET)), "no answer within 10s"),
])
def test_helper_that_cannot_run_is_a_configuration_error(runner, why):
    with pytest.raises(ConfigurationError) as info:
        run_credential_helper("x", "r", runner=runner)
    assert why in str(info.value)
    if info.value.__cause__ is not None:
        assert SECRET not in repr(vars(info.value.__cause__)).encode()


@pytest.mark.parametrize("name", ["", "../bin/sh", "a/b", "-rf", "x y"])
def test_helper_name_must_be_a_plain_name(name):
    with pytest.raises(ConfigurationError, match="not a valid helper name"):
        run_credential_helper(name, "r", runner=must_not_run)


HELPER_SCRIPT = """#!/bin/sh
server=$(cat)
if [ "$1" = get ] && [ "$server" = registry.example.com ]; then
  printf '{"ServerURL":"%s","Username":"robot","Secret":"from-script"}' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"""


def test_real_helper_executable_found_on_path(tmp_path):
    script = tmp_path / "docker-credential-test"
    script.write_text(HELPER_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    runner = functools.partial(subprocess.run, env={"PATH": path})
    assert run_credential_helper("test", "registry.example.com", runner=runner) == Credential(
        "robot", "from-script", source='credential helper "test"')
    assert run_credential_helper("test", "other.example.com", runner=runner) is None


STORE_SCRIPT = """#!/bin/sh
server=$(cat)
case "$server" in
  registry.example.com) printf '{"ServerURL":"%s","Username":"robot","Secret":"from-store"}' "$server" ;;
  broken.example.com) echo "error getting credentials: keychain locked"; exit 1 ;;
  chatty.example.com) echo "credentials not found in native keychain, try docker login"; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def store_keychain(tmp_path):
    """A keychain whose credsStore is a real helper script on PATH, with a credential in auths too."""
    script = tmp_path / "docker-credential-fake-store"
    script.write_text(STORE_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    runner = functools.partial(run_credential_helper, runner=functools.partial(subprocess.run, env={"PATH": path}))
    return DockerConfigKeychain.from_mapping(
        {"credsStore": "fake-store", "auths": {"other.example.com": entry("file"), "registry.example.com": {}}},
        helper_runner=runner)


def test_a_store_that_holds_the_registry_answers(store_keychain):
    assert username(store_keychain) == "robot"


def test_a_store_that_answers_not_found_means_anonymous_not_an_error(store_keychain):
    assert store_keychain.resolve(Registry("other.example.com"), "team/app") is None  # auths is not consulted


def test_a_store_that_fails_is_a_configuration_error(store_keychain):
    with pytest.raises(ConfigurationError, match='credential helper "fake-store" .* exited with status 1'):
        store_keychain.resolve(Registry("broken.example.com"), "app")


def test_only_the_exact_not_found_message_means_not_found(store_keychain):
    # as docker-credential-helpers' client compares it: anything else from a failed helper is a failure
    with pytest.raises(ConfigurationError, match="exited with status 1"):
        store_keychain.resolve(Registry("chatty.example.com"), "app")


# --- Credential -------------------------------------------------------------------------

def test_credential_repr_hides_secrets():
    credential = Credential("u", "hunter2", "tok-secret", source="s")
    assert "hunter2" not in repr(credential) and "tok-secret" not in str(credential)
    assert "u" in repr(credential)


def test_identity_is_stable_short_and_depends_on_every_part():
    base = Credential("u", "p", "t", "s")
    assert base.identity == Credential("u", "p", "t", "s").identity and len(base.identity) == 32
    others = [Credential("v", "p", "t", "s"), Credential("u", "q", "t", "s"),
              Credential("u", "p", "x", "s"), Credential("u", "p", "t", "z")]
    assert base.identity not in {other.identity for other in others}
    assert "p" * 3 not in Credential("u", "ppp").identity


# --- properties --------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_field = st.sampled_from(["auth", "username", "password", "identitytoken", "email"])
_entry = st.dictionaries(_field, _json | st.text(alphabet="QUJDZGVm=:\n", max_size=12), max_size=4)
_config = st.one_of(
    _json,
    st.fixed_dictionaries({}, optional={
        "auths": _json | st.dictionaries(st.text(max_size=20), _entry | _json, max_size=3),
        "credHelpers": _json | st.dictionaries(st.text(max_size=10), st.text(max_size=5), max_size=2),
        "credsStore": _json,
    }),
)


@settings(max_examples=600, deadline=None)
@given(_config)
def test_any_config_loads_or_raises_configuration_error(data):
    try:
        keychain = DockerConfigKeychain.from_mapping(data, helper_runner=FakeHelpers({}))
    except ConfigurationError:
        return
    keychain.resolve(REG, "team/app")
    keychain.resolve(HUB, "library/nginx")


_secret = st.text(alphabet="abcdefXYZ0123456789:+/=", min_size=6, max_size=16).map(lambda s: "SECRET" + s)
_mangle = st.sampled_from([lambda a: a, lambda a: a + "!", lambda a: a[:-3], lambda a: "*" + a])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_secret, _secret, _mangle, st.sampled_from(["password", "identitytoken"]), st.sampled_from(["", "x:"]))
def test_no_secret_in_errors_or_reprs(password, token, mangle, field, prefix):
    auth = mangle(b64(f"user{prefix}:{password}"))
    secrets = {password, token, auth, b64(f"user{prefix}:{password}")}
    data = {"auths": {"registry.example.com": {"auth": auth, field: token},
                      "other.example.com": {"password": password, "identitytoken": token}}}
    try:
        keychain = DockerConfigKeychain.from_mapping(data)
    except ConfigurationError as exc:
        shown = [str(exc), repr(exc)]
    else:
        shown = [repr(keychain)]
        for registry in (REG, Registry("other.example.com")):
            found = keychain.resolve(registry, "a")
            shown += [repr(found), str(found), found.identity]
    assert not [secret for secret in secrets for text in shown if secret in text]
