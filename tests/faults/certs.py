"""Certificates the fault tests need and the stack's PKI does not give: any host name, any validity.

The stack's CA key never leaves `make_pki`, so the fault tests have their own CA
(trusted by the scanner through `--registry-ca` next to the stack's) and a rogue
one that nothing trusts. Every key is EC P-256 and written 0600.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.stack import CertPair

_HOUR = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Authority:
    """A CA that can sign server and client certificates into one directory."""

    name: str
    directory: Path
    cert: Path
    _key: ec.EllipticCurvePrivateKey
    _certificate: x509.Certificate

    @classmethod
    def create(cls, directory: str | Path, name: str) -> Authority:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _HOUR).not_valid_after(now + 24 * _HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        path = directory / f"{_stem(name)}-ca.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(name, directory, path, key, certificate)

    def server(self, stem: str, names: list[str], *, expired: bool = False) -> CertPair:
        """A server certificate for these host names or IP addresses (expired one hour ago on request)."""
        return self._issue(stem, names, ExtendedKeyUsageOID.SERVER_AUTH, expired=expired)

    def client(self, stem: str) -> CertPair:
        return self._issue(stem, [], ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, stem: str, names: list[str], usage, *, expired: bool = False) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - 48 * _HOUR, now - _HOUR) if expired else (now - _HOUR, now + 24 * _HOUR)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} {stem}")]))
            .issuer_name(self._certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        pair = CertPair(cert=self.directory / f"{stem}-cert.pem", key=self.directory / f"{stem}-key.pem")
        pair.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_private(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        return pair


def bundle(path: Path, *pems: Path) -> Path:
    """One PEM file holding several CA certificates."""
    path.write_text("".join(p.read_text() for p in pems))
    return path


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _stem(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
