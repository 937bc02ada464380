"""The Engine API calls an update makes, each counted and each failure typed.

The clients and the TLS settings are the listing's (engine/daemon.py: one client per call in
flight, version negotiated once); this module only names the calls an update needs, counts them
by kind (the benchmark and the tests compare the counts per container) and turns an SDK failure
into ``EngineCallError``: ``operation subject: cause``, with the HTTP status where there was one.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from contextlib import contextmanager
from typing import Mapping

from .daemon import DaemonSettings, call_reason, endpoint_clients
from .errors import DaemonError


class EngineCallError(DaemonError):
    """One Engine API call failed; ``status`` is the daemon's HTTP status (404: no such object)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class EngineApi:
    """One endpoint's update calls. Thread-safe; ``close()`` closes every client it made."""

    def __init__(self, settings: DaemonSettings):
        self.endpoint = settings.host
        self._settings = settings
        self._clients = endpoint_clients(settings)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._negotiated = False

    def close(self) -> None:
        self._clients.close()

    # -- reads ---------------------------------------------------------------------------

    def list_containers(self) -> list[dict]:
        return self._call("list", "list containers", self.endpoint, "containers", all=True)

    def inspect_container(self, ident: str) -> dict:
        return self._call("inspect", "inspect container", ident, "inspect_container", ident)

    def inspect_image(self, ident: str) -> dict:
        return self._call("inspect_image", "inspect image", ident, "inspect_image", ident)

    # -- images ----------------------------------------------------------------------------

    def pull(self, repository: str, digest: str, auth: Mapping[str, str] | None) -> None:
        """Pull repository@digest; the daemon reports a failure inside a 200 stream, so read it all."""
        stream = self._call("pull", "pull", f"{repository}@{digest}", "pull", repository, tag=digest,
                            stream=True, decode=True, auth_config=dict(auth) if auth else None)
        for message in stream:
            if "error" in message or "errorDetail" in message:
                detail = (message.get("errorDetail") or {}).get("message") or message.get("error")
                raise EngineCallError(f"pull {repository}@{digest}: {str(detail)[:200]}")

    def tag(self, source: str, repository: str, tag: str) -> None:
        self._call("tag", "tag", f"{source} as {repository}:{tag}", "tag", source, repository, tag, force=True)

    def remove_image(self, ident: str) -> None:
        self._call("remove_image", "remove image", ident, "remove_image", ident)

    # -- containers -------------------------------------------------------------------------

    def stop(self, ident: str, timeout: int) -> None:
        # The HTTP request must outlive the daemon's own wait for the container to stop.
        self._call("stop", "stop", ident, "stop", ident, timeout=timeout)

    def rename(self, ident: str, name: str) -> None:
        self._call("rename", "rename", f"{ident} to {name}", "rename", ident, name)

    def create(self, name: str, body: dict) -> str:
        return self._call("create", "create container", name, "create_container_from_config", body, name=name)["Id"]

    def connect(self, network: str, ident: str, endpoint: dict) -> None:
        self._call("connect", "connect", f"{ident} to {network}", "connect_container_to_network", ident, network,
                   aliases=endpoint.get("Aliases"), links=endpoint.get("Links"),
                   ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
                   ipv6_address=(endpoint.get("IPAMConfig") or {}).get("IPv6Address"),
                   driver_opt=endpoint.get("DriverOpts"))

    def start(self, ident: str) -> None:
        self._call("start", "start", ident, "start", ident)

    def remove_container(self, ident: str) -> None:
        self._call("remove", "remove container", ident, "remove_container", ident, force=True)

    @contextmanager
    def events(self, ident: str):
        """The container's events from now on, as an iterator; one streaming call on a client lent
        for as long as the stream is open. Closing it (another thread may) ends the iteration."""
        self._count("events")
        with self._clients.lent() as client:
            try:
                stream = client.events(decode=True, filters={"container": ident, "type": "container"})
            except Exception as exc:  # noqa: BLE001
                raise EngineCallError(f"follow events of {ident}: {call_reason(exc)}") from exc
            try:
                yield stream
            finally:
                stream.close()

    def exec(self, ident: str, argv: list[str], timeout: float) -> tuple[int | None, str]:
        """Run argv in the container; (exit code, last output line); code None when it timed out."""
        created = self._call("exec", "exec in", ident, "exec_create", ident, argv)
        slow = endpoint_clients(replace(self._settings, timeout=timeout), like=self._clients)
        try:
            output = slow.call("exec_start", created["Id"])
        except Exception as exc:  # noqa: BLE001 - classified below, never by its text
            reason = call_reason(exc)
            if reason == "timed out":
                return None, ""
            raise EngineCallError(f"exec in {ident}: {reason}") from exc
        finally:
            slow.close()
            self._count("exec")
        code = self._call("exec", "exec in", ident, "exec_inspect", created["Id"]).get("ExitCode")
        text = (output or b"").decode("utf-8", "replace").strip().splitlines()
        return code, (text[-1] if text else "")

    # -- internals ----------------------------------------------------------------------------

    def _call(self, kind: str, operation: str, subject: str, method: str, *args, **kwargs):
        self._count(kind)
        try:
            if not self._negotiated:  # the first call asks the daemon for its version (one GET /version)
                with self._lock:
                    if not self._negotiated:
                        self._clients.release(self._clients.negotiated())
                        self._negotiated = True
            return self._clients.call(method, *args, **kwargs)
        except EngineCallError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK raises requests' errors and its own alike
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise EngineCallError(f"{operation} {subject}: {call_reason(exc)}", status) from exc

    def _count(self, kind: str) -> None:
        with self._lock:
            self.calls[kind] += 1

