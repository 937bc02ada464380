"""A distribution registry (Debian's `docker-registry` 2.8) on 127.0.0.1, TLS or plain http.

The configuration is written as JSON, which YAML parsers read as flow style, so
no YAML library is needed. Deletes are enabled because tests delete manifests.

Two logs: the access log (stdout, Apache combined format, one line per request
including the 401s of token auth) is what `requests()` parses; the application
log (stderr, JSON at info level) explains failures. Token-auth refusals appear
in the application log only as `error authorizing context`, without a status,
which is why the access log is the count of record.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import urllib3

from . import logfile, procs
from .pki import CertPair

REGISTRY = "/usr/bin/docker-registry"
_ACCESS = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) ')


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


class RegistryRequest(NamedTuple):
    # A NamedTuple so tests can compare a record with a plain tuple.
    method: str
    path: str  # the request target as logged, query string included
    status: int


class Registry:
    def __init__(self, workdir: str | Path, *, tls: CertPair | None = None, ca: Path | None = None,
                 token_auth: TokenAuth | None = None):
        if token_auth is not None and tls is None:
            raise ValueError("token auth needs TLS: clients refuse to send bearer tokens over plain http")
        self.workdir = Path(workdir)
        self.tls, self.ca, self.token_auth = tls, ca, token_auth
        self.port: int | None = None
        self.child: procs.Child | None = None

    def start(self, *, timeout: float = 30.0) -> Registry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()
        config = self.workdir / "config.yml"
        config.write_text(json.dumps(self._config(), indent=2))
        self.child = procs.start([REGISTRY, "serve", str(config)], self.app_log, stdout_log=self.access_log)
        procs.wait_until(self._answers, what=f"registry on {self.address}", child=self.child, timeout=timeout)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=10)
        shutil.rmtree(self.workdir / "storage", ignore_errors=True)

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    @property
    def app_log(self) -> Path:
        return self.workdir / "registry.log"

    def requests(self) -> list[RegistryRequest]:
        return self.requests_since(0)

    def mark(self) -> int:
        return logfile.mark(self.access_log)

    def requests_since(self, mark: int) -> list[RegistryRequest]:
        found = (_ACCESS.match(line) for line in logfile.lines_since(self.access_log, mark))
        return [RegistryRequest(m["method"], m["path"], int(m["status"])) for m in found if m]

    def _config(self) -> dict:
        http: dict = {"addr": self.address, "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls.cert), "key": str(self.tls.key)}
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "delete": {"enabled": True},
                # No background purge of uploads: it would only add noise to the logs.
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.token_auth:
            config["auth"] = {"token": {
                "realm": self.token_auth.realm, "service": self.token_auth.service,
                "issuer": self.token_auth.issuer, "rootcertbundle": str(self.token_auth.rootcertbundle),
            }}
        return config

    def _answers(self) -> bool:
        http = urllib3.PoolManager(ca_certs=str(self.ca) if self.ca else None, retries=False)
        try:
            status = http.request("GET", f"{self.url}/v2/", timeout=2).status
        except urllib3.exceptions.HTTPError:
            return False
        finally:
            http.clear()
        return status in (200, 401)
