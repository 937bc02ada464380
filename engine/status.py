"""The one place an HTTP status from a registry becomes a typed error."""
from __future__ import annotations

import json
import math

from .errors import NotFoundError, RateLimitedError, RegistryError, UnauthorizedError, scrub
from .text import one_line
from .transport import Response

_MAX_DETAIL = 200


def raise_for_status(response: Response, operation: str, *, registry: str, repository: str = "") -> None:
    """Return quietly on 2xx; otherwise raise the error class a caller can branch on."""
    if 200 <= response.status < 300:
        return
    codes, detail = _error_body(response.body)
    message = f"{operation}: HTTP {response.status}" + (f" ({detail})" if detail else "")
    context = dict(registry=registry, repository=repository, status=response.status, codes=codes)
    if response.status in (401, 403) or "UNAUTHORIZED" in codes or "DENIED" in codes:
        raise UnauthorizedError(message, **context)
    if response.status == 404 or {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"} & set(codes):
        raise NotFoundError(message, **context)
    if response.status == 429 or "TOOMANYREQUESTS" in codes:
        raise RateLimitedError(message, retry_after=retry_after(response), **context)
    raise RegistryError(message, **context)


def retry_after(response: Response) -> float | None:
    """Seconds from a Retry-After header in its delta-seconds form (dates are rare from registries)."""
    value = response.header("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _error_body(body: bytes) -> tuple[tuple[str, ...], str]:
    """The registry's diagnostic codes and first message from {"errors": [{"code", "message"}]}."""
    try:
        errors = json.loads(body[:65536]).get("errors") or []
        codes = tuple(str(e.get("code", "")).upper() for e in errors if isinstance(e, dict))
        messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        return (), ""
    detail = "; ".join(f"{c}: {m}" if m else c for c, m in zip(codes, messages) if c or m)
    return codes, one_line(scrub(detail), _MAX_DETAIL)
