"""Hostile input, as properties: what the other unit tests' properties do not already cover.

    realm checks      every textual form of a loopback, link-local or metadata address is refused
    token responses   any bytes: a usable token or RegistryError, never a longer life than granted
    registry errors   any status, body and Retry-After: only the typed errors, bounded and printable
    the whole scan    any container name, image, labels and repo digests: a report whose three
                      renderings keep their shape, with nothing but the project's errors escaping
    docker config     any credHelpers / credsStore names: only docker-credential-<plain name> runs
    Lambda events     any JSON value: an endpoint to scan or InvalidEventError

Example counts are sized so that each property takes a few seconds at most.
"""
from __future__ import annotations

import ipaddress
import json
import re
import socket
from urllib.parse import urlsplit

import jsonschema
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.authn import DockerConfigKeychain, run_credential_helper
from engine.bearer import check_realm, parse_token_response
from engine.challenge import parse_challenges
from engine.clock import FakeClock
from engine.daemon import ContainerInfo, Listing
from engine.errors import ConfigurationError, RegistryError, TransportError, UnauthorizedError
from engine.name import Registry
from engine.report import render_json, render_markdown, render_text, schema
from engine.scan import ScanOptions, scan
from engine.selection import Selection
from engine.status import raise_for_status, retry_after
from engine.tlsconfig import TLSPolicy
from engine.transport import Response, internal_host, valid_host
from tests.unit.markdown import table_cells
from tests.reportdoc import containers_of

SCHEMA = schema()
EXTERNAL_REGISTRY = "registry.example.com"

# -- realm checks ---------------------------------------------------------------------------------------


def _ipv4_forms(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """The spellings of one IPv4 address that inet_aton (and so urllib3's resolver) accepts."""
    a, b, c, d = address.packed
    value = int(address)
    forms = [str(address), str(value), hex(value), "0" + oct(value)[2:], f"{a}.{(b << 16) | (c << 8) | d}",
             f"{a}.{b}.{(c << 8) | d}", ".".join(hex(x) for x in (a, b, c, d)),
             ".".join(f"0{x:o}" for x in (a, b, c, d)),
             f"[::ffff:{address}]", f"[::ffff:{(a << 8) | b:x}:{(c << 8) | d:x}]"]
    return st.sampled_from(forms)


_loopback = st.integers(0, 2**24 - 1).map(lambda n: ipaddress.IPv4Address((127 << 24) | n))
_link_local = st.integers(0, 2**16 - 1).map(lambda n: ipaddress.IPv4Address((169 << 24) | (254 << 16) | n))
_internal_v4 = st.one_of(_loopback, _link_local, st.just(ipaddress.IPv4Address("0.0.0.0")))
_internal_names = st.sampled_from(["localhost", "LOCALHOST", "localhost.", "api.localhost", "metadata",
                                   "metadata.google.internal", "metadata.google.internal.", "instance-data",
                                   "[::1]", "[::]", "[fe80::1]", "[fd00:ec2::254]", "100.100.100.200"])


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_internal_v4.flatmap(_ipv4_forms), _internal_names), st.sampled_from(["http", "https"]),
       st.one_of(st.none(), st.integers(1, 65535)), st.booleans())
def test_a_realm_on_any_spelling_of_an_internal_address_is_refused(host, scheme, port, credentials):
    realm = f"{scheme}://{host}{f':{port}' if port else ''}/token"
    with pytest.raises(UnauthorizedError):
        check_realm(realm, registry_host=EXTERNAL_REGISTRY, insecure=True, sends_credentials=credentials)


@settings(max_examples=500, deadline=None)
@given(_internal_v4.flatmap(_ipv4_forms))
def test_the_spellings_checked_are_the_ones_the_resolver_connects_to(form):
    """Guards the test above: each spelling really means an internal address to the C resolver."""
    host = form.strip("[]")
    if ":" in host:
        assert ipaddress.IPv6Address(host).ipv4_mapped is not None
    else:
        assert internal_host(socket.inet_ntoa(socket.inet_aton(host)))
    assert internal_host(form) and valid_host(form)


_url_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
_realmish = st.one_of(
    _url_text,
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}", st.sampled_from(["http", "https", "ftp", "HTTPS"]),
              st.text(alphabet="abc.-_[]:@%0123456789xX\x00 é", max_size=30), _url_text),
)


@settings(max_examples=1500, deadline=None)
@given(_realmish, st.booleans(), st.booleans())
def test_any_realm_is_accepted_or_refused_as_unauthorized(realm, insecure, credentials):
    try:
        check_realm(realm, registry_host=EXTERNAL_REGISTRY, insecure=insecure, sends_credentials=credentials)
    except UnauthorizedError as exc:
        assert len(str(exc)) < 400 and "\n" not in str(exc) or "\n" in realm
        return
    # Accepted: an http(s) URL to a valid host, not internal, and not plain http with credentials unless insecure.
    host = urlsplit(realm).hostname
    assert valid_host(host) and not internal_host(host)
    assert realm.lower().startswith("https://") or insecure or not credentials


@settings(max_examples=1000, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_challenge_header_leads_to_an_accepted_or_refused_realm(header):
    for challenge in parse_challenges([header]):
        realm = challenge.param("realm") or ""
        try:
            check_realm(realm, registry_host=EXTERNAL_REGISTRY, insecure=False, sends_credentials=True)
        except UnauthorizedError:
            continue


# -- token responses and registry errors ------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_token_like = st.fixed_dictionaries({}, optional={
    "token": _json_values | st.text(min_size=1, max_size=20), "access_token": _json_values,
    "expires_in": _json_values | st.floats(-1e12, 1e12) | st.integers(-(10**15), 10**15),
    "issued_at": _json_values | st.datetimes().map(lambda d: d.isoformat() + "Z"),
})
_bodies = st.one_of(st.binary(max_size=200), _json_values.map(lambda v: json.dumps(v).encode()),
                    _token_like.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=800, deadline=None)
@given(_bodies)
def test_any_token_response_is_a_usable_token_or_a_registry_error(body):
    now = 1_700_000_000.0
    try:
        token = parse_token_response(body, now=now, operation="fetch token", registry="r.example")
    except RegistryError as exc:
        assert type(exc) is RegistryError and len(str(exc)) < 200
        return
    assert isinstance(token.value, str) and token.value
    data = json.loads(body)
    granted = data.get("expires_in")
    if isinstance(granted, (int, float)) and not isinstance(granted, bool) and granted > 0:
        assert token.expires_at <= now + granted  # a skewed issued_at never stretches a token's life
    assert token.expires_at > now - 300


_headers = st.dictionaries(st.sampled_from(["Retry-After", "Content-Type", "WWW-Authenticate", "X-Other"]),
                           st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30), max_size=4)
_error_bodies = st.one_of(st.binary(max_size=300), _json_values.map(lambda v: json.dumps(v).encode()),
                          st.lists(st.fixed_dictionaries({}, optional={"code": _json_values, "message": _json_values,
                                                                       "detail": _json_values}), max_size=3)
                          .map(lambda errors: json.dumps({"errors": errors}).encode()))


@settings(max_examples=800, deadline=None)
@given(st.integers(100, 599), _headers, _error_bodies)
def test_any_registry_answer_is_quiet_success_or_a_typed_error(status, headers, body):
    response = Response(status, urllib3.HTTPHeaderDict(headers), body, "https://r.example/v2/x/manifests/1")
    wait = retry_after(response)
    assert wait is None or (0 <= wait < float("inf"))
    try:
        raise_for_status(response, "HEAD manifest r.example/x:1", registry="r.example", repository="x")
    except RegistryError as exc:
        assert not 200 <= status < 300
        message = str(exc)
        assert len(message) < 320 and message.isprintable(), message
        assert exc.status == status
        return
    assert 200 <= status < 300


# -- the whole scan, and the three renderings ------------------------------------------------------------

_any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_hostile_text = st.one_of(_any_text, st.sampled_from([
    "<script>alert(1)</script>", "| a | b |", "\x1b[31mred\x1b[0m", "line\nbreak", "\u202eevil", "a\u2028b",
    "![x](http://e.example/x.png)", "<img src=x onerror=y>", "`code`", "**bold**", "# heading", "\r\n| x |",
    "&lt;", "\\|", "<details>", "</summary>", "\x00", "\u200b", "[link](javascript:alert(1))"]))
_digest = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)
_images = st.one_of(_hostile_text, st.sampled_from(["registry.example.com/app:1", "app", "app@sha256:" + "a" * 64,
                                                     "localhost:5000/x/y:z", "", "sha256:" + "b" * 64]))
_label_keys = st.sampled_from(["com.centurylinklabs.watchtower.enable", "com.centurylinklabs.watchtower.scope",
                               "other"]) | _any_text
_labels = st.dictionaries(_label_keys, _hostile_text | st.sampled_from(["true", "false", "TRUE", "none", "prod"]),
                          max_size=4)
_containers = st.lists(st.builds(
    ContainerInfo, id=st.text("0123456789abcdef", min_size=12, max_size=12), name=_hostile_text, image=_images,
    image_id=st.just("sha256:" + "c" * 64), state=st.sampled_from(["running", "exited", "created", "", "\x1b"]),
    labels=_labels,
    repo_digests=st.lists(st.one_of(_digest.map(lambda d: f"registry.example.com/app@{d}"), _hostile_text),
                          max_size=2).map(tuple),
), min_size=0, max_size=5, unique_by=lambda c: c.id)


class _Listed:
    endpoint = "tcp://docker.example:2376"

    def __init__(self, containers):
        self._containers = tuple(containers)

    def list_containers(self, wanted=None, *, concurrency=8, progress=None, on_listed=None) -> Listing:
        if on_listed is not None:
            on_listed(tuple(c for c in self._containers if wanted is None or wanted(c)))
        return Listing(self._containers, "1.41")


class _NoRegistry:
    """Every registry is unreachable: the scan must still report each container."""

    tls = TLSPolicy()

    def round_trip(self, request):
        raise TransportError(f"{request.method} {request.url}: connection refused")

    def load_trust(self):
        return None

    def open_connections(self, base_url, count, **kw):
        return 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_containers, st.sampled_from([None, "prod", "none"]), st.booleans(), st.booleans())
def test_any_fleet_gives_a_report_whose_renderings_keep_their_shape(containers, scope, label_enable, stopped):
    options = ScanOptions(selection=Selection(scope=scope, label_enable=label_enable), include_stopped=stopped,
                          concurrency=2, timeout=5)
    report = scan(_Listed(containers), options, pools=_NoRegistry(), clock=FakeClock())
    assert {c.id for c in report.containers} <= {c.id for c in containers}
    document = json.loads(render_json(report))
    jsonschema.validate(document, SCHEMA)
    assert sorted(c["name"] for c in containers_of(document)) == sorted(c.name for c in report.containers)
    _check_text(render_text(report), len(report.containers))
    groups = {c.status in ("stale", "error") for c in report.containers}  # a table each: attention, the rest
    _check_markdown(render_markdown(report), len(report.containers) + len(groups))


_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f]")


def _check_text(text: str, rows: int) -> None:
    lines = text.splitlines()
    assert len(lines) == (3 if rows == 0 else 3 + rows)  # summary, blank, header (or "No containers")
    assert not _INVISIBLE.search(text)


def _check_markdown(markdown: str, rows: int) -> None:
    """rows: one per container plus one header per table."""
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table_rows) == rows
    for line in table_rows:
        assert table_cells(line) == 6, line
    body = re.sub(r"</?(details|summary)>", "", markdown)
    assert "<" not in body and ">" not in body
    assert not _INVISIBLE.search(markdown)
    assert "](" not in body.replace("\\](", "")  # no link or image syntax survives




# -- docker config.json: which programs may run ------------------------------------------------------------

_helper_names = st.one_of(st.text(max_size=12), st.sampled_from(
    ["../../bin/sh", "/bin/sh", "ecr-login", "-rf", "a;b", "a b", "desktop.exe", "x/../y", "", ".", "..", "\x00"]))


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.text(max_size=20) | st.sampled_from(["registry.example.com", "registry.example.com/team"]),
                       _helper_names, max_size=3), _helper_names)
def test_only_plainly_named_credential_helpers_are_ever_asked(helpers, store):
    asked = []

    def runner(name, server):
        asked.append(name)
        return None

    try:
        keychain = DockerConfigKeychain.from_mapping({"credHelpers": helpers, "credsStore": store},
                                                     helper_runner=runner)
        keychain.resolve(Registry("registry.example.com"), "team/app")
    except ConfigurationError:
        pass
    programs = []
    for name in asked:
        try:
            run_credential_helper(name, "registry.example.com", runner=lambda argv, **kw: programs.append(argv[0]))
        except (ConfigurationError, AttributeError):
            pass
    assert all(re.fullmatch(r"docker-credential-[A-Za-z0-9][A-Za-z0-9._-]*", p) for p in programs)
    assert all("/" not in p for p in programs)


# -- Lambda events -------------------------------------------------------------------------------------------

try:
    from handler.aws.settings import EndpointSpec, InvalidEventError, targets_for
except ImportError:  # the Lambda adapter is optional
    targets_for = None

_event_fields = st.sampled_from(["endpoint", "correlation_id", "detail-type", "source", "detail", "host", "x"])
_endpoint = st.fixed_dictionaries({}, optional={
    "host": st.one_of(_json_values, st.sampled_from(["tcp://docker-01:2376", "unix:///var/run/docker.sock",
                                                     "tcp://", "http://x", "tcp://a b"])),
    "tls_secret": _json_values, "names": _json_values | st.lists(_any_text, max_size=3),
    "label_enable": _json_values, "scope": _json_values, "include_stopped": _json_values, "extra": _json_values})
_events = st.one_of(_json_values, st.dictionaries(_event_fields | _any_text, _json_values | _endpoint, max_size=4),
                    st.fixed_dictionaries({"endpoint": _endpoint}, optional={"correlation_id": _json_values}))


@pytest.mark.skipif(targets_for is None, reason="handler.aws.settings is not there")
@settings(max_examples=400, deadline=None)
@given(_events, st.sampled_from(["", "tcp://default:2376"]))
def test_any_lambda_event_is_an_endpoint_to_scan_or_an_invalid_event(event, default_host):
    try:
        targets = targets_for(event, EndpointSpec(host=default_host))
    except InvalidEventError as exc:
        assert str(exc).startswith("invalid event")
        return
    assert targets.endpoints or targets.fleet is not None
    assert isinstance(targets.correlation_id, str) and len(targets.correlation_id) <= 256
    for spec in targets.endpoints:
        assert re.fullmatch(r"(tcp|unix|npipe|ssh)://\S+", spec.host)  # the settings table's daemon address
        assert all(isinstance(n, str) and n for n in spec.names)
        assert isinstance(spec.label_enable, bool) and isinstance(spec.include_stopped, bool)

