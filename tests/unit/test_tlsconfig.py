"""The registry CA bundle, per-host TLS modes, --insecure-registry as dockerd reads it, and loopback."""
import json
import os
import socket
import ssl
import threading

import pytest

from engine.errors import ConfigurationError, TLSError
from engine.tlsconfig import (
    TLSMode,
    TLSPolicy,
    is_loopback,
    parse_insecure_registry,
    peer_speaks_plain_http,
    read_ca_bundle,
)

GOOD_CERT_FROM_CERTIFI = None


def _one_real_cert() -> str:
    import certifi
    text = open(certifi.where()).read()
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return text[start:end] + "\n"


def test_a_good_bundle_is_read_and_added_to_certifi(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text(_one_real_cert())
    policy = TLSPolicy(extra_ca_pem=read_ca_bundle(path))
    context = policy.verified_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 1  # certifi's roots are still there


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ("", "no certificate"),
    ("hello\n", "no certificate"),
    ("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", "malformed PEM"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n", "malformed PEM"),
    (b"\xff\xfe\x00binary", "not a PEM text file"),
])
def test_bad_bundles_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bundle.pem"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        read_ca_bundle(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_bundle_is_named(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text(_one_real_cert())
    path.chmod(0)
    with pytest.raises(ConfigurationError, match="permission denied"):
        read_ca_bundle(path)


def test_a_directory_is_not_a_bundle(tmp_path):
    with pytest.raises(ConfigurationError, match="is a directory"):
        read_ca_bundle(tmp_path)


def policy(*entries: str) -> TLSPolicy:
    return TLSPolicy(insecure=tuple(parse_insecure_registry(e) for e in entries))


@pytest.mark.parametrize("named, host, port, mode", [
    (["reg:5000"], "reg", 5000, TLSMode.INSECURE),
    (["reg:5000"], "reg", 5001, TLSMode.VERIFY),
    (["reg"], "reg", 443, TLSMode.INSECURE),
    (["reg"], "other", 443, TLSMode.VERIFY),
    (["[::1]:5000"], "::1", 5000, TLSMode.INSECURE),
    (["reg:5000"], "REG", 5000, TLSMode.INSECURE),
    ([], "reg", 443, TLSMode.VERIFY),
    # address ranges match registries written as an address, never a name (no lookup)
    (["10.0.0.0/8"], "10.20.30.40", 5000, TLSMode.INSECURE),
    (["10.0.0.0/8"], "11.0.0.1", 5000, TLSMode.VERIFY),
    (["10.0.0.0/8"], "ten.example", 5000, TLSMode.VERIFY),
    (["10.0.0.0/8"], "::ffff:10.0.0.1", 443, TLSMode.INSECURE),
    (["fd00::/8"], "[fd12::1]", 443, TLSMode.INSECURE),
    (["fd00::/8"], "fe80::1", 443, TLSMode.VERIFY),
    (["fd00::/8"], "10.0.0.1", 443, TLSMode.VERIFY),
    # loopback: verified https first, plain http allowed, without being named
    ([], "localhost", 5000, TLSMode.VERIFY_OR_PLAIN),
    ([], "LOCALHOST", None, TLSMode.VERIFY_OR_PLAIN),
    ([], "127.0.0.1", 5000, TLSMode.VERIFY_OR_PLAIN),
    ([], "127.200.3.4", 443, TLSMode.VERIFY_OR_PLAIN),
    ([], "::1", 443, TLSMode.VERIFY_OR_PLAIN),
    ([], "[::1]", 443, TLSMode.VERIFY_OR_PLAIN),
    ([], "::ffff:127.0.0.1", 443, TLSMode.VERIFY_OR_PLAIN),
    ([], "128.0.0.1", 443, TLSMode.VERIFY),
    ([], "localhost.example", 443, TLSMode.VERIFY),
    ([], "0.0.0.0", 443, TLSMode.VERIFY),
    (["127.0.0.1:5000"], "127.0.0.1", 5000, TLSMode.INSECURE),  # named insecure: TLS unverified too
])
def test_the_mode_is_per_host(named, host, port, mode):
    assert policy(*named).mode_for(host, port) is mode


@pytest.mark.parametrize("mode, verifies, plain", [
    (TLSMode.VERIFY, True, False),
    (TLSMode.VERIFY_OR_PLAIN, True, True),
    (TLSMode.INSECURE, False, True),
])
def test_what_each_mode_allows(mode, verifies, plain):
    assert (mode.verifies, mode.allows_plain_http) == (verifies, plain)


# dockerd's own table (daemon/pkg/registry config_test.go TestLoadInsecureRegistries,
# TestNewServiceConfig), then forms it accepts by the same rules.
VALID_INSECURE = [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
    ("2001:db8::1", "[2001:db8::1]"),
    ("[2001:db8::1]:80", "[2001:db8::1]:80"),
    ("http://myregistry.example.com", "myregistry.example.com"),
    ("https://myregistry.example.com", "myregistry.example.com"),
    ("HTTP://myregistry.example.com", "myregistry.example.com"),
    ("102.10.8.1/24", "102.10.8.0/24"),
    ("https://reg.example.com:5000", "reg.example.com:5000"),
    ("Reg.Example.COM:5000", "reg.example.com:5000"),
    ("localhost:5000", "localhost:5000"),
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("fd00::/8", "fd00::/8"),
    ("http://10.0.0.0/8", "10.0.0.0/8"),
    (" reg.example.com ", "reg.example.com"),
]

INVALID_INSECURE = [
    ("svn://myregistry.example.com", "only http:// or https://"),
    ("-invalid-registry", "cannot begin or end with a hyphen"),
    ("mytest-.com", "invalid registry host"),
    ("1200:0000:AB00:1234:0000:2552:7777:1313:8080", "invalid registry"),
    ("myregistry.example.com:500000", "invalid registry port"),
    ('"myregistry.example.com"', "invalid registry host"),
    ('"myregistry.example.com:5000"', "invalid registry host"),
    ("[fe80::]/64", "only an address range may hold a '/'"),
    ("http://bad:port", "invalid registry port"),
    ("reg.example.com:0", "invalid registry port"),
    ("reg.example.com/v2/", "only an address range may hold a '/'"),
    ("10.0.0.0/33", "prefix length too long"),
    ("10.0.0.0/x", "prefix length is a number"),
    ("", "empty"),
    ("[::1", "unclosed"),
]


@pytest.mark.parametrize("text, entry", VALID_INSECURE)
def test_insecure_registry_accepts_what_dockerd_accepts(text, entry):
    assert str(parse_insecure_registry(text)) == entry


@pytest.mark.parametrize("text, why", INVALID_INSECURE)
def test_an_invalid_insecure_registry_is_a_configuration_error_that_says_why(text, why):
    with pytest.raises(ConfigurationError) as caught:
        parse_insecure_registry(text)
    message = str(caught.value)
    assert message.startswith(f"insecure registry {json.dumps(text)}: ") and why in message
    assert "expected host, host:port" in message


def test_a_scheme_only_says_where_the_host_is():
    # the scheme is not a mode: a registry named insecure still tries unverified https first
    assert policy("http://reg.example.com").mode_for("reg.example.com", 443) is TLSMode.INSECURE


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("localhost.", True), ("127.0.0.1", True), ("127.255.255.254", True), ("::1", True),
    ("[::1]", True), ("::ffff:127.0.0.2", True), ("10.0.0.1", False), ("::2", False), ("my.localhost", False),
    ("127.0.0.1.nip.io", False), ("", False),
])
def test_is_loopback_by_the_host_as_written(host, loopback):
    assert is_loopback(host) is loopback


def _wrapped(cause: BaseException) -> BaseException:
    """A TLS failure as it reaches the registry layers: the transport's error, urllib3's inside."""
    inner = Exception(cause)  # urllib3 keeps the ssl error among its arguments
    outer = TLSError("ping 127.0.0.1:5000: TLS failed")
    outer.__cause__ = inner
    return outer


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] ...")
    error.reason = reason
    return error


@pytest.mark.parametrize("cause, plain", [
    (_ssl_error("WRONG_VERSION_NUMBER"), True),
    (_ssl_error("RECORD_LAYER_FAILURE"), True),
    (_ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"), False),
    (_ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE"), False),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), False),
    (ConnectionResetError(104, "reset"), False),
])
def test_only_a_peer_that_does_not_speak_tls_counts_as_plain_http(cause, plain):
    assert peer_speaks_plain_http(_wrapped(cause)) is plain


def test_a_real_plain_http_server_is_told_from_tls():
    """OpenSSL's own answer to a ClientHello that meets a plain http server (no fake in between)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        context = ssl.create_default_context()
        with socket.create_connection(server.getsockname(), timeout=5) as raw:
            with pytest.raises(ssl.SSLError) as caught:
                context.wrap_socket(raw, server_hostname="127.0.0.1")
        thread.join(5)
    assert peer_speaks_plain_http(_wrapped(caught.value))
