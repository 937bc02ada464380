"""The first request to a registry: GET /v2/ says which scheme works and how to authenticate.

    200          → no auth needed
    401          → the WWW-Authenticate challenges (Bearer and/or Basic) say how
    https fails  → plain http next, where the host's TLS mode allows it:
                   INSECURE (named insecure): after any failure but a timeout;
                   VERIFY_OR_PLAIN (loopback): only when the peer does not speak TLS,
                   so that a bad certificate stays a TLS error
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .challenge import Challenge, parse_challenges
from .errors import RegistryTimeoutError, TransportError
from .status import raise_for_status
from .tlsconfig import TLSMode, peer_speaks_plain_http
from .transport import Request, Transport

log = logging.getLogger("spyglass.registry")


@dataclass(frozen=True)
class Ping:
    base_url: str  # scheme://host[:port], where /v2/ answered
    challenges: tuple[Challenge, ...]  # empty when the registry let us in anonymously


def ping(transport: Transport, host: str, *, mode: TLSMode, timeout: float | None = None) -> Ping:
    """Find a working scheme for host and its auth challenges; https first, as docker does."""
    try:
        return _ping_at(transport, "https", host, timeout)
    except RegistryTimeoutError:
        raise  # a host that does not answer will not answer over http either
    except TransportError as exc:  # TLSError included
        if not _plain_http_next(mode, exc):
            raise
    found = _ping_at(transport, "http", host, timeout)
    if mode is TLSMode.VERIFY_OR_PLAIN:  # once per registry: the ping is
        log.warning("registry %s speaks plain http: using it without TLS, as docker does for a registry "
                    "on a loopback address", host)
    return found


def _plain_http_next(mode: TLSMode, error: TransportError) -> bool:
    if mode is TLSMode.INSECURE:
        return True
    return mode is TLSMode.VERIFY_OR_PLAIN and peer_speaks_plain_http(error)


def _ping_at(transport: Transport, scheme: str, host: str, timeout: float | None) -> Ping:
    base = f"{scheme}://{host}"
    response = transport.round_trip(Request("GET", f"{base}/v2/", timeout=timeout, max_body=64 * 1024,
                                            operation=f"ping {host}"))
    if response.status == 401:
        return Ping(base, tuple(parse_challenges(response.header_values("WWW-Authenticate"))))
    raise_for_status(response, f"ping {host}", registry=host)
    return Ping(base, ())
