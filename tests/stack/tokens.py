"""Bearer tokens in the form distribution's `auth: token` accepts: an RS256 JWT with `x5c`.

The header carries the signing certificate (DER, standard base64) in `x5c`; the
registry verifies that certificate against its `rootcertbundle` (our test CA)
and the signature against the certificate's key. Distribution 2.8 checks `x5c`
before `jwk` and `kid`, so no libtrust key id is needed.
"""
from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class Access:
    """One granted resource: `{"type", "name", "actions"}` in the token's `access` claim."""

    name: str
    actions: tuple[str, ...]
    type: str = "repository"

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    cert_der: bytes

    @classmethod
    def from_files(cls, cert_path: Path, key_path: Path) -> Signer:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        return cls(key=key, cert_der=cert.public_bytes(serialization.Encoding.DER))

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def claims(*, issuer: str, subject: str, audience: str, access: list[Access],
           issued_at: int, expires_in: int) -> dict:
    # nbf a little in the past: the registry allows only a small leeway for clock skew.
    return {
        "iss": issuer, "sub": subject, "aud": audience,
        "exp": issued_at + expires_in, "nbf": issued_at - 10, "iat": issued_at,
        "jti": secrets.token_hex(16),
        "access": [item.claim() for item in access],
    }


def decode_unverified(token: str) -> tuple[dict, dict]:
    """(header, claims) of a JWT, for tests that look at what was granted."""
    header, payload, _ = token.split(".")
    return _unb64url_json(header), _unb64url_json(payload)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(value: dict) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _unb64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
