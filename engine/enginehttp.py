"""The listing's Engine API reads over the standard library's HTTP: tcp:// (plain or TLS) and unix://.

A listing is two to four GETs of JSON on one or two connections, so the Docker SDK (a
requests session, an adapter, an SSL context loaded from the files for each connection,
about 100 ms to import) costs far more CPU than the calls themselves; a fleet of
hundreds of endpoints pays that once per endpoint. This client keeps only what the
listing needs:

    connect     TCP or a unix socket; TLS from a context that ``TLSContexts`` loads once
                per set of files (an endpoint's CA, client certificate and key) per run
    negotiate   GET /_ping: the daemon's API version from its API-Version header (as the
                docker CLI does; lighter for the daemon than GET /version, which asks
                containerd and runc for theirs); GET /version only when the header is missing
    read        GET /v{version}/...: a 2xx answer's JSON body, else ``EngineHTTPError``
                with the HTTP status and the daemon's message

The methods are named as the SDK's (``containers``, ``images``, ``inspect_image``,
``inspect_container``), so engine/daemon.py lends either kind of client the same way;
ssh:// and npipe:// endpoints keep the SDK. A client holds one connection and serves one
caller at a time.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

SCHEMES = ("tcp", "http", "https", "unix")  # what this client speaks; others go to the SDK
_MAX_BODY = 256 * 1024 * 1024  # a container list of a very large host is megabytes, never this


class EngineHTTPError(Exception):
    """The daemon answered, with a status other than 2xx; ``explanation`` is its own message."""

    def __init__(self, status: int, explanation: str):
        super().__init__(f"{status} {explanation}".strip())
        self.status_code = status
        self.explanation = explanation


@dataclass(frozen=True)
class TLSFiles:
    """What a TLS connection to an endpoint is made from: the docker CLI's --tlsverify, --tlscacert,
    --tlscert and --tlskey. Equal files give one context."""

    verify: bool
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class TLSContexts:
    """SSL contexts by their files, each loaded once. One per run, passed to every endpoint:
    a fleet's endpoints mostly share a CA and a client certificate, and loading them (the key
    parsed, the CA read) would otherwise be a large share of each endpoint's CPU."""

    def __init__(self):
        self._lock = threading.Lock()
        self._made: dict[TLSFiles, ssl.SSLContext] = {}

    def context(self, files: TLSFiles) -> ssl.SSLContext:
        with self._lock:
            made = self._made.get(files)
            if made is None:
                made = self._made[files] = _context(files)
            return made


def _context(files: TLSFiles) -> ssl.SSLContext:
    if files.verify:  # the endpoint's CA when given, else the system's (as the docker CLI)
        context = ssl.create_default_context(cafile=files.ca_cert)
    else:  # --tls without --tlsverify: encrypted, the daemon's certificate not checked
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if files.client_cert:
        context.load_cert_chain(files.client_cert, files.client_key)
    return context


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; the Host header names the daemon as the docker CLI does."""

    def __init__(self, path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def connection(host: str, tls: TLSFiles | None, contexts: TLSContexts, timeout: float) -> http.client.HTTPConnection:
    """A connection (not yet open) to a daemon address in DOCKER_HOST's syntax; ValueError for a
    scheme this client does not speak."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        return _UnixConnection(parts.path or parts.netloc, timeout)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"not a tcp:// or unix:// daemon address: {host}")
    if tls is not None or parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port or 2376, timeout=timeout,
                                           context=contexts.context(tls or TLSFiles(verify=True)))
    return http.client.HTTPConnection(parts.hostname, parts.port or 2375, timeout=timeout)


class EngineClient:
    """One connection to one daemon, at one API version (negotiated when none is given)."""

    def __init__(self, conn: http.client.HTTPConnection, version: str | None = None):
        self._conn = conn
        self.api_version = version or self._negotiate()

    def containers(self, all: bool = False) -> list[dict]:  # noqa: A002 - the SDK's name
        return self._json(f"/v{self.api_version}/containers/json" + ("?all=1" if all else ""))

    def images(self) -> list[dict]:
        return self._json(f"/v{self.api_version}/images/json")

    def inspect_image(self, image: str) -> dict:
        return self._json(f"/v{self.api_version}/images/{quote(image, safe=':@')}/json")

    def inspect_container(self, container: str) -> dict:
        return self._json(f"/v{self.api_version}/containers/{quote(container, safe='')}/json")

    def close(self) -> None:
        self._conn.close()

    def _negotiate(self) -> str:
        status, headers, body = self._get("/_ping")
        version = headers.get("API-Version")
        if 200 <= status < 300 and version:
            return version
        return str(self._json("/version").get("ApiVersion") or "")

    def _json(self, path: str):
        status, _, body = self._get(path)
        if not 200 <= status < 300:
            raise EngineHTTPError(status, _message(body))
        return json.loads(body)

    def _get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        try:
            self._conn.request("GET", path)
            response = self._conn.getresponse()
            body = response.read(_MAX_BODY + 1)
        except BaseException:
            self._conn.close()  # a half-read answer leaves the connection unusable
            raise
        if len(body) > _MAX_BODY:
            self._conn.close()
            raise EngineHTTPError(response.status, f"answer larger than {_MAX_BODY} bytes")
        return response.status, response.headers, body


def _message(body: bytes) -> str:
    """The daemon's error message ({"message": ...}), else the body's first line."""
    try:
        return str(json.loads(body).get("message") or "")[:200]
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip().splitlines()[0][:200] if body.strip() else ""
