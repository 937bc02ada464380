"""Native Amazon ECR credentials: ecr:GetAuthorizationToken through the caller's IAM role.

A private ECR registry is ``<account>.dkr.ecr.<region>.amazonaws.com`` and its
variants: FIPS (``dkr.ecr-fips``), China (``amazonaws.com.cn``), dual-stack
(``dkr-ecr.<region>.on.aws``) and the isolated partitions. For those hosts
:class:`EcrKeychain` answers with a token from the ECR API of that region (no
credential helper binary); every other registry goes to the wrapped keychain.

A token is valid for 12 hours; :class:`EcrTokens` keeps it per (account, region,
FIPS) until shortly before it expires, so warm invocations ask ECR again only
twice a day.
"""
from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from engine.authn import Credential, Keychain
from engine.clock import Clock, SystemClock
from engine.errors import ConfigurationError
from engine.name import Registry
from engine.singleflight import SingleFlight
from handler.aws.clients import aws_errors, aws_failure

_ECR_HOST = re.compile(
    r"(?P<account>\d{12})\.dkr[.-]ecr(?P<fips>-fips)?\.(?P<region>[a-z0-9][a-z0-9-]*)\."
    r"(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|on\.aws|on\.amazonwebservices\.com\.cn"
    r"|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)")
RENEW_BEFORE = 15 * 60.0  # seconds before expiry when a cached token is no longer handed out


@dataclass(frozen=True)
class EcrRegistry:
    account: str
    region: str
    fips: bool


def parse_ecr_host(name: str) -> EcrRegistry | None:
    """The account, region and FIPS flag of a private ECR registry name, else None."""
    match = _ECR_HOST.fullmatch(name.lower())
    if match is None:
        return None
    return EcrRegistry(match["account"], match["region"], bool(match["fips"]))


# (region, fips) -> a boto3 ECR client for that region
ClientFor = Callable[[str, bool], object]


class EcrTokens:
    """Authorization tokens per ECR registry, fetched at most once at a time per registry."""

    def __init__(self, client_for: ClientFor, *, clock: Clock | None = None):
        self._client_for = client_for
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._fetching: SingleFlight[EcrRegistry, Credential] = SingleFlight()
        self._cached: dict[EcrRegistry, tuple[Credential, float]] = {}
        self.fetches = 0

    def credential(self, registry: EcrRegistry, host: str) -> Credential:
        return self._fresh(registry) or self._fetching.do(registry, lambda: self._refill(registry, host))

    def _fresh(self, registry: EcrRegistry) -> Credential | None:
        with self._lock:
            cached = self._cached.get(registry)
        if cached is not None and self._clock.now() < cached[1] - RENEW_BEFORE:
            return cached[0]
        return None

    def _refill(self, registry: EcrRegistry, host: str) -> Credential:
        # A fetch for this registry may have ended between _fresh and this call's start.
        fresh = self._fresh(registry)
        if fresh is not None:
            return fresh
        credential, expires_at = self._fetch(registry, host)
        with self._lock:
            self._cached[registry] = (credential, expires_at)
        return credential

    def _fetch(self, registry: EcrRegistry, host: str) -> tuple[Credential, float]:
        where = f"ecr:GetAuthorizationToken for {host}"
        try:
            client = self._client_for(registry.region, registry.fips)
            # No registryIds (deprecated): the token is good for every registry the role may read.
            answer = client.get_authorization_token()
        except aws_errors() as exc:
            raise aws_failure(where, exc) from None
        with self._lock:
            self.fetches += 1
        data = (answer.get("authorizationData") or [{}])[0]
        username, password = _decode(data.get("authorizationToken", ""), where)
        expires = data.get("expiresAt")
        expires_at = expires.timestamp() if isinstance(expires, datetime) else self._clock.now() + 3600.0
        return Credential(username=username, password=password, source=f"ecr {registry.region}"), expires_at


class EcrKeychain:
    """ECR hosts through :class:`EcrTokens`; every other registry through ``fallback``."""

    def __init__(self, fallback: Keychain, tokens: EcrTokens):
        self._fallback = fallback
        self._tokens = tokens

    def resolve(self, registry: Registry, repository: str) -> Credential | None:
        ecr = parse_ecr_host(registry.name)
        if ecr is None:
            return self._fallback.resolve(registry, repository)
        return self._tokens.credential(ecr, registry.name)

    def __repr__(self) -> str:
        return f"EcrKeychain(fallback={self._fallback!r})"


def _decode(token: str, where: str) -> tuple[str, str]:
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{where}: the token is not base64 of \"user:password\"") from None
    username, colon, password = text.partition(":")
    if not colon or not username or not password:
        raise ConfigurationError(f"{where}: the token is not base64 of \"user:password\"")
    return username, password
