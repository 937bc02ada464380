"""Registry operations for one registry: the digest behind a tag, and a manifest's body.

Outline of one manifest request:
    ping once per registry (scheme and challenges)
    → Bearer: one token for every repository the scan will ask about with the same
      credential (chunked scopes), from the token cache
    → Basic: the repository's credential on each request
    → HEAD the manifest; on 401 drop the token and retry once with a token for this
      repository alone (the server may not grant combined scopes, or the token expired)
    → no Docker-Content-Digest on the HEAD: GET and hash the body
A scan calls handshake() first: the ping and every token the planned repositories
need, while the lookups' connections open, so that its lookups start with both ready.
Temporary failures (5xx, resets, 429 with a Retry-After that fits) are retried with
capped exponential backoff inside the deadline, for the ping and the token request
as for the manifest requests. A ping or token request that still fails is
remembered: the registry's other lookups get the same error without asking again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar
from urllib.parse import urlsplit

from .authn import ANONYMOUS_KEYCHAIN, Credential, Keychain
from .bearer import basic_authorization, fetch_token
from .challenge import Challenge, find, parse_challenges
from .clock import Clock, Deadline, SystemClock
from .errors import RateLimitedError, RegistryError, RegistryTimeoutError
from .mediatypes import MANIFEST_ACCEPT, Descriptor, is_index
from .name import Registry
from .ping import Ping, ping
from .status import raise_for_status
from .tokens import MemoryTokenCache, Token, TokenCache, TokenKey
from .tlsconfig import TLSMode
from .transport import HttpPools, Response

# A combined token grows with its scopes, and it travels in a request header: front ends such as
# nginx refuse header lines over 8 KiB by default. 100 repositories keep both the token URL and the
# token itself under that; a refusal (400/431) still falls back to a single-repository token.
MAX_SCOPES_PER_TOKEN = 100
MAX_SCOPE_CHARS = 4000
RETRY_ATTEMPTS = 3
BACKOFF_BASE, BACKOFF_CAP = 0.25, 2.0
MAX_RETRY_AFTER = 60.0  # a longer pause asked for is reported as rate-limited at once
RATE_LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining")
T = TypeVar("T")
log = logging.getLogger("spyglass.registry")


@dataclass
class RegistryStats:
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("ping", "token", "head", "get"), 0))
    rate_limit: dict[str, str] = field(default_factory=dict)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def scope_chunks(repositories: Iterable[str]) -> list[tuple[str, ...]]:
    """Pull scopes for the repositories, in chunks small enough for one token URL each."""
    chunks: list[tuple[str, ...]] = []
    current: list[str] = []
    length = 0
    for repository in sorted(set(repositories)):
        scope = pull_scope(repository)
        if current and (len(current) >= MAX_SCOPES_PER_TOKEN or length + len(scope) > MAX_SCOPE_CHARS):
            chunks.append(tuple(current))
            current, length = [], 0
        current.append(scope)
        length += len(scope) + 7  # "&scope="
    if current:
        chunks.append(tuple(current))
    return chunks


@dataclass(frozen=True)
class _Auth:
    headers: dict[str, str]
    key: TokenKey | None = None
    token: Token | None = None


class RegistryClient:
    """Talks to one registry; safe to share between threads.

    ``repositories`` are the ones the scan will ask about: knowing them up front
    lets one token cover them all.
    """

    def __init__(self, registry: Registry, *, pools: HttpPools, keychain: Keychain = ANONYMOUS_KEYCHAIN,
                 token_cache: TokenCache | None = None, clock: Clock | None = None,
                 deadline: Deadline | None = None, repositories: Iterable[str] = (),
                 sleep_jitter: Callable[[float], float] = lambda cap: random.uniform(0, cap)):  # nosec B311 # jitter
        self.registry = registry
        self._pools = pools
        self._keychain = keychain
        self._clock = clock or SystemClock()
        self._tokens = token_cache or MemoryTokenCache(clock=self._clock)
        self._deadline = deadline or Deadline(self._clock, None)
        self._planned = frozenset(repositories)
        self._jitter = sleep_jitter
        address = urlsplit(f"//{registry.host}")
        self._tls_mode = pools.tls.mode_for(address.hostname or registry.host, address.port)
        self._insecure = self._tls_mode is TLSMode.INSECURE
        self._lock = threading.RLock()
        self._ping: Ping | None = None
        self._ping_error: RegistryError | None = None
        self._token_errors: dict[TokenKey, RegistryError] = {}
        self._credentials: dict[str, Credential | None] = {}
        self._chunks: dict[str, list[tuple[str, ...]]] = {}  # credential identity -> scope chunks
        self.stats = RegistryStats()

    # -- public operations ---------------------------------------------------

    def handshake(self, connections: int = 0) -> None:
        """Ping, and fetch the token(s) for every planned repository, opening up to `connections`
        connections meanwhile. Never raises: a failure is remembered, and every lookup of this
        registry reports it."""
        extra = connections - 1  # the ping's own connection serves a lookup too
        # A verified host speaks https: its connections open beside the ping. An insecure host's
        # scheme is known only once the ping found it.
        opening = None if self._insecure else self._open_beside(f"https://{self.registry.host}", extra)
        try:
            try:
                base_url = self._ping_once().base_url
            except RegistryError:
                return
            opening = opening or self._open_beside(base_url, extra)
            firsts = self._one_repository_per_token()
            if len(firsts) <= 1:
                for repository in firsts:
                    self._authorize_quietly(repository)
            else:  # several credentials, or more repositories than one token holds: ask side by side
                with ThreadPoolExecutor(max_workers=len(firsts), thread_name_prefix="spyglass-token") as side:
                    list(side.map(self._authorize_quietly, firsts))
        finally:
            if opening is not None:
                opening.join()

    def _one_repository_per_token(self) -> list[str]:
        """A planned repository for each token the planned repositories need (credential, scope chunk)."""
        firsts: dict[tuple, str] = {}
        for repository in sorted(self._planned):
            credential = self._credential(repository)
            identity = credential.identity if credential is not None else ""
            firsts.setdefault((identity, self._scopes_with(repository, credential)), repository)
        return list(firsts.values())

    def _authorize_quietly(self, repository: str) -> None:
        try:
            self._authorize(repository)
        except RegistryError:
            pass  # remembered per token: this repository's lookups report it

    def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """The digest and media type the registry serves for repository:reference."""
        response = self._manifest_request("HEAD", repository, reference)
        digest = response.header("Docker-Content-Digest")
        if digest:
            return Descriptor(digest, _media_type(response))
        descriptor, _ = self.get_manifest(repository, reference)
        return descriptor

    def get_manifest(self, repository: str, reference: str) -> tuple[Descriptor, bytes]:
        response = self._manifest_request("GET", repository, reference)
        digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        return Descriptor(digest, _media_type(response)), response.body

    def index_children(self, repository: str, reference: str) -> frozenset[str]:
        """Digests of the platform manifests an index lists (empty for a plain manifest)."""
        descriptor, body = self.get_manifest(repository, reference)
        if not is_index(descriptor.media_type):
            return frozenset()
        try:
            manifests = json.loads(body).get("manifests") or []
            return frozenset(m["digest"] for m in manifests if isinstance(m, dict) and isinstance(m.get("digest"), str))
        except (ValueError, AttributeError):
            raise RegistryError(f"read index {self.registry.name}/{repository}:{reference}: not valid JSON",
                                registry=self.registry.name, repository=repository) from None

    # -- one manifest request, with auth and retries -------------------------

    def _manifest_request(self, method: str, repository: str, reference: str) -> Response:
        kind = method.lower()
        subject = f"{self.registry.name}/{repository}:{reference}" if ":" not in reference \
            else f"{self.registry.name}/{repository}@{reference}"
        operation = f"{method} manifest {subject}"
        auth = self._authorize(repository)
        response = self._send(kind, method, repository, reference, auth, operation)
        if response.status == 401 or (response.status in (400, 431) and _combined(auth)):
            auth = self._reauthorize(repository, auth, response)
            response = self._send(kind, method, repository, reference, auth, operation)
        raise_for_status(response, operation, registry=self.registry.name, repository=repository)
        return response

    def _send(self, kind, method, repository, reference, auth: _Auth, operation) -> Response:
        url = f"{self._base_url()}/v2/{repository}/manifests/{reference}"
        headers = {"Accept": MANIFEST_ACCEPT, **auth.headers}

        def attempt() -> Response:
            response = self._pools.request(method, url, headers=headers, timeout=self._deadline.remaining(),
                                           operation=operation)
            self._note_rate_limit(response)
            if response.status == 429 or response.status >= 500:  # raised here so that _retried sees it
                raise_for_status(response, operation, registry=self.registry.name, repository=repository)
            return response

        return self._retried(kind, operation, attempt)

    def _retried(self, kind: str, operation: str, call: Callable[[], T]) -> T:
        """call, again after temporary failures (5xx, resets, a 429 whose Retry-After fits) within the deadline."""
        for attempt in range(RETRY_ATTEMPTS):
            last = attempt == RETRY_ATTEMPTS - 1
            if self._deadline.expired():
                raise RegistryTimeoutError(f"{operation}: scan deadline reached", registry=self.registry.name)
            self._count(kind)
            try:
                return call()
            except RegistryTimeoutError:
                raise
            except RateLimitedError as exc:
                if last or exc.retry_after is None or not self._wait(exc.retry_after):
                    raise
            except RegistryError as exc:
                if last or not exc.temporary or not self._backoff(attempt):
                    raise
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> bool:
        return self._wait(self._jitter(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)))

    def _wait(self, seconds: float) -> bool:
        """Sleep if the deadline leaves room for the wait and a request after it."""
        remaining = self._deadline.remaining()
        if seconds > MAX_RETRY_AFTER or (remaining is not None and seconds >= remaining * 0.8):
            return False
        self._clock.sleep(seconds)
        return True

    # -- authentication ------------------------------------------------------

    def _authorize(self, repository: str) -> _Auth:
        ping_result = self._ping_once()
        bearer = find(ping_result.challenges, "bearer")
        credential = self._credential(repository)
        if bearer is not None:
            return self._bearer(bearer, self._scopes_with(repository, credential), credential)
        if find(ping_result.challenges, "basic") is not None and credential is not None:
            return _Auth({"Authorization": basic_authorization(credential)})
        return _Auth({})

    def _reauthorize(self, repository: str, used: _Auth, refused: Response) -> _Auth:
        """After a refusal: a token for this repository alone, fetched anew."""
        if used.key is not None and used.token is not None:
            self._tokens.discard(used.key, used.token)
        challenges = parse_challenges(refused.header_values("WWW-Authenticate"))
        bearer = find(challenges, "bearer") or find(self._ping_once().challenges, "bearer")
        if bearer is None or not bearer.param("realm"):
            return used  # nothing better to try; the retry will produce the error
        return self._bearer(bearer, (pull_scope(repository),), self._credential(repository))

    def _bearer(self, challenge: Challenge, scopes: tuple[str, ...], credential: Credential | None) -> _Auth:
        identity = credential.identity if credential is not None else ""
        key = TokenKey(challenge.param("realm") or "", challenge.param("service") or "", scopes, identity)

        def fetch() -> Token:
            return self._retried("token", f"fetch token for {self.registry.name}", lambda: fetch_token(
                self._pools, challenge, scopes, credential, registry_host=self.registry.host,
                insecure=self._insecure, clock=self._clock, timeout=self._deadline.remaining()))

        with self._lock:
            failed = self._token_errors.get(key)
        if failed is not None:
            raise failed
        try:
            token = self._tokens.get_or_fetch(key, fetch)
        except RegistryError as exc:
            with self._lock:
                self._token_errors.setdefault(key, exc)
            raise
        return _Auth({"Authorization": f"Bearer {token.value}"}, key, token)

    def _scopes_with(self, repository: str, credential: Credential | None) -> tuple[str, ...]:
        """The chunk of planned scopes (same credential) that holds this repository's scope."""
        identity = credential.identity if credential is not None else ""
        wanted = pull_scope(repository)
        chunks = self._chunks.get(identity)
        if chunks is None:
            same = [r for r in self._planned if self._identity(r) == identity]
            chunks = self._chunks[identity] = scope_chunks(same)
        return next((chunk for chunk in chunks if wanted in chunk), (wanted,))

    def _identity(self, repository: str) -> str:
        credential = self._credential(repository)
        return credential.identity if credential is not None else ""

    def _credential(self, repository: str) -> Credential | None:
        with self._lock:
            if repository not in self._credentials:
                self._credentials[repository] = self._keychain.resolve(self.registry, repository)
            return self._credentials[repository]

    def _ping_once(self) -> Ping:
        with self._lock:
            if self._ping is None and self._ping_error is None:
                try:
                    self._ping = self._retried("ping", f"ping {self.registry.host}", lambda: ping(
                        self._pools, self.registry.host, mode=self._tls_mode, timeout=self._deadline.remaining()))
                except RegistryError as exc:
                    self._ping_error = exc
            if self._ping_error is not None:
                raise self._ping_error
            return self._ping

    def _base_url(self) -> str:
        return self._ping_once().base_url

    def _open_beside(self, base_url: str, count: int) -> threading.Thread | None:
        if count < 1:
            return None

        def open_connections() -> None:
            try:
                self._pools.open_connections(base_url, count, timeout=self._deadline.remaining())
            except Exception:  # noqa: BLE001 - only a head start is lost: lookups connect on their own
                log.debug("opening connections to %s failed", self.registry.name, exc_info=True)

        thread = threading.Thread(target=open_connections, name="spyglass-open", daemon=True)
        thread.start()
        return thread

    # -- bookkeeping ---------------------------------------------------------

    def _count(self, kind: str) -> None:
        with self._lock:
            self.stats.requests[kind] = self.stats.requests.get(kind, 0) + 1

    def _note_rate_limit(self, response: Response) -> None:
        seen = {name: response.header(name) for name in RATE_LIMIT_HEADERS if response.header(name)}
        if seen:
            with self._lock:
                self.stats.rate_limit.update(seen)


def _combined(auth: _Auth) -> bool:
    return auth.key is not None and len(auth.key.scopes) > 1


def _media_type(response: Response) -> str:
    return (response.header("Content-Type") or "").split(";", 1)[0].strip()
