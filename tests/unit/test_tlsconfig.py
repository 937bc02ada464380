"""The registry CA bundle: problems are named with the file, and per-host insecure modes."""
import os
import ssl

import pytest

from engine.errors import ConfigurationError
from engine.tlsconfig import TLSMode, TLSPolicy, read_ca_bundle

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


@pytest.mark.parametrize("named, host, port, mode", [
    ({"reg:5000"}, "reg", 5000, TLSMode.INSECURE),
    ({"reg:5000"}, "reg", 5001, TLSMode.VERIFY),
    ({"reg"}, "reg", 443, TLSMode.INSECURE),
    ({"reg"}, "other", 443, TLSMode.VERIFY),
    ({"[::1]:5000"}, "::1", 5000, TLSMode.INSECURE),
    ({"reg:5000"}, "REG", 5000, TLSMode.INSECURE),
    (set(), "reg", 443, TLSMode.VERIFY),
])
def test_insecure_is_per_host(named, host, port, mode):
    assert TLSPolicy(insecure_hosts=frozenset(named)).mode_for(host, port) is mode
