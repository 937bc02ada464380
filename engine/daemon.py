"""Listing a Docker endpoint: the only module that talks to the Docker SDK.

A scan costs a constant number of Engine API calls whatever the number of
containers: one container list and one image list, each on its own connection
after that connection's version negotiation. The two chains run side by side,
so the listing costs one round trip less than the same four calls in a row.
Per-container calls happen only for anomalies: an image missing from the
image list (removed, or listed under another filter), or a container whose
configured reference the daemon replaced by an image ID (the local tag moved
since it started), whose configured name only its inspect shows.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from .errors import DaemonError

_ID_PREFIX = "sha256:"


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
    problem: str = ""  # a per-container lookup that failed: the container cannot be judged

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class Listing:
    containers: tuple[ContainerInfo, ...]
    api_version: str


class ContainerSource(Protocol):
    """What the scan needs from a daemon; tests may pass a fake."""

    endpoint: str

    def list_containers(self, wanted: Callable[[ContainerInfo], bool] | None = None) -> Listing: ...


class DockerDaemon:
    def __init__(self, settings: DaemonSettings):
        self.settings = settings
        self.endpoint = settings.host
        self._client = None

    def list_containers(self, wanted: Callable[[ContainerInfo], bool] | None = None) -> Listing:
        """Every container; the per-container fallbacks run only for those ``wanted`` accepts."""
        images_listed = _Background(self._list_images)
        client = self._connect()
        try:
            containers = client.containers(all=True)
        except Exception as exc:  # the SDK raises requests' and its own errors alike
            raise DaemonError(f"list containers on {self.endpoint}: {_reason(exc)}") from exc
        images = images_listed.result()
        infos = []
        for summary in containers:
            info = _summary_info(summary, images)
            if wanted is None or wanted(info):
                info = self._complete(client, info, images)
            infos.append(info)
        return Listing(tuple(infos), client.api_version)

    def _connect(self):
        if self._client is None:
            self._client = _api_client(self.settings)
        return self._client

    def _list_images(self) -> dict[str, dict]:
        # A client of its own: its connection and version negotiation run beside the main one's.
        client = _api_client(self.settings)
        try:
            return {image["Id"]: image for image in client.images()}
        except Exception as exc:
            raise DaemonError(f"list images on {self.endpoint}: {_reason(exc)}") from exc
        finally:
            client.close()

    def _complete(self, client, info: ContainerInfo, images: dict) -> ContainerInfo:
        """Fill in what the two listings lacked for this container, with one call each."""
        changes = {}
        if info.image_id not in images:
            try:
                images[info.image_id] = client.inspect_image(info.image_id)
                changes["repo_digests"] = tuple(images[info.image_id].get("RepoDigests") or ())
            except Exception as exc:
                changes["problem"] = f"inspect image {info.image_id[:19]} of {info.name}: {_reason(exc)}"
        if _looks_like_id(info.image, info.image_id):
            try:
                config = client.inspect_container(info.id).get("Config") or {}
                changes["image"] = config.get("Image") or info.image
            except Exception as exc:
                changes["problem"] = f"inspect container {info.name}: {_reason(exc)}"
        return replace(info, **changes) if changes else info


class _Background:
    """One call on a daemon thread; result() waits for it and re-raises what it raised.

    A daemon thread: when the main listing fails first, nothing waits for this one."""

    def __init__(self, call: Callable[[], object]):
        self._call = call
        self._value: object = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spyglass-daemon-listing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _summary_info(summary: dict, images: dict) -> ContainerInfo:
    image_id = summary.get("ImageID") or ""
    names = summary.get("Names") or [summary["Id"][:12]]
    return ContainerInfo(
        id=summary["Id"], name=names[0].lstrip("/"), image=summary.get("Image") or "", image_id=image_id,
        state=summary.get("State") or "", labels=dict(summary.get("Labels") or {}),
        repo_digests=tuple((images.get(image_id) or {}).get("RepoDigests") or ()))


def _looks_like_id(image: str, image_id: str) -> bool:
    """The daemon shows an image ID instead of the name when the name now means another image."""
    bare = image.removeprefix(_ID_PREFIX)
    return image == image_id or (len(bare) == 64 and all(c in "0123456789abcdef" for c in bare))


def _api_client(settings: DaemonSettings):
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
            base_url=settings.host, version="auto", tls=tls, timeout=settings.timeout)
    except Exception as exc:
        raise DaemonError(f"connect to {settings.host}: {_reason(exc)}") from exc


def _endpoint_client_class(base):
    """The SDK's client, deaf to the process environment.

    requests lets REQUESTS_CA_BUNDLE override the CA a session was given, and the
    SDK's first call (version negotiation) happens inside its constructor, so
    trust_env must already be off then: the endpoint's own CA has to win.
    """
    return type("EndpointClient", (base,), {"trust_env": property(lambda self: False, lambda self, value: None)})


def _reason(exc: BaseException) -> str:
    """A one-line cause from the SDK's nested exceptions, without the request URL's query."""
    text = str(exc)
    for marker, reason in (("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed"),
                           ("certificate required", "the daemon requires a client certificate"),
                           ("bad certificate", "the daemon rejected the client certificate"),
                           ("unknown ca", "the daemon does not trust the client certificate's CA"),
                           ("Connection refused", "connection refused"),
                           ("Read timed out", "timed out"), ("timed out", "timed out"),
                           ("Connection reset", "connection reset"),
                           ("Remote end closed connection", "the daemon closed the connection"),
                           ("No such file or directory", "no such socket")):
        if marker in text:
            return reason
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]
