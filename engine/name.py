"""Image references, parsed per the distribution reference grammar.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*
    domain     := host [ ":" port ]      host: DNS name, IPv4, or [IPv6]

The first component of a name is a domain only when it contains "." or ":",
is "localhost", or has an uppercase letter; otherwise the name lives on
Docker Hub, and a one-component Hub name gains "library/". This module
parses and prints references and does nothing else: no I/O, no environment.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass

from engine.errors import InvalidReferenceError

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_HOST",
    "DOCKER_HUB_CREDENTIAL_KEY",
    "Registry",
    "Reference",
    "parse_reference",
    "parse_repo_digest",
    "parse_registry",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
DOCKER_HUB_CREDENTIAL_KEY = "https://index.docker.io/v1/"

# What users write for Docker Hub; all of them mean the one logical registry.
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_HOST})
_OFFICIAL_PREFIX = "library/"
# The repository path alone, without the domain: distribution's reference grammar
# (RepositoryNameTotalLengthMax, checked against the path since 2024).
_PATH_MAX = 255
# The grammar sets no limit on a domain; a DNS name has at most 253 characters, then a port.
_DOMAIN_MAX = 253 + len(":65535")
# Longest input that could still be valid (domain "/" path, ":" tag, "@sha512:" hex); checking
# it first bounds the work done on hostile input.
_INPUT_MAX = _DOMAIN_MAX + 1 + _PATH_MAX + 1 + 128 + 1 + len("sha512:") + 128

# Separators are written as non-empty alternatives ("-+", not the spec's "[-]*"):
# the same language, but without the nested quantifier that backtracks exponentially.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")
# Only registered algorithms validate (as go-digest does); hex must be lowercase.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Registry:
    """A registry by its logical name: lower-cased host[:port], "docker.io" for Hub.

    Build it with parse_registry; the name is not re-validated here.
    """

    name: str

    @property
    def host(self) -> str:
        """Where to connect: Hub's logical name is not where it is served."""
        return DOCKER_HUB_HOST if self.name == DOCKER_HUB else self.name

    @property
    def credential_key(self) -> str:
        """The key docker stores this registry's credentials under in config.json."""
        return DOCKER_HUB_CREDENTIAL_KEY if self.name == DOCKER_HUB else self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Reference:
    """A fully qualified reference; at least one of tag and digest is set."""

    registry: Registry
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # Without either there is no manifest to ask for; parse_reference never builds one.
        if self.tag is None and self.digest is None:
            raise ValueError("a Reference needs a tag or a digest")

    @property
    def repository_name(self) -> str:
        return f"{self.registry.name}/{self.repository}"

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def manifest_identifier(self) -> str:
        """The <reference> in /v2/<name>/manifests/<reference>."""
        return self.tag if self.tag is not None else self.digest  # type: ignore[return-value]

    def familiar(self) -> str:
        """The short form docker shows: "nginx:latest", "user/app:1", "host:5000/a:1"."""
        name = self.repository_name
        first = self.repository.partition("/")[0]
        # "docker.io/a.b/c" keeps its registry: "a.b/c" would name registry "a.b".
        if self.registry.name == DOCKER_HUB and not _looks_like_domain(first):
            name = self.repository
            short = name[len(_OFFICIAL_PREFIX):]
            if name.startswith(_OFFICIAL_PREFIX) and "/" not in short:
                name = short
        return name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag is not None else "") + (
            f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.repository_name + self._suffix()


class _Rejected(Exception):
    """Why the grammar rejects an input; the public parsers add the input itself."""


def parse_reference(text: str, *, default_tag: str = "latest") -> Reference:
    """Parse what a user or the daemon wrote ("nginx", "host:5000/a/b:1@sha256:...").

    default_tag is added only when neither a tag nor a digest is given.
    """
    if _TAG.fullmatch(default_tag) is None:
        raise ValueError(f"default_tag {default_tag!r} is not a valid tag")
    try:
        return _parse(text, default_tag)
    except _Rejected as why:
        raise InvalidReferenceError(f"parse reference {_quote(text)}: {why}") from None


def parse_repo_digest(text: str) -> Reference:
    """Parse a RepoDigests entry: "nginx@sha256:...", "127.0.0.1:5000/app@sha256:..."."""
    try:
        ref = _parse(text, "latest")
        if ref.digest is None or ref.tag is not None:
            raise _Rejected("expected name@digest")
        return ref
    except _Rejected as why:
        raise InvalidReferenceError(f"parse repo digest {_quote(text)}: {why}") from None


def parse_registry(text: str, *, operation: str = "") -> Registry:
    """Parse "HOST[:PORT]" as written in --insecure-registry or config.json keys.

    The error reads "operation: why", "parse registry TEXT: why" by default.
    """
    try:
        return Registry(_registry_name(_checked_text(text)))
    except _Rejected as why:
        raise InvalidReferenceError(f"{operation or 'parse registry ' + _quote(text)}: {why}") from None


# A pure function of its input, and a fleet repeats the same few references and RepoDigests
# across hundreds of containers: remember recent answers (rejections are not remembered).
@functools.lru_cache(maxsize=4096)
def _parse(text: str, default_tag: str) -> Reference:
    text = _checked_text(text)
    if _IMAGE_ID.fullmatch(text):
        raise _Rejected("a 64-character hex string is an image ID, not a repository")
    rest, at, digest = text.partition("@")
    name, tag = _split_tag(rest)
    registry, repository = _split_name(name)
    if at:
        _check_digest(digest)
    if tag is None and not at:
        tag = default_tag
    return Reference(registry, repository, tag, digest if at else None)


def _checked_text(text: str) -> str:
    if not isinstance(text, str):
        raise _Rejected(f"expected a string, got {type(text).__name__}")
    if not text:
        raise _Rejected("empty")
    if text != text.strip():
        raise _Rejected("leading or trailing whitespace")
    if len(text) > _INPUT_MAX:
        raise _Rejected(f"longer than {_INPUT_MAX} characters")
    return text


def _split_tag(name: str) -> tuple[str, str | None]:
    # A ":" after the last "/" starts a tag; one before it belongs to a port.
    colon = name.rfind(":")
    if colon <= name.rfind("/"):
        return name, None
    tag = name[colon + 1:]
    if _TAG.fullmatch(tag) is None:
        raise _Rejected("invalid tag (letters, digits, '_', '.', '-'; at most 128)")
    return name[:colon], tag


def _split_name(name: str) -> tuple[Registry, str]:
    first, slash, remainder = name.partition("/")
    if slash and _looks_like_domain(first):
        registry = Registry(_registry_name(first))
        if not _looks_like_domain(registry.name):
            # "Host/app" names host "Host", but printed lower-cased it would read as a
            # Hub namespace; refuse rather than print something that means another image.
            raise _Rejected("registry host needs a '.' or ':' or must be localhost")
    else:
        registry, remainder = Registry(DOCKER_HUB), name
    if registry.name == DOCKER_HUB and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    _check_repository(remainder)
    if len(remainder) > _PATH_MAX:
        raise _Rejected(f"repository path longer than {_PATH_MAX} characters")
    return registry, remainder


def _looks_like_domain(component: str) -> bool:
    # Docker's own rule, so that we read a name as the daemon that pulled it did.
    return ("." in component or ":" in component or component == "localhost"
            or component.lower() != component)


def _check_repository(path: str) -> None:
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if _PATH_COMPONENT.fullmatch(component.lower()):
            raise _Rejected("repository name must be lowercase")
        raise _Rejected("invalid repository path component")


def _registry_name(text: str) -> str:
    if text.startswith("["):
        host, bracket, port = text.partition("]")
        if not bracket:
            raise _Rejected("unclosed '[' in IPv6 host")
        _check_ipv6(host[1:])
    else:
        host, _, port = text.partition(":")
        _check_dns_name(host)
        port = text[len(host):]
    if port:
        _check_port(port)
    name = text.lower()
    return DOCKER_HUB if name in _HUB_ALIASES else name


def _check_dns_name(host: str) -> None:
    for label in host.split("."):
        ok = (label.isascii() and label.replace("-", "").isalnum()
              and not label.startswith("-") and not label.endswith("-"))
        if not ok:
            raise _Rejected("invalid registry host")


def _check_ipv6(address: str) -> None:
    # The grammar admits hex digits and ":" only: no zone ids, no embedded IPv4.
    if not address or set(address.lower()) - set("0123456789abcdef:"):
        raise _Rejected("invalid IPv6 host")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise _Rejected("invalid IPv6 host") from None


def _check_port(port: str) -> None:
    digits = port[1:]
    if not (port.startswith(":") and digits.isascii() and digits.isdigit()
            and 0 < int(digits) < 65536):
        raise _Rejected("invalid registry port")


def _check_digest(digest: str) -> None:
    algorithm, _, hex_part = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        known = _DIGEST_ALGORITHM.fullmatch(algorithm) and len(hex_part) >= 32
        raise _Rejected("unsupported digest algorithm" if known else "invalid digest")
    if len(hex_part) != length or not set(hex_part) <= _LOWER_HEX:
        raise _Rejected(f"{algorithm} digest needs {length} lowercase hex characters")


def _quote(text: object, limit: int = 100) -> str:
    """The input for a message: escaped so control characters cannot break a log line."""
    if not isinstance(text, str):
        return type(text).__name__
    shown = json.dumps(text[:limit])  # ASCII-only, control characters escaped
    return shown + ("..." if len(text) > limit else "")
