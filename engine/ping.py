"""The first request to a registry: GET /v2/ says which scheme works and how to authenticate.

    200          → no auth needed
    401          → the WWW-Authenticate challenges (Bearer and/or Basic) say how
    TLS refused  → for a host named insecure only, plain http is tried next
"""
from __future__ import annotations

from dataclasses import dataclass

from .challenge import Challenge, parse_challenges
from .errors import RegistryTimeoutError, TransportError
from .status import raise_for_status
from .transport import Request, Transport


@dataclass(frozen=True)
class Ping:
    base_url: str  # scheme://host[:port], where /v2/ answered
    challenges: tuple[Challenge, ...]  # empty when the registry let us in anonymously


def ping(transport: Transport, host: str, *, insecure: bool, timeout: float | None = None) -> Ping:
    """Find a working scheme for host and its auth challenges.

    An insecure host is tried over https without verification first (as docker
    does), then over plain http when the TLS connection itself fails.
    """
    schemes = ("https", "http") if insecure else ("https",)
    last_error: TransportError | None = None
    for scheme in schemes:
        base = f"{scheme}://{host}"
        try:
            response = transport.round_trip(Request("GET", f"{base}/v2/", timeout=timeout, max_body=64 * 1024,
                                                    operation=f"ping {host}"))
        except RegistryTimeoutError:
            raise  # a host that does not answer will not answer over http either
        except TransportError as exc:  # TLSError included: the server may speak plain http
            if scheme == "https" and insecure:
                last_error = exc
                continue
            raise
        if response.status == 401:
            return Ping(base, tuple(parse_challenges(response.header_values("WWW-Authenticate"))))
        raise_for_status(response, f"ping {host}", registry=host)
        return Ping(base, ())
    raise last_error if last_error is not None else TransportError(f"ping {host}: no scheme to try")
