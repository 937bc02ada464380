"""A throw-away certificate authority for the test stack, written as PEM files.

One CA signs everything: the daemon's TLS endpoint, the client certificate the
scanner presents to it (mutual TLS), the registries and token server, and the
token server's JWT signing certificate. Validity is short on purpose: these
files only live as long as one test session.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates start a little in the past so that a clock a few seconds behind
# (a container, another process) does not see them as not yet valid.
_BACKDATE = datetime.timedelta(minutes=5)
_LOCALHOST_NAMES = (x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"))


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files one `make_pki` call wrote."""

    directory: Path
    ca: Path
    daemon: CertPair
    client: CertPair
    registry: CertPair
    signing: CertPair


@dataclass(frozen=True)
class _Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_pki(directory: str | Path, *, valid_for: datetime.timedelta = datetime.timedelta(days=1)) -> Pki:
    """Create a CA and every certificate the stack needs under `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer = _make_ca(now, valid_for)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(issuer.cert.public_bytes(serialization.Encoding.PEM))
    server_usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    client_usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    return Pki(
        directory=directory,
        ca=ca_path,
        daemon=_issue(directory, "daemon", issuer, now, valid_for, server_usage, _LOCALHOST_NAMES),
        client=_issue(directory, "client", issuer, now, valid_for, client_usage, ()),
        registry=_issue(directory, "registry", issuer, now, valid_for, server_usage, _LOCALHOST_NAMES),
        # RSA because RS256 needs no signature re-encoding (ES256 wants raw r||s, not DER).
        signing=_issue(directory, "token-signing", issuer, now, valid_for, None, (), key=_rsa_key()),
    )


def write_docker_cert_dir(pki: Pki, directory: str | Path) -> Path:
    """Lay out `ca.pem`, `cert.pem`, `key.pem` the way DOCKER_CERT_PATH expects them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pki.ca, directory / "ca.pem")
    shutil.copyfile(pki.client.cert, directory / "cert.pem")
    _write_private(directory / "key.pem", pki.client.key.read_bytes())
    return directory


def _make_ca(now: datetime.datetime, valid_for: datetime.timedelta) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spyglass test CA")])
    cert = (
        _base_builder(name, name, key.public_key(), now, valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True, rsa_key=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _Issuer(cert, key)


def _issue(directory, stem, issuer, now, valid_for, ext_usage, san_names, *, key=None) -> CertPair:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"spyglass test {stem}")])
    builder = (
        _base_builder(subject, issuer.cert.subject, key.public_key(), now, valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    if ext_usage is not None:
        builder = builder.add_extension(ext_usage, critical=False)
    if san_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san_names)), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    pair = CertPair(cert=directory / f"{stem}-cert.pem", key=directory / f"{stem}-key.pem")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(pair.key, _private_pem(key))
    return pair


def _base_builder(subject, issuer_name, public_key, now, valid_for) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + valid_for)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _authority_key_id(issuer: _Issuer) -> x509.AuthorityKeyIdentifier:
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _key_usage(*, cert_sign: bool, rsa_key: bool) -> x509.KeyUsage:
    # key_encipherment only means something for RSA (RSA key exchange); EC keys never encipher.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start, so the key is never readable by others even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
