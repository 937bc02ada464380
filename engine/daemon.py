"""Listing a Docker endpoint; the only module that talks to the Docker SDK.

The listing's reads go over engine/enginehttp.py (the standard library's HTTP, one SSL
context per set of TLS files per run) for tcp:// and unix:// endpoints; ssh:// and npipe://,
and every call of an update (engine/engineapi.py), go through the SDK.

A scan costs a constant number of Engine API calls whatever the number of
containers: one container list and one image list, each on its own connection
after that connection's version negotiation. The two chains run side by side,
so the listing costs one round trip less than the same four calls in a row.

The image store decides what a container's ImageID is. The classic store's is
the image config's digest, which no registry serves as a manifest; its RepoDigests
record the manifests it pushed or pulled. The containerd image store (dockerd's
`containerd-snapshotter` feature, the default of new installations from Docker 29)
names an image by the digest of its manifest or index, and lists a RepoDigest
for every name the image has, pushed or not. There, the ImageID (and, from
Engine 28, the platform manifest in the container list's ImageManifestDescriptor)
is a local digest in its own right, and stays one after the image lost its name
to a newer pull, or its record altogether (Engine 26 then answers 404 to the
image's inspect while the container list still carries the ImageID).

The two lists tell the store, so it costs no call: /info would say it too, but
the read-only proxy of docs/security.md refuses /info (it tells much about the
host), and it would be one call more. From Engine 28 the containerd store adds
descriptors to both lists; on any engine, an image whose ID is the digest of
one of its RepoDigests is the containerd store's, since a classic image ID is
its config's digest, which the manifest holds and so can never be. A daemon
whose lists show neither (every image nameless) is judged by the classic rules,
which at worst skip a container for want of a RepoDigest.

Per-container calls happen only for anomalies: with the classic store, an image
missing from the image list (removed, or listed under another filter); with
either store, a container whose configured reference the daemon replaced by an
image ID (the local tag moved since it started: the state ``docker pull``
without a recreate leaves, and Watchtower's monitor-only mode), whose
configured name only its inspect shows. Those calls
run side by side, up to the scan's concurrency, each on a connection of its own
(the two listing connections first, then new ones pinned to the negotiated
version): k of them cost ceil(k / concurrency) round trips, not k (plus TCP and
TLS once, for the new connections).
"""
from __future__ import annotations

import http.client
import socket
import ssl
import sys
import threading
from contextlib import contextmanager
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from .enginehttp import SCHEMES, EngineClient, EngineHTTPError, TLSContexts, TLSFiles, connection
from .errors import DaemonError, causes

_ID_PREFIX = "sha256:"
CLASSIC, CONTAINERD = "classic", "containerd"  # image stores


@dataclass(frozen=True)
class DaemonSettings:
    """How to reach one endpoint, in docker CLI terms (the caller reads the environment)."""

    host: str
    tls_verify: bool = False
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str  # the reference it was created from ("" when the daemon could not tell)
    image_id: str
    state: str  # running, exited, created, paused...
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    repo_digests: tuple[str, ...] = ()  # the image's RepoDigests ("repo@sha256:...")
    # With the containerd image store: the manifest or index digest the ImageID is, and from Engine
    # 28 the platform manifest the container runs; digests of its configured repository. Else ().
    manifest_digests: tuple[str, ...] = ()
    problem: str = ""  # a per-container lookup that failed: the container cannot be judged

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def listed_by_id(self) -> bool:
        """The daemon shows an image ID where the name was: only an inspect tells the configured name."""
        return _looks_like_id(self.image, self.image_id)


@dataclass(frozen=True)
class Listing:
    containers: tuple[ContainerInfo, ...]
    api_version: str
    image_store: str = CLASSIC  # classic | containerd


# (phase, done, in all), as engine.scan.Progress: this module reports connecting, listing, inspecting.
DaemonProgress = Callable[[str, int, int], None]
# Called with the wanted containers as the two lists show them, before any per-container call.
OnListed = Callable[[tuple[ContainerInfo, ...]], None]


class ContainerSource(Protocol):
    """What the scan needs from a daemon; tests may pass a fake."""

    endpoint: str

    def list_containers(self, wanted: Callable[[ContainerInfo], bool] | None = None, *, concurrency: int = 8,
                        progress: DaemonProgress | None = None, on_listed: OnListed | None = None) -> Listing: ...


# (settings, version) → a client (an enginehttp EngineClient, or the SDK's APIClient); version None asks
# the daemon for it. Tests pass a fake.
ClientFactory = Callable[..., object]


class DockerDaemon:
    """One endpoint's listing. ``tls_contexts``: the run's SSL contexts, shared by its endpoints
    (a new set when none is given); ``client_factory`` replaces the clients altogether (tests)."""

    def __init__(self, settings: DaemonSettings, *, client_factory: ClientFactory | None = None,
                 tls_contexts: TLSContexts | None = None):
        self.settings = settings
        self.endpoint = settings.host
        self._client_factory = client_factory or _listing_client_factory(settings, tls_contexts or TLSContexts())
        self._lock = threading.Lock()
        self._warmed: tuple[_Clients, list[Future]] | None = None

    def warm(self, executor: Executor) -> None:
        """Open the listing's two connections (TCP, TLS, the version) on ``executor`` now, for the
        next list_containers: a caller with work left before its scan (loading the registry code)
        does it during these round trips. A failure is list_containers', as if it had connected
        itself; ``cool()`` closes connections that no listing took."""
        clients = _Clients(self.settings, self._client_factory)
        with self._lock:
            self._warmed = (clients, [executor.submit(clients.negotiated) for _ in range(2)])

    def cool(self) -> None:
        """Close the connections warm() opened, if no listing took them (it waits for them first)."""
        with self._lock:
            warmed, self._warmed = self._warmed, None
        if warmed is not None:
            wait(warmed[1])
            warmed[0].close()

    def list_containers(self, wanted: Callable[[ContainerInfo], bool] | None = None, *, concurrency: int = 8,
                        progress: DaemonProgress | None = None, on_listed: OnListed | None = None) -> Listing:
        """Every container; the per-container calls run only for those ``wanted`` accepts.

        Outline: the image list on a connection of its own, beside the container list on the
        main one; the image store from the two; then ``on_listed`` with the wanted containers
        as the lists show them (so that the caller can start on the registries meanwhile); then
        the per-container calls, up to ``concurrency`` at a time. Every thread it starts has
        ended, and every connection is closed, when it returns (a warm Lambda would carry
        leftovers into its next invocation). ``progress`` is called from this thread only.
        """
        progress = progress or _silent
        progress("connecting", 0, 0)
        with self._lock:
            warmed, self._warmed = self._warmed, None
        clients, opening = warmed or (_Clients(self.settings, self._client_factory), None)
        try:
            with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="spyglass-daemon") as pool:
                images_listed = pool.submit(self._list_images, clients, opening[1] if opening else None)
                client = opening[0].result() if opening else clients.negotiated()
                progress("listing", 0, 0)
                containers = self._list_containers(client)
                clients.release(client)
                images = images_listed.result()
                store = image_store(containers, images)
                infos = [_summary_info(summary, images, store) for summary in containers]
                chosen = [i for i, info in enumerate(infos) if wanted is None or wanted(info)]
                if on_listed is not None:
                    on_listed(tuple(infos[i] for i in chosen))
                calls = _calls_needed([infos[i] for i in chosen], images, store)
                answers = _inspect(calls, pool, clients, progress)
            for i in chosen:
                infos[i] = _completed(infos[i], answers)
            return Listing(tuple(infos), client.api_version, store)
        finally:
            clients.close()

    def _list_containers(self, client) -> list[dict]:
        try:
            return client.containers(all=True)
        except Exception as exc:  # the SDK raises requests' and its own errors alike
            raise _listing_error(f"list containers on {self.endpoint}", exc) from exc

    def _list_images(self, clients: _Clients, opening: Future | None) -> dict[str, dict]:
        # A client of its own: its connection and version negotiation run beside the main one's.
        client = opening.result() if opening is not None else clients.negotiated()
        try:
            return {image["Id"]: image for image in client.images()}
        except Exception as exc:
            raise _listing_error(f"list images on {self.endpoint}", exc) from exc
        finally:
            clients.release(client)


def image_store(containers: list[dict], images: dict[str, dict]) -> str:
    """CONTAINERD when the two lists show the containerd image store (see the module's docstring):
    a descriptor in either (Engine 28 on), or an image whose ID is one of its RepoDigests' digest."""
    if any("ImageManifestDescriptor" in c for c in containers) or any("Descriptor" in i for i in images.values()):
        return CONTAINERD
    for image_id, image in images.items():
        if any(str(entry).rpartition("@")[2] == image_id for entry in image.get("RepoDigests") or ()):
            return CONTAINERD
    return CLASSIC


class _Clients:
    """The endpoint's API clients, each lent to one call at a time, so each holds one connection.

    An EngineClient is one connection; the SDK's client is a requests session whose pool keeps
    ten connections per host and whose thread safety requests does not promise: a client per
    call in flight suits both, and costs no Engine API call once one client has negotiated
    the version.
    """

    def __init__(self, settings: DaemonSettings, factory: ClientFactory):
        self._settings = settings
        self._factory = factory
        self._lock = threading.Lock()
        self._idle: list = []
        self._made: list = []
        self._version: str | None = None

    def negotiated(self):
        """A new client that asks the daemon for its API version (what the listing needs first)."""
        client = self._keep(self._factory(self._settings))
        with self._lock:
            self._version = self._version or client.api_version
        return client

    def call(self, method: str, *args, **kwargs):
        """One SDK call on an idle client, or on a new one pinned to the negotiated version."""
        with self.lent() as client:
            return getattr(client, method)(*args, **kwargs)

    @contextmanager
    def lent(self):
        """An idle client, or a new one pinned to the negotiated version, for one caller at a time."""
        with self._lock:
            client = self._idle.pop() if self._idle else None
        client = client or self._keep(self._factory(self._settings, version=self._version))
        try:
            yield client
        finally:
            self.release(client)

    def release(self, client) -> None:
        with self._lock:
            self._idle.append(client)

    def close(self) -> None:
        with self._lock:
            made, self._made, self._idle = self._made, [], []
        for client in made:
            client.close()

    def _keep(self, client):
        with self._lock:
            self._made.append(client)
        return client


@dataclass(frozen=True)
class _Call:
    method: str  # inspect_image or inspect_container
    subject: str  # the image ID or the container ID


def _calls_needed(chosen: list[ContainerInfo], images: dict, store: str) -> list[_Call]:
    """One inspect per image ID the image list lacks, one per container listed by image ID.

    With the containerd store the ImageID is the digest itself: its image's inspect could add
    nothing (every RepoDigest there is that same digest), and answers 404 once the record is gone.
    """
    missing = {} if store == CONTAINERD else dict.fromkeys(
        info.image_id for info in chosen if info.image_id not in images)
    return ([_Call("inspect_image", image_id) for image_id in missing]
            + [_Call("inspect_container", info.id) for info in chosen if info.listed_by_id])


def _inspect(calls: list[_Call], pool: ThreadPoolExecutor, clients: _Clients,
             progress: DaemonProgress) -> dict[_Call, object]:
    """Every call side by side; each answer, or the exception that stood for it."""
    if not calls:
        return {}
    progress("inspecting", 0, len(calls))
    running = {pool.submit(clients.call, call.method, call.subject): call for call in calls}
    answers: dict[_Call, object] = {}
    for done, future in enumerate(as_completed(running), 1):
        answers[running[future]] = future.exception() or future.result()
        progress("inspecting", done, len(calls))
    return answers


def _completed(info: ContainerInfo, answers: dict[_Call, object]) -> ContainerInfo:
    """A container with what its inspects answered; a failed one becomes its problem."""
    if not answers:
        return info
    changes = {}
    image = answers.get(_Call("inspect_image", info.image_id))
    if isinstance(image, BaseException):
        changes["problem"] = f"inspect image {info.image_id[:19]} of {info.name}: {_reason(image)}"
    elif image is not None:
        changes["repo_digests"] = tuple(image.get("RepoDigests") or ())
    container = answers.get(_Call("inspect_container", info.id))
    if isinstance(container, BaseException):
        changes["problem"] = f"inspect container {info.name}: {_reason(container)}"
    elif container is not None:
        changes["image"] = (container.get("Config") or {}).get("Image") or info.image
    return replace(info, **changes) if changes else info


def endpoint_clients(settings: DaemonSettings, *, like: _Clients | None = None,
                     client_factory: ClientFactory | None = None) -> _Clients:
    """The endpoint's clients as the listing uses them, for the update's calls (engine/engineapi.py);
    ``like``: clients whose negotiated version (and client factory) these reuse (no second GET /version)."""
    factory = client_factory or (like._factory if like is not None else _api_client)
    clients = _Clients(settings, factory)
    clients._version = like._version if like is not None else None
    return clients


def call_reason(exc: BaseException) -> str:
    """A failed SDK call's one-line cause, as the listing reports one."""
    return _reason(exc)


def _silent(phase: str, done: int, total: int) -> None:
    """No progress wanted."""


def _summary_info(summary: dict, images: dict, store: str = CLASSIC) -> ContainerInfo:
    image_id = summary.get("ImageID") or ""
    names = summary.get("Names") or [summary["Id"][:12]]
    return ContainerInfo(
        id=summary["Id"], name=names[0].lstrip("/"), image=summary.get("Image") or "", image_id=image_id,
        state=summary.get("State") or "", labels=dict(summary.get("Labels") or {}),
        repo_digests=tuple(dict.fromkeys((images.get(image_id) or {}).get("RepoDigests") or ())),
        manifest_digests=_manifest_digests(summary) if store == CONTAINERD else ())


def _manifest_digests(summary: dict) -> tuple[str, ...]:
    """The containerd store's ImageID (manifest or index) and ImageManifestDescriptor (Engine 28+)."""
    descriptor = summary.get("ImageManifestDescriptor") or {}
    found = (summary.get("ImageID"), descriptor.get("digest") if isinstance(descriptor, dict) else None)
    return tuple(dict.fromkeys(d for d in found if isinstance(d, str) and _is_digest(d)))


def _is_digest(text: str) -> bool:
    bare = text.removeprefix(_ID_PREFIX)
    return text.startswith(_ID_PREFIX) and len(bare) == 64 and all(c in "0123456789abcdef" for c in bare)


def _looks_like_id(image: str, image_id: str) -> bool:
    """The daemon shows an image ID instead of the name when the name now means another image."""
    return image == image_id or _is_digest(_ID_PREFIX + image.removeprefix(_ID_PREFIX))


def _listing_client_factory(settings: DaemonSettings, contexts: TLSContexts) -> ClientFactory:
    """EngineClients where enginehttp speaks the endpoint's scheme, else the SDK's."""
    if settings.host.partition("://")[0] not in SCHEMES:
        return _api_client

    def client(settings: DaemonSettings, *, version: str | None = None) -> EngineClient:
        tls = None
        if settings.client_cert or settings.tls_verify:
            tls = TLSFiles(settings.tls_verify, settings.ca_cert if settings.tls_verify else None,
                           settings.client_cert, settings.client_key)
        try:
            conn = connection(settings.host, tls, contexts, settings.timeout)
            return EngineClient(conn, version)
        except Exception as exc:
            raise _listing_error(f"connect to {settings.host}", exc) from exc

    return client


def _api_client(settings: DaemonSettings, *, version: str | None = None):
    """A client of the endpoint; without ``version`` it asks the daemon (one GET /version)."""
    import docker  # imported here: a Lambda cold start that never lists pays nothing for it
    from docker.tls import TLSConfig

    tls = None
    if settings.client_cert or settings.tls_verify:
        tls = TLSConfig(
            client_cert=(settings.client_cert, settings.client_key) if settings.client_cert else None,
            ca_cert=settings.ca_cert if settings.tls_verify else None,
            verify=settings.ca_cert if settings.tls_verify and settings.ca_cert else settings.tls_verify,
        )
    try:
        # "auto" asks the daemon for its API version, so both old engines (20.10 serves 1.41)
        # and current ones that refuse old versions are spoken to in their own version.
        return _endpoint_client_class(docker.APIClient)(
            base_url=settings.host, version=version or "auto", tls=tls, timeout=settings.timeout)
    except Exception as exc:
        raise _listing_error(f"connect to {settings.host}", exc) from exc


def _endpoint_client_class(base):
    """The SDK's client, deaf to the process environment.

    requests lets REQUESTS_CA_BUNDLE override the CA a session was given, and the
    SDK's first call (version negotiation) happens inside its constructor, so
    trust_env must already be off then: the endpoint's own CA has to win.
    """
    return type("EndpointClient", (base,), {"trust_env": property(lambda self: False, lambda self, value: None)})


# OpenSSL's reason codes for the alerts a daemon sends about the client's certificate.
_TLS_ALERTS = {"TLSV13_ALERT_CERTIFICATE_REQUIRED": "the daemon requires a client certificate",
               "SSLV3_ALERT_BAD_CERTIFICATE": "the daemon rejected the client certificate",
               "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the daemon rejected the client certificate",
               "TLSV1_ALERT_UNKNOWN_CA": "the daemon does not trust the client certificate's CA"}


def _listing_error(operation: str, exc: BaseException) -> DaemonError:
    """The DaemonError for an endpoint that could not be listed, with its slug and whether it was
    unreachable (nothing answered as a daemon) rather than refusing."""
    slug, unreachable = _slug(exc)
    return DaemonError(f"{operation}: {_reason(exc)}", reason=slug, unreachable=unreachable)


def _slug(exc: BaseException) -> tuple[str, bool]:
    """(reason slug, unreachable) by the types along the chain, the outermost understood one first."""
    refused, timeouts, connection_errors = _error_types()
    for cause in causes(exc):
        if isinstance(cause, refused):
            return "daemon-refused", False
        if isinstance(cause, ssl.SSLError):
            return "tls-handshake", True
        if isinstance(cause, timeouts):
            return "timeout", True
        for kind, slug in ((ConnectionRefusedError, "connection-refused"),
                           (http.client.RemoteDisconnected, "connection-closed"),
                           (ConnectionResetError, "connection-reset"), (FileNotFoundError, "no-such-socket"),
                           (socket.gaierror, "host-not-found")):
            if isinstance(cause, kind):
                return slug, True
    if any(isinstance(cause, connection_errors) for cause in causes(exc)):
        return "connection-failed", True
    return "daemon-error", False


def _reason(exc: BaseException) -> str:
    """A one-line cause, chosen by the types along the SDK's chain of exceptions, never by their text.

    The outermost cause that is understood wins: the daemon's own answer (an API error),
    then what the TLS, socket and HTTP layers beneath it raised.
    """
    for cause in causes(exc):
        reason = _known_reason(cause)
        if reason:
            return reason
    text = str(exc)
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _known_reason(exc: BaseException) -> str | None:
    refused, timeouts, _ = _error_types()
    if isinstance(exc, refused):
        return str(exc.explanation or exc.status_code or "the daemon refused the call")[:200]
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate verification failed"
    if isinstance(exc, ssl.SSLError):
        return _TLS_ALERTS.get(exc.reason or "")
    if isinstance(exc, timeouts):
        return "timed out"
    for kind, reason in ((ConnectionRefusedError, "connection refused"),
                         (http.client.RemoteDisconnected, "the daemon closed the connection"),
                         (ConnectionResetError, "connection reset"), (FileNotFoundError, "no such socket"),
                         (socket.gaierror, "host not found")):
        if isinstance(exc, kind):
            return reason
    return None


def _error_types() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(the daemon refused, timed out, could not connect): the exception types of enginehttp and
    the standard library, and the SDK's and requests' once loaded (an exception cannot be of a
    type whose module was never imported; importing it only to ask would cost 100 ms)."""
    refused: tuple[type, ...] = (EngineHTTPError,)
    timeouts: tuple[type, ...] = (TimeoutError,)
    connection_errors: tuple[type, ...] = (ConnectionError,)
    errors, requests_errors = sys.modules.get("docker.errors"), sys.modules.get("requests.exceptions")
    if errors is not None:
        refused += (errors.APIError,)
    if requests_errors is not None:
        timeouts += (requests_errors.Timeout,)
        connection_errors += (requests_errors.ConnectionError,)
    return refused, timeouts, connection_errors
