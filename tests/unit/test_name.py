"""engine.name: the distribution reference grammar, docker's normalisation, printing."""
from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidReferenceError
from engine.name import (
    DOCKER_HUB,
    DOCKER_HUB_CREDENTIAL_KEY,
    DOCKER_HUB_HOST,
    Reference,
    Registry,
    parse_reference,
    parse_registry,
    parse_repo_digest,
)

D256 = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "fedcba9876543210" * 8
D384 = "sha384:" + "a1" * 48

# input -> (registry, repository, tag, digest)
VALID = [
    ("nginx", ("docker.io", "library/nginx", "latest", None)),
    ("nginx:1.25", ("docker.io", "library/nginx", "1.25", None)),
    ("user/app", ("docker.io", "user/app", "latest", None)),
    ("user/app:v1_2.3-rc", ("docker.io", "user/app", "v1_2.3-rc", None)),
    ("library/nginx", ("docker.io", "library/nginx", "latest", None)),
    ("docker.io/nginx", ("docker.io", "library/nginx", "latest", None)),
    ("docker.io/library/nginx:latest", ("docker.io", "library/nginx", "latest", None)),
    ("index.docker.io/nginx", ("docker.io", "library/nginx", "latest", None)),
    ("registry-1.docker.io/user/app:2", ("docker.io", "user/app", "2", None)),
    ("INDEX.DOCKER.IO/user/app", ("docker.io", "user/app", "latest", None)),
    ("docker.io/a/b/c", ("docker.io", "a/b/c", "latest", None)),
    ("localhost/app", ("localhost", "app", "latest", None)),
    ("localhost:5000/app", ("localhost:5000", "app", "latest", None)),
    ("LOCALHOST:5000/app:X", ("localhost:5000", "app", "X", None)),
    ("localhost", ("docker.io", "library/localhost", "latest", None)),
    ("localhost:5000", ("docker.io", "library/localhost", "5000", None)),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000", "app", "latest", None)),
    ("10.0.0.1/team/app:3", ("10.0.0.1", "team/app", "3", None)),
    ("[::1]:5000/app", ("[::1]:5000", "app", "latest", None)),
    ("[::1]/app", ("[::1]", "app", "latest", None)),
    ("[2001:DB8::1]:443/x/y:z", ("[2001:db8::1]:443", "x/y", "z", None)),
    ("Registry.Example.com/team/app", ("registry.example.com", "team/app", "latest", None)),
    ("reg-1.example.com:8443/a.b/c__d/e-f--g:1", ("reg-1.example.com:8443", "a.b/c__d/e-f--g", "1", None)),
    ("ghcr.io/o/r:" + "t" * 128, ("ghcr.io", "o/r", "t" * 128, None)),
    ("a:_x", ("docker.io", "library/a", "_x", None)),
    (f"nginx@{D256}", ("docker.io", "library/nginx", None, D256)),
    (f"nginx:1@{D256}", ("docker.io", "library/nginx", "1", D256)),
    (f"host:5000/a/b:1@{D256}", ("host:5000", "a/b", "1", D256)),
    (f"127.0.0.1:5000/app@{D512}", ("127.0.0.1:5000", "app", None, D512)),
    (f"quay.io/x/y@{D384}", ("quay.io", "x/y", None, D384)),
    ("a" * 64 + ":tag", ("docker.io", "library/" + "a" * 64, "tag", None)),
    ("x/" + "a" * 64, ("docker.io", "x/" + "a" * 64, "latest", None)),
]


@pytest.mark.parametrize("text, expected", VALID, ids=[t for t, _ in VALID])
def test_parses_valid_reference(text, expected):
    registry, repository, tag, digest = expected
    assert parse_reference(text) == Reference(Registry(registry), repository, tag, digest)


INVALID = [
    ("", "empty"),
    (" nginx", "whitespace"),
    ("nginx ", "whitespace"),
    ("nginx\n", "whitespace"),
    ("ng inx", "invalid repository"),
    ("Nginx", "lowercase"),
    ("user/App", "lowercase"),
    ("Foo/bar", "needs a '.'"),            # read as host "Foo"; lower-cased it would mean Hub
    ("nginx:", "invalid tag"),
    ("nginx:.x", "invalid tag"),
    ("nginx:-x", "invalid tag"),
    ("nginx:" + "t" * 129, "invalid tag"),
    ("nginx:a:b", "invalid repository"),
    ("nginx@", "invalid digest"),
    ("nginx@sha256:abc", "64 lowercase hex"),
    ("nginx@sha256:" + "A" * 64, "64 lowercase hex"),
    ("nginx@sha256:" + "a" * 65, "64 lowercase hex"),
    ("nginx@sha512:" + "a" * 64, "128 lowercase hex"),
    ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("nginx@sha256:" + "a" * 64 + "@x", "64 lowercase hex"),
    ("nginx@@sha256", "invalid digest"),
    ("a" * 64, "image ID"),
    ("/nginx", "invalid repository"),
    ("nginx/", "invalid repository"),
    ("a//b", "invalid repository"),
    ("a/.b", "invalid repository"),
    ("a/b_", "invalid repository"),
    ("a/b___c", "invalid repository"),
    ("a/b..c", "invalid repository"),
    ("-host.com/a", "invalid registry host"),
    ("host-.com/a", "invalid registry host"),
    ("ho_st.com/a", "invalid registry host"),
    ("host..com/a", "invalid registry host"),
    (":5000/a", "invalid registry host"),
    ("hösт.com/a", "invalid registry host"),
    ("host.com:/a", "invalid registry port"),
    ("host.com:0/a", "invalid registry port"),
    ("host.com:65536/a", "invalid registry port"),
    ("host.com:50x/a", "invalid registry port"),
    ("host.com:５０/a", "invalid registry port"),  # fullwidth digits are not a port
    ("[::1/a", "unclosed"),
    ("[]:5000/a", "invalid IPv6"),
    ("[::g]:5000/a", "invalid IPv6"),
    ("[1:2:3]/a", "invalid IPv6"),
    ("[fe80::1%eth0]/a", "invalid IPv6"),
    ("[::1]x/a", "invalid registry port"),
    ("[::1]:5000", "invalid repository"),
    ("host.com/" + "a" * 256, "repository path longer than 255"),
    ("host.com/" + "/".join(["a" * 127] * 2) + "/b", "repository path longer than 255"),
    ("x" * 1000, "longer than"),
]


@pytest.mark.parametrize("text, why", INVALID, ids=[repr(t[:30]) for t, _ in INVALID])
def test_rejects_invalid_reference(text, why):
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert why in str(info.value)


LONG_DOMAIN = ".".join(["d" * 60] * 4) + ".com:5000"  # 252 characters, no limit of its own in the grammar


@pytest.mark.parametrize("text, repository", [
    (f"{LONG_DOMAIN}/app:1", "app"),  # 256 with the domain: the limit is the path's alone
    (f"{LONG_DOMAIN}/{'a' * 255}", "a" * 255),
    ("host.com/" + "a" * 255, "a" * 255),
    ("a" * (255 - len("library/")), "library/" + "a" * (255 - len("library/"))),
])
def test_the_length_limit_counts_the_repository_path_only(text, repository):
    assert parse_reference(text).repository == repository


def test_the_path_limit_counts_the_library_prefix_docker_adds():
    with pytest.raises(InvalidReferenceError, match="repository path longer than 255"):
        parse_reference("a" * (255 - len("library/") + 1))


def test_error_message_quotes_and_escapes_the_input():
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("bad\x1b[31m\nname")
    message = str(info.value)
    assert message.startswith('parse reference "bad\\u001b[31m\\nname": ')
    assert "\n" not in message and "\x1b" not in message


def test_error_message_truncates_long_input():
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference("A" * 1000)
    assert '"' + "A" * 100 + '"...' in str(info.value)
    assert len(str(info.value)) < 200


def test_non_string_input_is_an_invalid_reference():
    with pytest.raises(InvalidReferenceError, match="expected a string"):
        parse_reference(None)  # type: ignore[arg-type]


def test_default_tag_is_added_only_without_tag_or_digest():
    assert parse_reference("nginx", default_tag="stable").tag == "stable"
    assert parse_reference("nginx:1", default_tag="stable").tag == "1"
    assert parse_reference(f"nginx@{D256}", default_tag="stable").tag is None


def test_invalid_default_tag_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_reference("nginx", default_tag="not a tag")


FORMS = [
    # input, str(), familiar()
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("user/app:1", "docker.io/user/app:1", "user/app:1"),
    ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    (f"nginx@{D256}", f"docker.io/library/nginx@{D256}", f"nginx@{D256}"),
    (f"host:5000/a/b:1@{D256}", f"host:5000/a/b:1@{D256}", f"host:5000/a/b:1@{D256}"),
    ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
    # shortened, "a.b/c" would name registry a.b, so docker.io stays
    ("docker.io/a.b/c", "docker.io/a.b/c:latest", "docker.io/a.b/c:latest"),
    ("docker.io/a.b", "docker.io/library/a.b:latest", "a.b:latest"),
]


@pytest.mark.parametrize("text, full, short", FORMS)
def test_prints_canonical_and_familiar_forms(text, full, short):
    ref = parse_reference(text)
    assert (str(ref), ref.familiar()) == (full, short)


def test_repository_name_includes_registry():
    assert parse_reference("nginx").repository_name == "docker.io/library/nginx"


@pytest.mark.parametrize("text, pinned, identifier", [
    ("nginx:1", False, "1"),
    (f"nginx@{D256}", True, D256),
    (f"nginx:1@{D256}", True, "1"),
])
def test_pinned_and_manifest_identifier(text, pinned, identifier):
    ref = parse_reference(text)
    assert (ref.pinned, ref.manifest_identifier) == (pinned, identifier)


def test_reference_without_tag_or_digest_cannot_be_built():
    with pytest.raises(ValueError):
        Reference(Registry("docker.io"), "library/nginx")


@pytest.mark.parametrize("name, host, key", [
    (DOCKER_HUB, DOCKER_HUB_HOST, DOCKER_HUB_CREDENTIAL_KEY),
    ("localhost:5000", "localhost:5000", "localhost:5000"),
    ("[::1]:5000", "[::1]:5000", "[::1]:5000"),
])
def test_registry_host_and_credential_key(name, host, key):
    assert (Registry(name).host, Registry(name).credential_key) == (host, key)


@pytest.mark.parametrize("text, name", [
    ("docker.io", "docker.io"),
    ("index.docker.io", "docker.io"),
    ("registry-1.docker.io", "docker.io"),
    ("Registry.Example.COM:5000", "registry.example.com:5000"),
    ("localhost", "localhost"),
    ("127.0.0.1:5000", "127.0.0.1:5000"),
    ("[::1]:5000", "[::1]:5000"),
    ("[FE80::1]", "[fe80::1]"),
    ("myregistry", "myregistry"),
])
def test_parse_registry(text, name):
    assert parse_registry(text) == Registry(name)


@pytest.mark.parametrize("text", [
    "", " host", "host/path", "https://host", "host:", "host:x", "[::1", "ho st", "index.docker.io:443:1",
])
def test_parse_registry_rejects(text):
    with pytest.raises(InvalidReferenceError, match="^parse registry "):
        parse_registry(text)


@pytest.mark.parametrize("text, expected", [
    (f"nginx@{D256}", Reference(Registry("docker.io"), "library/nginx", None, D256)),
    (f"127.0.0.1:5000/app@{D256}", Reference(Registry("127.0.0.1:5000"), "app", None, D256)),
])
def test_parse_repo_digest(text, expected):
    assert parse_repo_digest(text) == expected


@pytest.mark.parametrize("text", ["nginx", "nginx:1", f"nginx:1@{D256}", "<none>@<none>"])
def test_parse_repo_digest_needs_name_at_digest(text):
    with pytest.raises(InvalidReferenceError, match="^parse repo digest "):
        parse_repo_digest(text)


@pytest.mark.parametrize("text", [
    "a" + "-" * 200 + "!",
    "a" + "_a" * 120 + "!",
    "a.b" * 80 + "/" + "a-" * 120 + "A",
    "[" + ":" * 500,
])
def test_hostile_input_is_rejected_quickly(text):
    started = time.perf_counter()
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)
    assert time.perf_counter() - started < 5  # exponential backtracking would take hours; linear takes ms


# --- properties ----------------------------------------------------------------

_REFERENCE_ALPHABET = "abcAB09:/@._-[]"


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=_REFERENCE_ALPHABET, max_size=40)))
def test_any_text_parses_or_raises_invalid_reference(text):
    try:
        ref = parse_reference(text)
    except InvalidReferenceError:
        return
    assert parse_reference(str(ref)) == ref


# Few draws per example keep the property fast; the grammar's structure, not the
# letters, is what varies here (the arbitrary-text property covers the letters).
_alnum = st.sampled_from(["a", "z", "0", "9", "ab", "x1", "0a9", "library", "nginx"])
_separator = st.sampled_from([".", "_", "__", "-", "--"])
_path_component = st.tuples(_alnum, st.lists(st.tuples(_separator, _alnum).map("".join), max_size=2)).map(
    lambda t: t[0] + "".join(t[1]))
_dns_label = st.tuples(_alnum, st.sampled_from(["", "-", "-X-", "Y"]), _alnum).map("".join)
_port = st.integers(1, 65535).map(lambda p: f":{p}")
_domain = st.one_of(
    st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io", "localhost", "[::1]"]),
    st.lists(_dns_label, min_size=2, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.binary(min_size=16, max_size=16).map(lambda b: f"[{ipaddress.IPv6Address(b).exploded}]"),
)
_registry = st.one_of(st.none(), st.tuples(_domain, st.sampled_from(["", ":5000"]) | _port).map("".join))
_TAG_START = "abcXYZ019_"
_tag = st.tuples(st.sampled_from(_TAG_START), st.text(alphabet=_TAG_START + ".-", max_size=20)).map("".join)
_digest = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
    st.binary(min_size=64, max_size=64).map(lambda b: "sha512:" + b.hex()),
)


@settings(max_examples=1000, deadline=None)
@given(_registry, st.lists(_path_component, min_size=1, max_size=3),
       st.one_of(st.none(), _tag), st.one_of(st.none(), _digest))
def test_valid_references_round_trip(registry, path, tag, digest):
    if registry is None and "." in path[0]:
        path = ["x" + path[0].replace(".", "")] + path[1:]  # a "." would make it a registry
    text = "/".join(([registry] if registry else []) + path)
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse_reference(text)
    assert (ref.tag, ref.digest) == (tag if tag or digest else "latest", digest)
    assert ref.repository.endswith("/".join(path))
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar()) == ref
