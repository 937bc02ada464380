"""TLS toward registries: secure by default, relaxed per named host only.

The trust store is certifi's bundle plus an optional PEM bundle of the
operator's own CAs (added, never replacing). A host named insecure may be
reached over plain http or unverified TLS; that is a per-host mode, never a
process-wide switch.
"""
from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import certifi

from .errors import ConfigurationError

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"


class TLSMode(enum.Enum):
    VERIFY = "verify"
    # Try verified-less https first, then plain http: how docker treats --insecure-registry.
    INSECURE = "insecure"


def read_ca_bundle(path: str | Path) -> str:
    """Read and check a PEM CA bundle; the error names the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigurationError(f"read registry CA bundle {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"read registry CA bundle {path}: is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"read registry CA bundle {path}: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"read registry CA bundle {path}: not a PEM text file") from None
    except OSError as exc:
        raise ConfigurationError(f"read registry CA bundle {path}: {exc.strerror or 'unreadable'}") from None
    _check_pem(path, text)
    return text


def _check_pem(path: Path, text: str) -> None:
    begins, ends = text.count(_PEM_BEGIN), text.count(_PEM_END)
    if begins == 0:
        raise ConfigurationError(f"read registry CA bundle {path}: no certificate in it")
    if begins != ends:
        raise ConfigurationError(f"read registry CA bundle {path}: malformed PEM (unbalanced BEGIN/END lines)")
    # A bare context: the default one loads the system's CA store first (~20 ms) for nothing here.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except ssl.SSLError as exc:
        raise ConfigurationError(f"read registry CA bundle {path}: malformed PEM ({exc.reason or exc})") from None


@dataclass(frozen=True)
class TLSPolicy:
    """Which CAs to trust and which hosts were named insecure (host or host:port, lower-case)."""

    extra_ca_pem: str = ""
    insecure_hosts: frozenset[str] = field(default_factory=frozenset)

    def mode_for(self, host: str, port: int | None = None) -> TLSMode:
        """The mode for a host; a name without a port covers every port of that host."""
        host = host.lower().strip("[]")
        shown = f"[{host}]" if ":" in host else host  # IPv6 literals are written bracketed
        names = {shown} if port is None else {shown, f"{shown}:{port}"}
        return TLSMode.INSECURE if names & self.insecure_hosts else TLSMode.VERIFY

    def verified_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=certifi.where())
        if self.extra_ca_pem:
            context.load_verify_locations(cadata=self.extra_ca_pem)
        return context

    @staticmethod
    def unverified_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: it verifies nothing
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
