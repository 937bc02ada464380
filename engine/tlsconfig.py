"""TLS toward registries: secure by default, relaxed per host only.

The trust store is certifi's bundle plus an optional PEM bundle of the
operator's own CAs (added, never replacing). Each registry host has a mode,
never a process-wide switch:

    VERIFY           verified https only (every host not covered below)
    VERIFY_OR_PLAIN  verified https first, plain http when the peer does not speak
                     TLS at all (a certificate failure stays a failure): registries
                     on localhost, 127.0.0.0/8 and ::1, which the docker daemon
                     treats as insecure without being told
    INSECURE         unverified https first, then plain http: hosts and address
                     ranges named with --insecure-registry (the daemon's
                     insecure-registries syntax, see parse_insecure_registry)

A range matches registries written as an IP address only: a DNS answer never
decides whether TLS is checked (dockerd resolves names for this; see the README).
"""
from __future__ import annotations

import enum
import ipaddress
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi

from .errors import ConfigurationError, InvalidReferenceError, causes
from .name import parse_registry

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_INSECURE_SYNTAX = "expected host, host:port, http(s)://host[:port], [IPv6]:port or a CIDR range such as 10.0.0.0/8"
# OpenSSL's reason codes when the first bytes back are not a TLS record: the peer speaks something
# else (a plain http server answers a ClientHello with "HTTP/1.1 400"). Certificate and alert
# failures carry other codes, and those never lead to plain http.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL",
                              "PACKET_LENGTH_TOO_LONG"})


class TLSMode(enum.Enum):
    VERIFY = "verify"
    VERIFY_OR_PLAIN = "verify, plain http allowed"
    INSECURE = "insecure"

    @property
    def verifies(self) -> bool:
        """Whether https to the host checks its certificate."""
        return self is not TLSMode.INSECURE

    @property
    def allows_plain_http(self) -> bool:
        return self is not TLSMode.VERIFY


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
class InsecureRegistry:
    """One --insecure-registry entry: a host (lower-case, "host" or "host:port") or an address range."""

    host: str = ""
    network: _Network | None = None

    def covers(self, host: str, port: int | None) -> bool:
        """A host without a port covers every port of that host; a range covers addresses in it."""
        if self.network is not None:
            address = _address(host)
            return address is not None and address in self.network
        shown = f"[{host}]" if ":" in host else host  # IPv6 literals are written bracketed
        return self.host == shown or (port is not None and self.host == f"{shown}:{port}")

    def __str__(self) -> str:
        return str(self.network) if self.network is not None else self.host


def parse_insecure_registry(text: str) -> InsecureRegistry:
    """One entry as dockerd's insecure-registries takes it: host, host:port, [IPv6]:port or IPv6,
    a CIDR range, each optionally after http:// or https:// (dropped: the mode decides the scheme)."""
    operation = f"insecure registry {json.dumps(text)}"
    try:
        return _parse_insecure(text.strip(), operation)
    except ValueError as why:
        raise ConfigurationError(f"{operation}: {why} ({_INSECURE_SYNTAX})") from None
    except InvalidReferenceError as exc:
        raise ConfigurationError(f"{exc} ({_INSECURE_SYNTAX})") from None


def _parse_insecure(entry: str, operation: str) -> InsecureRegistry:
    if not entry:
        raise ValueError("empty")
    if entry.startswith("-") or entry.endswith("-"):
        raise ValueError("cannot begin or end with a hyphen")
    scheme, separator, rest = entry.partition("://")
    if separator:
        if scheme.lower() not in ("http", "https"):
            raise ValueError(f"only http:// or https:// may come before the host, not {scheme}://")
        entry = rest
    if "/" in entry:
        return InsecureRegistry(network=_network(entry))
    if _address(entry) is not None and ":" in entry and not entry.startswith("["):
        entry = f"[{entry}]"  # a bare IPv6 address, as dockerd takes it
    return InsecureRegistry(host=parse_registry(entry, operation=operation).name)


def _network(text: str) -> _Network:
    address, _, bits = text.partition("/")
    if "[" in address or _address(address) is None:
        raise ValueError("only an address range may hold a '/' (a registry is host[:port], without a path; "
                         "a range's IPv6 address has no brackets)")
    if not (bits.isascii() and bits.isdigit()):
        raise ValueError("a range's prefix length is a number")
    try:
        return ipaddress.ip_network(text, strict=False)  # 10.1.2.3/8 means 10.0.0.0/8, as dockerd masks it
    except ValueError:
        raise ValueError("prefix length too long for the address") from None


def _address(host: str) -> _Address | None:
    """The IP address a host literal stands for (brackets allowed, IPv4-mapped IPv6 read as IPv4)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1, written as such (no name is resolved)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    address = _address(host)
    return address is not None and address.is_loopback


def peer_speaks_plain_http(error: BaseException) -> bool:
    """Whether a failed TLS handshake met a peer that does not speak TLS (not a bad certificate)."""
    for cause in causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in _NOT_TLS_REASONS:
            return True
    return False


@dataclass(frozen=True)
class TLSPolicy:
    """Which CAs to trust and which registries were named insecure."""

    extra_ca_pem: str = ""
    insecure: tuple[InsecureRegistry, ...] = ()

    def mode_for(self, host: str, port: int | None = None) -> TLSMode:
        """The mode for a host (see the module docstring)."""
        host = host.lower().strip("[]")
        if any(entry.covers(host, port) for entry in self.insecure):
            return TLSMode.INSECURE
        return TLSMode.VERIFY_OR_PLAIN if is_loopback(host) else TLSMode.VERIFY

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
