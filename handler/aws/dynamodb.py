"""One DynamoDB table, three key spaces: shared registry tokens, recent tag digests, and the last
delivered report per endpoint (or fleet).

    pk = "token#<TokenKey.digest()>"    token, expires_at, expires (TTL)
    pk = "digest#<sha256(run, DigestKey.digest())>"  digest, media_type, expires_at, expires (TTL)
    pk = "notify#<sha256(endpoint)>"    endpoint, fingerprint, scan_id, delivered_at

No key holds a secret or a realm/scope/repository in clear text; the token itself is an
attribute, encrypted at rest by the table's KMS setting. ``expires`` is the
table's TTL attribute; TTL deletion can lag by days, so every read checks
``expires_at`` as well. Token and notify writes are conditional: a token with a later
expiry, or state from a later scan, is never overwritten by an older one. A digest is
written plainly: the last HEAD is the newest answer. Digests are kept per run (the
correlation id: a Step Functions execution's name), so the batches of one run share them
and the next run asks again, however soon it starts: a tag moved between two runs is seen.

The caches must never fail a scan: after the first DynamoDB error a store logs
one warning and stays out of the way for the rest of the invocation (the
in-memory token cache in front of it keeps working; a digest is then asked of the registry).
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from dataclasses import dataclass
from typing import Callable

from engine.clock import Clock, SystemClock
from engine.digestcache import DEFAULT_TTL, DigestKey
from engine.mediatypes import Descriptor
from engine.tokens import Token, TokenKey
from handler.aws.clients import aws_errors, error_code

log = logging.getLogger("spyglass.aws")

TOKEN_PREFIX = "token#"  # nosec B105 # an item key prefix, not a password
DIGEST_PREFIX = "digest#"
DIGEST_FORM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+")  # the OCI digest grammar
NOTIFY_PREFIX = "notify#"
TTL_ATTRIBUTE = "expires"
NOTIFY_STATE_DAYS = 400  # state for an endpoint that is no longer scanned goes away after this


class _CacheTable:
    """What both caches share: the table, counts for the log, and degrading after the first error."""

    what = "cache"

    def __init__(self, table: str, *, client, clock: Clock | None = None):
        self._table = table
        self._client = client
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self.degraded = False
        self.reads = self.hits = self.writes = 0

    def _degrade(self, what: str, exc: BaseException) -> None:
        with self._lock:
            first, self.degraded = not self.degraded, True
        if first:
            log.warning("%s table %s: %s failed (%s); %s", self.what, self._table, what, error_code(exc),
                        self.without, extra={"table": self._table})
        return None

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def stats(self) -> dict:
        return {"reads": self.reads, "hits": self.hits, "writes": self.writes, "degraded": self.degraded}


class DynamoTokenStore(_CacheTable):
    """``engine.tokens.TokenStore`` on a DynamoDB table (memory is consulted before it)."""

    what = "token cache"
    without = "using the in-memory cache only"

    def get(self, key: TokenKey) -> Token | None:
        if self.degraded:
            return None
        try:
            answer = self._client.get_item(TableName=self._table, Key=_pk(TOKEN_PREFIX + key.digest()),
                                           ProjectionExpression="#t, expires_at",
                                           ExpressionAttributeNames={"#t": "token"})
        except aws_errors() as exc:
            return self._degrade("read", exc)
        self._count("reads")
        token = _token(answer.get("Item"))
        if token is None or token.expires_at <= self._clock.now():
            return None  # absent, malformed, or expired but not yet removed by TTL
        self._count("hits")
        return token

    def put(self, key: TokenKey, token: Token) -> None:
        if self.degraded:
            return
        item = {**_pk(TOKEN_PREFIX + key.digest()), "token": {"S": token.value},
                "expires_at": {"N": repr(float(token.expires_at))},
                TTL_ATTRIBUTE: {"N": str(math.ceil(token.expires_at))}}
        try:
            self._client.put_item(TableName=self._table, Item=item,
                                  ConditionExpression="attribute_not_exists(pk) OR expires_at < :e",
                                  ExpressionAttributeValues={":e": item["expires_at"]})
        except aws_errors() as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                self._degrade("write", exc)
            return  # a concurrent writer stored a token that lives longer: theirs wins
        self._count("writes")


CLAIM_SECONDS = 5.0  # how long the other batches of a run wait for the one that claimed a tag's HEAD
POLL_SECONDS = 0.2
_CLAIMED = object()  # another batch is asking the registry for this tag right now
# Absent, or neither a live claim nor an unexpired digest (a malformed item counts as neither).
CLAIMABLE = ("attribute_not_exists(pk) OR NOT ((attribute_type(claim_until, :n) AND claim_until > :now) "
             "OR (attribute_type(expires_at, :n) AND expires_at > :now))")


class DynamoDigestCache(_CacheTable):
    """``engine.digestcache.DigestCache`` on the same table: every batch of the fleet run ``run``
    sees the digests the others looked up, each for ``ttl`` seconds after its HEAD.

    The batches of a run start together, so on a miss a batch first claims the tag (a conditional
    write): the batch whose claim succeeds sends the HEAD and its put() replaces the claim; the
    others read again every POLL_SECONDS for up to CLAIM_SECONDS and take its answer. A claim that
    ends without one (that HEAD failed: abandon() removes it) lets each waiter ask the registry itself.
    """

    what = "digest cache"
    without = "asking the registries"

    def __init__(self, table: str, *, run: str, client, clock: Clock | None = None, ttl: float = DEFAULT_TTL,
                 claim_seconds: float = CLAIM_SECONDS):
        super().__init__(table, client=client, clock=clock)
        self._run = run
        self._ttl = ttl
        self._claim_seconds = claim_seconds
        self.claims = self.waits = 0

    def stats(self) -> dict:
        return super().stats() | {"claims": self.claims, "waits": self.waits}

    def _key(self, key: DigestKey) -> dict:
        return _pk(DIGEST_PREFIX + hashlib.sha256(f"{self._run}\n{key.digest()}".encode()).hexdigest())

    def get(self, key: DigestKey) -> Descriptor | None:
        if self.degraded:
            return None
        found = self._read(key)
        if isinstance(found, Descriptor):
            return found
        if found is None and self._claim(key):
            return None  # ours to ask the registry
        return self._wait(key)

    def put(self, key: DigestKey, descriptor: Descriptor) -> None:
        if self.degraded:
            return
        expires_at = self._clock.now() + self._ttl
        item = {**self._key(key), "digest": {"S": descriptor.digest},
                "media_type": {"S": descriptor.media_type}, "expires_at": {"N": repr(float(expires_at))},
                TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at))}}
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except aws_errors() as exc:
            self._degrade("write", exc)
            return
        self._count("writes")

    def abandon(self, key: DigestKey) -> None:
        """This batch's HEAD failed: remove its claim, so the waiting batches ask at once."""
        if self.degraded:
            return
        try:
            self._client.delete_item(TableName=self._table, Key=self._key(key),
                                     ConditionExpression="attribute_exists(claim_until) AND attribute_not_exists(digest)")
        except aws_errors() as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                self._degrade("release", exc)

    def _read(self, key: DigestKey):
        """The descriptor, _CLAIMED, or None (absent, expired, malformed, or the table failed)."""
        try:
            answer = self._client.get_item(TableName=self._table, Key=self._key(key), ConsistentRead=True)
        except aws_errors() as exc:
            return self._degrade("read", exc)
        self._count("reads")
        item, now = answer.get("Item"), self._clock.now()
        if item and "digest" not in item and "claim_until" in item:
            return _CLAIMED if _number(item["claim_until"]) > now else None
        found = _descriptor(item)
        if found is None or found[1] <= now:
            return None  # absent, malformed, or expired but not yet removed by TTL
        self._count("hits")
        return found[0]

    def _claim(self, key: DigestKey) -> bool:
        """Whether this batch may send the HEAD (it may whenever the table cannot say otherwise)."""
        now = self._clock.now()
        until = now + self._claim_seconds
        item = {**self._key(key), "claim_until": {"N": repr(float(until))},
                TTL_ATTRIBUTE: {"N": str(math.ceil(until + self._ttl))}}
        try:
            self._client.put_item(TableName=self._table, Item=item,
                                  ConditionExpression=CLAIMABLE,
                                  ExpressionAttributeValues={":now": {"N": repr(float(now))}, ":n": {"S": "N"}})
        except aws_errors() as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            self._degrade("claim", exc)
            return True
        self._count("claims")
        return True

    def _wait(self, key: DigestKey) -> Descriptor | None:
        """The claiming batch's answer, or None when its claim ends without one."""
        self._count("waits")
        end = self._clock.monotonic() + self._claim_seconds
        while self._clock.monotonic() < end and not self.degraded:
            self._clock.sleep(POLL_SECONDS)
            found = self._read(key)
            if found is not _CLAIMED:
                return found
        return None


def _number(attribute: dict) -> float:
    try:
        return float(attribute["N"])
    except (KeyError, TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class DeliveredState:
    fingerprint: str
    scan_id: str
    delivered_at: float


class NotifyState:
    """The fingerprint of the last report delivered for each endpoint."""

    def __init__(self, table: str, *, client, clock: Clock | None = None):
        self._table = table
        self._client = client
        self._clock = clock or SystemClock()

    @property
    def table(self) -> str:
        return self._table

    def last(self, endpoint: str) -> DeliveredState | None:
        """The last delivered state; raises the AWS error for the caller to decide on."""
        answer = self._client.get_item(TableName=self._table, Key=_pk(_notify_key(endpoint)), ConsistentRead=True)
        item = answer.get("Item") or {}
        try:
            return DeliveredState(item["fingerprint"]["S"], item["scan_id"]["S"], float(item["delivered_at"]["N"]))
        except (KeyError, TypeError, ValueError):
            return None

    def record(self, endpoint: str, state: DeliveredState) -> bool:
        """Store state unless a later delivery is already recorded; False when it was."""
        item = {**_pk(_notify_key(endpoint)), "endpoint": {"S": endpoint}, "fingerprint": {"S": state.fingerprint},
                "scan_id": {"S": state.scan_id}, "delivered_at": {"N": repr(float(state.delivered_at))},
                TTL_ATTRIBUTE: {"N": str(math.ceil(self._clock.now() + NOTIFY_STATE_DAYS * 86400))}}
        try:
            self._client.put_item(TableName=self._table, Item=item,
                                  ConditionExpression="attribute_not_exists(pk) OR delivered_at <= :t",
                                  ExpressionAttributeValues={":t": item["delivered_at"]})
        except aws_errors() as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


class DeliveredFingerprints:
    """NotifyState as handler.notifypolicy's FingerprintStore, for one delivery: the scan (or fleet run)
    that delivers and when. The table never fails the invocation: a failed read is a warning and a
    notification (a repeat beats a loss), a failed write a warning (the next run may notify again)."""

    def __init__(self, state: NotifyState, *, scan_id: str, delivered_at: Callable[[], float], what: str):
        self._state = state
        self._scan_id = scan_id
        self._delivered_at = delivered_at
        self._what = what  # "report", "fleet report": what the log lines name
        self._table = state.table

    def last(self, key: str) -> str | None:
        try:
            delivered = self._state.last(key)
        except aws_errors() as exc:
            log.warning("read the last delivered %s from %s failed (%s); notifying anyway", self._what,
                        self._table, error_code(exc), extra={"table": self._table})
            return None
        return delivered.fingerprint if delivered else None

    def record(self, key: str, fingerprint: str) -> str:
        try:
            if not self._state.record(key, DeliveredState(fingerprint, self._scan_id, self._delivered_at())):
                log.info("a later delivery is already recorded for this %s", self._what)
        except aws_errors() as exc:
            log.warning("record the delivered %s failed (%s); the next run may notify again", self._what,
                        error_code(exc), extra={"table": self._table})
            return f"record the delivered {self._what} in {self._table}: {error_code(exc)}"
        return ""


def _pk(value: str) -> dict:
    return {"pk": {"S": value}}


def _notify_key(endpoint: str) -> str:
    return NOTIFY_PREFIX + hashlib.sha256(endpoint.encode()).hexdigest()


def _token(item: dict | None) -> Token | None:
    if not item:
        return None
    try:
        return Token(item["token"]["S"], float(item["expires_at"]["N"]))
    except (KeyError, TypeError, ValueError):
        log.warning("token cache: ignoring a malformed item")
        return None


def _descriptor(item: dict | None) -> tuple[Descriptor, float] | None:
    if not item:
        return None
    try:
        digest = item["digest"]["S"]
        if not DIGEST_FORM.fullmatch(digest):
            raise ValueError("not a digest")
        return Descriptor(digest, item.get("media_type", {}).get("S", "")), float(item["expires_at"]["N"])
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("digest cache: ignoring a malformed item")
        return None


def token_store_for_table(table: str, *, clients=None, clock: Clock | None = None) -> DynamoTokenStore:
    """The CLI's and the Action's --token-cache dynamodb:TABLE, once the settings named the table."""
    from handler.aws.clients import AwsClients

    clients = clients or AwsClients()
    return DynamoTokenStore(table, client=clients.client("dynamodb"), clock=clock)
