"""Authentication as a layer: a Transport that pings its registry once, then sends every request
to it with the right scheme and credentials.

    ping once (ping.py): the scheme that works, and the challenges
    → no challenge: the request as it is
    → Basic: the repository's credential on each request
    → Bearer: one token for every planned repository with the same credential (a scope chunk of
      up to 100), from the token cache; on 401 (or 400/431 to a combined token, which a front end
      may find too large) drop the token, fetch one for this repository alone, and send once more
The registry's ping, and each token request, are asked for once: a failure is remembered, and every
later request of the registry (or of that token) raises it again without asking.

``prime()`` is the up-front handshake of a scan: the ping and every token the planned repositories
need (side by side when there are several), while connections for the lookups open beside them.
A fleet primes in two steps: ``prime(tokens=False)`` (the ping and the connections) as soon as a
listing names the registry, ``plan()`` as further listings name more repositories, then
``prime_tokens()`` once every listing is in, so one token covers every repository of the run.
No lock is held while a request is out or a credential helper runs: the memos are single-flight.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

from .authn import ANONYMOUS_KEYCHAIN, Credential, Keychain
from .bearer import basic_authorization, fetch_token
from .challenge import Challenge, find, parse_challenges
from .clock import Clock, SystemClock
from .errors import RegistryError, SpyglassError
from .name import Registry
from .ping import Ping, ping
from .scope import pull_scope, scope_chunks
from .singleflight import SingleFlight
from .tlsconfig import TLSMode
from .tokens import MemoryTokenCache, Token, TokenCache, TokenKey
from .transport import Request, Response, Transport

log = logging.getLogger("spyglass.auth")
_REPOSITORY_PATH = re.compile(r"/v2/(?P<repository>.+)/(?:manifests|blobs|tags)/")

# (base_url, count): open up to count idle connections to base_url (HttpPools.open_connections)
OpenConnections = Callable[[str, int], object]


@dataclass(frozen=True)
class _Auth:
    headers: dict[str, str]
    key: TokenKey | None = None
    token: Token | None = None

    @property
    def combined(self) -> bool:
        return self.key is not None and len(self.key.scopes) > 1


class AuthTransport:
    """Requests to one registry, authenticated; requests to other hosts pass through untouched.

    ``repositories`` are the ones a scan will ask about: knowing them up front lets one token
    cover them all. ``inner`` carries the ping and token requests as well as the registry's.
    """

    def __init__(self, inner: Transport, registry: Registry, *, mode: TLSMode = TLSMode.VERIFY,
                 keychain: Keychain = ANONYMOUS_KEYCHAIN, token_cache: TokenCache | None = None,
                 clock: Clock | None = None, repositories: Iterable[str] = (),
                 open_connections: OpenConnections | None = None):
        self.registry = registry
        self._inner = inner
        self._mode = mode
        self._insecure = mode is TLSMode.INSECURE
        self._keychain = keychain
        self._clock = clock or SystemClock()
        self._tokens = token_cache or MemoryTokenCache(clock=self._clock)
        self._planned = frozenset(repositories)  # grows by plan() until the tokens are primed
        self._open_connections = open_connections
        self._pinged: SingleFlight[None, Ping] = SingleFlight(memo=True)
        self._credentials: SingleFlight[str, Credential | None] = SingleFlight(memo=True)
        self._chunks: SingleFlight[str, list[tuple[str, ...]]] = SingleFlight(memo=True)  # by credential identity
        self._failed_tokens: dict[TokenKey, RegistryError] = {}
        self._lock = threading.Lock()  # guards _failed_tokens, and the plan while it grows

    # -- the layer -------------------------------------------------------------

    def round_trip(self, request: Request) -> Response:
        if urlsplit(request.url).netloc != self.registry.host:
            return self._inner.round_trip(request)
        found = self._ping()
        request = _with_scheme(request, found.base_url)
        match = _REPOSITORY_PATH.match(urlsplit(request.url).path)
        repository = match["repository"] if match else ""
        auth = self._authorize(repository, found)
        response = self._inner.round_trip(_with_headers(request, auth.headers))
        if response.status == 401 or (response.status in (400, 431) and auth.combined):
            better = self._reauthorize(repository, auth, response, found)
            if better is not None:
                response = self._inner.round_trip(_with_headers(request, better.headers))
        return response

    # -- the up-front handshake ------------------------------------------------

    def prime(self, connections: int = 0, *, tokens: bool = True) -> None:
        """Ping, and fetch the token(s) for every planned repository (unless tokens is False),
        opening up to `connections` connections meanwhile (the ping's own is one of them). Never
        raises: a failure is remembered, and every request of this registry reports it."""
        extra = connections - 1 if self._open_connections is not None else 0
        planned = self._planned_tokens if tokens else _nothing
        if extra < 1:
            (self.prime_tokens if tokens else self._ping_only)()
        elif self._mode.verifies:  # https comes first: its connections open beside the ping
            _side_by_side([self.prime_tokens if tokens else self._ping_only, lambda: self._open(f"https://{self.registry.host}", extra)])
            base_url = self._quietly(lambda: self._ping().base_url)
            if base_url is not None and base_url.startswith("http:"):  # a loopback registry without TLS
                self._open(base_url, extra)
        else:  # an insecure host's scheme is known only once the ping found it
            base_url = self._quietly(lambda: self._ping().base_url)
            if base_url is not None:
                _side_by_side([planned, lambda: self._open(base_url, extra)])

    def _ping_only(self) -> None:
        self._quietly(self._ping)

    @property
    def planned(self) -> frozenset[str]:
        with self._lock:
            return self._planned

    def plan(self, repositories: Iterable[str]) -> None:
        """More repositories for the tokens; only before prime_tokens() and the first request."""
        with self._lock:
            self._planned = self._planned | frozenset(repositories)
            self._chunks = SingleFlight(memo=True)  # computed again from the larger plan

    def prime_tokens(self) -> None:
        """The ping (once), then every token the planned repositories need. Never raises."""
        if self._quietly(self._ping) is not None:
            self._planned_tokens()

    def _planned_tokens(self) -> None:
        """Every token the planned repositories need: one per (credential, scope chunk)."""
        firsts = self._quietly(self._one_repository_per_token) or []
        found = self._ping()
        _side_by_side([lambda r=r: self._quietly(lambda: self._authorize(r, found)) for r in firsts])

    def _one_repository_per_token(self) -> list[str]:
        firsts: dict[tuple, str] = {}
        with self._lock:
            planned = sorted(self._planned)
        for repository in planned:
            credential = self._credential(repository)
            firsts.setdefault((_identity(credential), self._scopes_with(repository, credential)), repository)
        return list(firsts.values())

    def _open(self, base_url: str, count: int) -> None:
        try:
            self._open_connections(base_url, count)
        except Exception:  # noqa: BLE001 - only a head start is lost: lookups connect on their own
            log.debug("opening connections to %s failed", self.registry.name, exc_info=True)

    @staticmethod
    def _quietly(call):
        """call's result, or None when it failed: the failure is remembered for the lookups to report."""
        try:
            return call()
        except SpyglassError:
            return None

    # -- credentials and tokens ------------------------------------------------

    def _ping(self) -> Ping:
        return self._pinged.do(None, lambda: ping(self._inner, self.registry.host, mode=self._mode))

    def _authorize(self, repository: str, found: Ping) -> _Auth:
        bearer = find(found.challenges, "bearer")
        credential = self._credential(repository) if repository else None
        if bearer is not None:
            return self._bearer(bearer, self._scopes_with(repository, credential), credential)
        if find(found.challenges, "basic") is not None and credential is not None:
            return _Auth({"Authorization": basic_authorization(credential)})
        return _Auth({})

    def _reauthorize(self, repository: str, used: _Auth, refused: Response, found: Ping) -> _Auth | None:
        """After a refusal: a token for this repository alone, fetched anew; None when there is none."""
        if used.key is not None and used.token is not None:
            self._tokens.discard(used.key, used.token)
        challenges = parse_challenges(refused.header_values("WWW-Authenticate"))
        bearer = find(challenges, "bearer") or find(found.challenges, "bearer")
        if bearer is None or not bearer.param("realm") or not repository:
            return None
        return self._bearer(bearer, (pull_scope(repository),), self._credential(repository))

    def _bearer(self, challenge: Challenge, scopes: tuple[str, ...], credential: Credential | None) -> _Auth:
        key = TokenKey(challenge.param("realm") or "", challenge.param("service") or "", scopes,
                       _identity(credential))
        with self._lock:
            failed = self._failed_tokens.get(key)
        if failed is not None:
            raise failed
        try:
            token = self._tokens.get_or_fetch(key, lambda: fetch_token(
                self._inner, challenge, scopes, credential, registry_host=self.registry.host,
                insecure=self._insecure, clock=self._clock))
        except RegistryError as exc:
            with self._lock:
                self._failed_tokens.setdefault(key, exc)
            raise
        return _Auth({"Authorization": f"Bearer {token.value}"}, key, token)

    def _scopes_with(self, repository: str, credential: Credential | None) -> tuple[str, ...]:
        """The chunk of planned scopes (same credential) that holds this repository's scope."""
        identity = _identity(credential)
        with self._lock:
            planned, memo = self._planned, self._chunks
        chunks = memo.do(identity, lambda: scope_chunks(
            r for r in planned if _identity(self._credential(r)) == identity))
        wanted = pull_scope(repository)
        return next((chunk for chunk in chunks if wanted in chunk), (wanted,))

    def _credential(self, repository: str) -> Credential | None:
        return self._credentials.do(repository, lambda: self._keychain.resolve(self.registry, repository))


def _nothing() -> None:
    """No tokens now: prime_tokens() fetches them later."""


def _identity(credential: Credential | None) -> str:
    return credential.identity if credential is not None else ""


def _with_scheme(request: Request, base_url: str) -> Request:
    """The request sent where the ping answered (http for an insecure host that has no TLS)."""
    scheme = base_url.split("://", 1)[0]
    current, rest = request.url.split("://", 1)
    return request if current == scheme else dataclasses.replace(request, url=f"{scheme}://{rest}")


def _with_headers(request: Request, headers: dict[str, str]) -> Request:
    return dataclasses.replace(request, headers={**request.headers, **headers}) if headers else request


def _side_by_side(calls: list[Callable[[], object]]) -> None:
    """Run the calls at once: the first in this thread, the others in threads joined before returning."""
    threads = [threading.Thread(target=call, name="spyglass-prime", daemon=True) for call in calls[1:]]
    for thread in threads:
        thread.start()
    try:
        if calls:
            calls[0]()
    finally:
        for thread in threads:
            thread.join()
