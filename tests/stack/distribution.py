"""Talking to a test registry over HTTP directly, for set-ups the daemon cannot do.

Moving a tag without the daemon noticing, deleting a manifest, putting a
multi-platform index under a tag, uploading another platform's image. Every
request goes out once; on a Bearer challenge we fetch a token from the realm
with the admin credentials (pull, push and delete on the repository) and retry.

Media types are spelled out here rather than imported from engine/: the stack
must not depend on the code it tests.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import urllib3

from .procs import StackError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# Index types first, so a multi-platform tag answers with the index's own digest.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def as_json(self) -> dict:
        value = {"architecture": self.architecture, "os": self.os}
        return value | ({"variant": self.variant} if self.variant else {})


class RegistryHttp:
    """Admin access to one registry: `address` is host:port; `credentials` answer token challenges."""

    def __init__(self, address: str, *, scheme: str = "https", ca: Path | None = None,
                 credentials: tuple[str, str] | None = None):
        self.base = f"{scheme}://{address}"
        self._credentials = credentials
        self._http = urllib3.PoolManager(ca_certs=str(ca) if ca else None, retries=False,
                                         timeout=urllib3.Timeout(connect=5, read=30))
        self._tokens: dict[str, str] = {}  # repository -> bearer token

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> RegistryHttp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- manifests --------------------------------------------------------------

    def describe(self, repository: str, reference: str) -> Descriptor | None:
        """What a tag or digest points at now (HEAD, full Accept list); None on 404."""
        response = self._request("HEAD", repository, f"manifests/{reference}",
                                 headers={"Accept": MANIFEST_ACCEPT}, ok=(200, 404))
        if response.status == 404:
            return None
        return Descriptor(media_type=_media_type(response), digest=response.headers["Docker-Content-Digest"],
                          size=int(response.headers["Content-Length"]))

    def digest_of(self, repository: str, reference: str) -> str | None:
        found = self.describe(repository, reference)
        return found.digest if found else None

    def get_manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        response = self._request("GET", repository, f"manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        return _media_type(response), response.data

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._request("PUT", repository, f"manifests/{reference}", body=body,
                                 headers={"Content-Type": media_type}, ok=(201,))
        return response.headers["Docker-Content-Digest"]

    def copy_tag(self, repository: str, source: str, target: str) -> str:
        """Point `target` at what `source` points at, byte for byte (the digest is kept)."""
        media_type, body = self.get_manifest(repository, source)
        return self.put_manifest(repository, target, body, media_type)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Deletes the manifest and thereby every tag pointing at it in this repository."""
        self._request("DELETE", repository, f"manifests/{digest}", ok=(202,))

    def delete_tag(self, repository: str, tag: str) -> str:
        digest = self.digest_of(repository, tag)
        if digest is None:
            raise StackError(f"delete tag {repository}:{tag}: no such tag")
        self.delete_manifest(repository, digest)
        return digest

    def put_index(self, repository: str, tag: str, children: Sequence[tuple[Descriptor, Platform]],
                  *, media_type: str = DOCKER_MANIFEST_LIST) -> str:
        """A multi-platform index (Docker list or OCI index) over manifests already in the repository."""
        index = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
            {"mediaType": d.media_type, "digest": d.digest, "size": d.size, "platform": p.as_json()}
            for d, p in children
        ]}
        return self.put_manifest(repository, tag, json.dumps(index).encode(), media_type)

    # -- blobs and whole images ---------------------------------------------------

    def upload_blob(self, repository: str, data: bytes) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self._request("POST", repository, "blobs/uploads/", ok=(202,))
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        self._request("PUT", repository, location + f"{separator}digest={digest}", body=data,
                      headers={"Content-Type": "application/octet-stream"}, ok=(201,))
        return Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))

    def push_synthetic_image(self, repository: str, platform: Platform, variant: str,
                             *, reference: str | None = None) -> Descriptor:
        """A tiny image for any platform, straight into the registry (nothing to run it on here)."""
        layer_tar = _single_file_tar("variant", variant.encode())
        layer = self.upload_blob(repository, gzip.compress(layer_tar, mtime=0))
        config = self.upload_blob(repository, json.dumps({
            **platform.as_json(),
            "config": {"Cmd": ["/bin/sleep", "1000000"], "Labels": {"sg.variant": variant}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        }).encode())
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": DOCKER_LAYER, "digest": layer.digest, "size": layer.size}],
        }).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.put_manifest(repository, reference or digest, manifest, DOCKER_MANIFEST)
        return Descriptor(media_type=DOCKER_MANIFEST, digest=digest, size=len(manifest))

    # -- one request, with at most one token round trip ----------------------------

    def _request(self, method: str, repository: str, path: str, *, body: bytes | None = None,
                 headers: dict | None = None, ok: tuple[int, ...] = (200,)) -> urllib3.BaseHTTPResponse:
        url = path if path.startswith(("http://", "https://")) else self._url(repository, path)
        response = self._send(method, url, repository, body, headers)
        if response.status == 401 and self._credentials:  # no token yet, or it expired
            self._tokens[repository] = self._fetch_token(response.headers.get("WWW-Authenticate", ""), repository)
            response = self._send(method, url, repository, body, headers)
        if response.status not in ok:
            raise StackError(f"{method} {url}: {response.status} {response.data[:300]!r}")
        return response

    def _url(self, repository: str, path: str) -> str:
        # Upload locations come back as absolute paths (/v2/...) or full URLs.
        return self.base + path if path.startswith("/") else f"{self.base}/v2/{repository}/{path}"

    def _send(self, method, url, repository, body, headers) -> urllib3.BaseHTTPResponse:
        headers = dict(headers or {})
        if repository in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[repository]}"
        return self._http.request(method, url, body=body, headers=headers, redirect=False)

    def _fetch_token(self, challenge: str, repository: str) -> str:
        scheme, _, params = challenge.partition(" ")
        fields = dict(_CHALLENGE_PARAM.findall(params))
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise StackError(f"token for {repository}: unexpected challenge {challenge!r}")
        user, password = self._credentials
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        response = self._http.request("GET", fields["realm"], headers={"Authorization": f"Basic {basic}"}, fields={
            "service": fields.get("service", ""), "scope": f"repository:{repository}:pull,push,delete"})
        if response.status != 200:
            raise StackError(f"token for {repository}: {response.status} from {fields['realm']}")
        return json.loads(response.data)["token"]


def _media_type(response: urllib3.BaseHTTPResponse) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _single_file_tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
