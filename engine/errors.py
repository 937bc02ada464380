"""The exceptions spyglass raises, under one root.

    SpyglassError
    ├── InvalidReferenceError      a reference that the distribution grammar rejects
    ├── ConfigurationError         bad settings or files (exit code 2)
    ├── DaemonError                the Docker endpoint could not be listed (exit code 3)
    ├── UnavailableError           a service spyglass relies on was busy or unreachable
    │                              (a throttled or failing AWS API): temporary (exit code 3)
    ├── ReportDocumentError        a JSON report that is not schema_version 2's shape
    └── RegistryError              a registry operation failed; carries registry, repository, status
        ├── UnauthorizedError      401/403, or credentials refused
        ├── NotFoundError          404, or MANIFEST_UNKNOWN / NAME_UNKNOWN
        ├── RateLimitedError       429 (toomanyrequests)
        └── TransportError         no usable HTTP answer
            ├── TLSError           handshake or verification failed
            └── RegistryTimeoutError  connect/read timeout or the scan deadline

Each class names the report ``reason`` it maps to, and says whether trying
again later could help (``temporary``), so callers branch on the class, never
on message text. Messages read ``operation subject: cause`` and
never contain a secret; URLs are passed through :func:`redact_url` first.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that may carry a secret in a URL we log or report.
_SECRET_PARAMS = frozenset({"password", "token", "access_token", "refresh_token", "secret", "client_secret"})


class SpyglassError(Exception):
    """Root of every error spyglass raises on purpose."""

    reason = "error"
    temporary = False  # whether trying again later could help


class InvalidReferenceError(SpyglassError):
    """An image reference or registry name that the distribution grammar does not allow.

    The container it belongs to is reported with this reason; the rest of the scan goes on.
    """

    reason = "invalid-reference"


class ConfigurationError(SpyglassError):
    """A setting, file or credential helper that cannot work as given.

    Raised before anything is scanned where it can be (exit 2); a credential helper that fails
    mid-scan costs only the containers of its registry.
    """

    reason = "configuration"


class ReportDocumentError(SpyglassError):
    """A JSON report read back (Report.from_dict) that is not a schema_version 2 document; the
    message names the first offending field by its path (``endpoints[3].containers[0].status``)."""

    reason = "invalid-report"


class DaemonError(SpyglassError):
    """The Docker daemon could not be listed (unreachable, TLS refused), or failed one inspect.

    The first makes the endpoint's entry unreachable (``unreachable``: connection, TLS handshake,
    timeout) or error, with ``reason`` a short slug (exit 3 when no endpoint of the run could be
    listed); the second is an error entry for that container only.
    """

    reason = "daemon-error"

    def __init__(self, message: str = "", *, reason: str | None = None, unreachable: bool = False):
        super().__init__(message)
        if reason:
            self.reason = reason
        self.unreachable = unreachable


class UnavailableError(SpyglassError):
    """A service answered "not now" (throttled, 5xx) or could not be reached.

    Not a settings problem: a later run may succeed (exit 3).
    """

    reason = "unavailable"
    temporary = True


class RegistryError(SpyglassError):
    """A registry answered badly or not at all.

    ``status`` is the HTTP status when there was one; ``codes`` are the
    registry's diagnostic codes from an error body (``MANIFEST_UNKNOWN``...).
    """

    reason = "registry-error"

    def __init__(self, message: str, *, registry: str = "", repository: str = "",
                 status: int | None = None, codes: tuple[str, ...] = ()):
        super().__init__(message)
        self.registry = registry
        self.repository = repository
        self.status = status
        self.codes = codes

    @property
    def temporary(self) -> bool:
        """Whether trying again later could help."""
        return self.status is not None and (self.status >= 500 or self.status == 429)


class UnauthorizedError(RegistryError):
    """401 or 403: no credential, a wrong one, or a token the registry or its token server refused."""

    reason = "unauthorized"


class NotFoundError(RegistryError):
    """404: the repository or the tag is not there (MANIFEST_UNKNOWN, NAME_UNKNOWN)."""

    reason = "not-found"


class RateLimitedError(RegistryError):
    """429, with the pause the registry asked for (Retry-After) when it said one."""

    reason = "rate-limited"
    temporary = True  # overrides RegistryError's property: a 429 always passes

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(RegistryError):
    """No HTTP answer at all: refused, reset, host not found, or the TLS handshake failed."""

    temporary = True


class TLSError(TransportError):
    """The TLS handshake failed: the same certificate will fail again, so it is not temporary."""

    reason = "tls"
    temporary = False


class RegistryTimeoutError(TransportError):
    reason = "timeout"


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """exc, then what it wraps, outermost first: ``__cause__``, ``__context__``, an exception
    among its arguments (requests wraps urllib3's so), or a ``reason`` (urllib3's MaxRetryError)."""
    seen: set[int] = set()
    while isinstance(exc, BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        wrapped = [arg for arg in exc.args if isinstance(arg, BaseException)]
        exc = exc.__cause__ or exc.__context__ or (wrapped[0] if wrapped else None) or getattr(exc, "reason", None)


def redact_url(url: str) -> str:
    """Drop user-info and secret-bearing query values from a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode([(k, "REDACTED" if k.lower() in _SECRET_PARAMS else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def scrub(text: str) -> str:
    """Remove Authorization-style credentials from free text (error bodies echo headers)."""
    return _BEARER.sub(lambda m: m.group(1) + " REDACTED", text)
