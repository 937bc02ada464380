"""The distribution token exchange: credentials (or none) for a bearer token covering some scopes.

Before anything is sent the realm is checked: credentials never go to a realm
over plain http unless the registry was named insecure, or both the registry
and the realm are on loopback (where docker allows plain http), and a realm on a
loopback, link-local or cloud-metadata address is refused unless the registry
itself is on such an address (a hostile registry could otherwise aim us at
internal services).
"""
from __future__ import annotations

import base64
import json
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from .authn import Credential
from .challenge import Challenge
from .clock import Clock
from .errors import RegistryError, UnauthorizedError
from .status import raise_for_status
from .tlsconfig import is_loopback
from .tokens import DEFAULT_EXPIRES_IN, Token
from .transport import Request, Transport, internal_host, shown_url, valid_host

MAX_TOKEN_RESPONSE = 256 * 1024
CLIENT_ID = "spyglass"


def basic_authorization(credential: Credential) -> str:
    pair = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def check_realm(realm: str, *, registry_host: str, insecure: bool, sends_credentials: bool) -> None:
    """Raise UnauthorizedError when the realm is not a place to ask (see the module docstring)."""
    operation = f"fetch token from {shown_url(realm)}"
    try:
        parts = urlsplit(realm)
        parts.port  # noqa: B018 - a port that is not a number raises here, not later
    except ValueError:
        raise UnauthorizedError(f"{operation}: realm is not a URL", registry=registry_host) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnauthorizedError(f"{operation}: realm is not an http(s) URL", registry=registry_host)
    if not valid_host(parts.hostname):
        raise UnauthorizedError(f"{operation}: realm host is not a host name or an address", registry=registry_host)
    registry_name = urlsplit(f"//{registry_host}").hostname or registry_host
    on_loopback = is_loopback(registry_name) and is_loopback(parts.hostname)
    if parts.scheme == "http" and sends_credentials and not (insecure or on_loopback):
        raise UnauthorizedError(f"{operation}: refusing to send credentials over plain http (name the registry "
                                "with --insecure-registry to allow it)", registry=registry_host)
    if internal_host(parts.hostname) and not internal_host(registry_name):
        raise UnauthorizedError(f"{operation}: realm points at an internal address while the registry does not",
                                registry=registry_host)


def fetch_token(transport: Transport, challenge: Challenge, scopes: tuple[str, ...], credential: Credential | None,
                *, registry_host: str, insecure: bool, clock: Clock, timeout: float | None = None) -> Token:
    realm = challenge.param("realm") or ""
    service = challenge.param("service") or ""
    check_realm(realm, registry_host=registry_host, insecure=insecure, sends_credentials=credential is not None)
    operation = f"fetch token from {shown_url(realm)}"
    if credential is not None and credential.identity_token:
        form = urlencode({"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                          "service": service, "scope": " ".join(scopes), "client_id": CLIENT_ID})
        response = transport.round_trip(Request(
            "POST", realm, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form.encode(),
            timeout=timeout, max_body=MAX_TOKEN_RESPONSE, operation=operation))
    else:
        query = urlencode([("service", service)] * bool(service) + [("scope", s) for s in scopes])
        headers = {"Authorization": basic_authorization(credential)} if credential is not None else {}
        url = realm + ("&" if urlsplit(realm).query else "?") + query
        response = transport.round_trip(Request("GET", url, headers=headers, timeout=timeout,
                                                max_body=MAX_TOKEN_RESPONSE, operation=operation))
    raise_for_status(response, operation, registry=registry_host)
    return parse_token_response(response.body, now=clock.now(), operation=operation, registry=registry_host)


def parse_token_response(body: bytes, *, now: float, operation: str, registry: str) -> Token:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{operation}: response is not JSON", registry=registry) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{operation}: response is not a JSON object", registry=registry)
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{operation}: response carries no token", registry=registry)
    expires_in = data.get("expires_in")
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    return Token(value=value, expires_at=_issued_at(data.get("issued_at"), now) + float(expires_in))


def _issued_at(value: object, now: float) -> float:
    """issued_at when it is a sane RFC 3339 time; a skewed or absent one counts from now."""
    if not isinstance(value, str):
        return now
    try:
        issued = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now
    # A token server's clock may run ahead of ours: never let that extend a token's life.
    return issued if now - 300 <= issued <= now else now
