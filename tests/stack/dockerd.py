"""A private dockerd for the tests: its own data, runtime dir, cgroup parent and containerd namespace.

The daemon serves mutual TLS on 127.0.0.1:<port> (what the scanner talks to)
and a unix socket for the fixture's own administration. It runs with `-D` so
every API call is logged as `Calling <METHOD> <path>`, which lets a test count
the calls one scan made.

Unix socket paths are limited to ~108 bytes, so the runtime dir (exec-root,
containerd's sockets, docker.sock) lives in a short /tmp/sg-XXXX directory,
while data and logs live in the caller's workdir.

Another engine (tests/stack/engines.py) runs from its unpacked tree: its dockerd, and its
containerd and shim first on PATH (dockerd starts the containerd it finds there and writes that
containerd's configuration itself). With the containerd image store (`image_store="containerd"`,
storage driver `native`), dockerd fetches registry tokens through Go's default TLS roots rather
than its certs.d, so it gets SSL_CERT_FILE: the system's roots plus the test CA.

Stopping, in order: kill every container through the API (a PID 1 that is
`sleep` ignores SIGTERM, and dockerd would wait for it), SIGTERM dockerd and
wait (it stops its managed containerd), SIGKILL on timeout, then kill whatever
still carries our runtime dir, namespace or cgroup, unmount what is left under
our dirs and remove them.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import json

import docker
from docker.tls import TLSConfig

from . import leftovers, logfile, procs
from .engines import EngineTree
from .pki import Pki, write_docker_cert_dir

DOCKERD = "/usr/sbin/dockerd"
SYSTEM_ROOTS = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_STORES = ("classic", "containerd")
API_VERSION = "1.41"  # dockerd 20.10; pinned so the SDK skips its /version probe
# Engines up to 26 log `msg="Calling GET /path"`, Engine 28 `msg="handling GET request" ... request-url=/path`
# (quoted when the path has a query).
_CALLING = re.compile(r'msg="Calling (?P<method>[A-Z]+) (?P<path>[^"\s]+)"'
                      r'|msg="handling (?P<method28>[A-Z]+) request".* request-url="?(?P<path28>[^"\s]+)')


class ApiCall(NamedTuple):
    # A NamedTuple so tests can compare a record with a plain tuple.
    method: str
    path: str  # as logged: /v1.41/containers/json?all=1 (version prefix and query included)


class DockerDaemon:
    def __init__(self, workdir: str | Path, pki: Pki, *, insecure_registries: Sequence[str] = (),
                 storage_driver: str = "vfs", extra_args: Sequence[str] = (), engine: EngineTree | None = None,
                 image_store: str = "classic"):
        if image_store not in IMAGE_STORES:
            raise ValueError(f"image_store must be one of {', '.join(IMAGE_STORES)}")
        self.workdir = Path(workdir)
        self.engine = engine  # None: the machine's own dockerd
        self.image_store = image_store
        self.pki = pki
        self.insecure_registries = tuple(insecure_registries)
        self.storage_driver = storage_driver
        self.extra_args = tuple(extra_args)
        self.name = f"sg-{secrets.token_hex(4)}"  # containerd namespace and cgroup parent
        self.runtime_dir: Path | None = None
        self.port: int | None = None
        self.child: procs.Child | None = None
        self._admin: docker.APIClient | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> DockerDaemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
        self.port = procs.free_port()
        write_docker_cert_dir(self.pki, self.cert_dir)
        self.child = procs.start(self._argv(), self.log, env=self._env())
        procs.wait_until(self._answers, what=f"dockerd on {self.host}", child=self.child, timeout=timeout)
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop everything this daemon started; safe to call twice or after a failed start."""
        try:
            if self.child is not None and self.child.alive():
                self._kill_containers()
        finally:
            self._stop_processes(timeout)
            self._remove_dirs()

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests use ---------------------------------------------------------

    @property
    def log(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.runtime_dir / "docker.sock"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "client-certs"

    @property
    def admin(self) -> docker.APIClient:
        """Low-level client on the unix socket, for the fixture's own set-up (not for scans)."""
        if self._admin is None:
            self._admin = docker.APIClient(base_url=f"unix://{self.socket}", version=API_VERSION, timeout=300)
        return self._admin

    def tls_client(self, *, client_cert: bool = True, **kwargs) -> docker.APIClient:
        """A client on the TLS endpoint, as the scanner connects; without the client cert to test refusal."""
        cert = (str(self.pki.client.cert), str(self.pki.client.key)) if client_cert else None
        tls = TLSConfig(client_cert=cert, ca_cert=str(self.pki.ca), verify=True)
        kwargs.setdefault("version", API_VERSION)
        kwargs.setdefault("timeout", 60)
        client = docker.APIClient(base_url=f"https://127.0.0.1:{self.port}", tls=tls, **kwargs)
        # requests lets REQUESTS_CA_BUNDLE (set on this machine) override the session's CA file,
        # which would make verification against our test CA fail; the environment must not win.
        client.trust_env = False
        return client

    def env(self) -> dict[str, str]:
        """DOCKER_HOST and friends for the TLS endpoint (DOCKER_CERT_PATH holds ca/cert/key.pem)."""
        return {"DOCKER_HOST": self.host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.cert_dir)}

    def api_calls(self) -> list[ApiCall]:
        return self.api_calls_since(0)

    def mark(self) -> int:
        return logfile.mark(self.log)

    def api_calls_since(self, mark: int) -> list[ApiCall]:
        found = (_CALLING.search(line) for line in logfile.lines_since(self.log, mark))
        return [ApiCall(m["method"] or m["method28"], m["path"] or m["path28"]) for m in found if m]

    # -- internals --------------------------------------------------------------

    def _argv(self) -> list[str]:
        run, pki = self.runtime_dir, self.pki
        argv = [
            str(self.engine.dockerd) if self.engine else DOCKERD, "-D",
            "--data-root", str(self.workdir / "data"),
            "--exec-root", str(run),
            "--pidfile", str(run / "dockerd.pid"),
            "-H", f"tcp://127.0.0.1:{self.port}",
            "--tlsverify", "--tlscacert", str(pki.ca),
            "--tlscert", str(pki.daemon.cert), "--tlskey", str(pki.daemon.key),
            "-H", f"unix://{run / 'docker.sock'}",
            f"--storage-driver={self.storage_driver}",
            "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false",
            # A system containerd at /run/containerd would be shared: unique names keep us apart.
            "--containerd-namespace", self.name, "--containerd-plugins-namespace", f"{self.name}-plugins",
            "--cgroup-parent", f"/{self.name}",
        ]
        for address in self.insecure_registries:
            argv += ["--insecure-registry", address]
        if self.image_store == "containerd":
            argv += ["--config-file", str(self._write_config({"features": {"containerd-snapshotter": True}}))]
        return argv + list(self.extra_args)

    def _write_config(self, config: dict) -> Path:
        path = self.workdir / "daemon.json"
        path.write_text(json.dumps(config))
        return path

    def _env(self) -> dict[str, str]:
        env = _child_env()
        if self.engine is not None:
            env["PATH"] = os.pathsep.join([*self.engine.path, env["PATH"]])
        if self.image_store == "containerd":
            bundle = self.workdir / "roots-and-test-ca.pem"
            bundle.write_bytes(SYSTEM_ROOTS.read_bytes() + b"\n" + Path(self.pki.ca).read_bytes())
            env["SSL_CERT_FILE"] = str(bundle)
        return env

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.admin.ping()
        except (docker.errors.APIError, docker.errors.DockerException, OSError):
            return False

    def _kill_containers(self) -> None:
        try:
            running = self.admin.containers(quiet=True)  # running only; created ones have no process
        except (docker.errors.DockerException, OSError):
            return  # daemon not answering: the leftover sweep kills by cgroup instead
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._kill_one, [c["Id"] for c in running]))

    def _kill_one(self, container_id: str) -> None:
        try:
            self.admin.kill(container_id)
        except docker.errors.APIError:
            pass  # exited on its own meanwhile

    def _stop_processes(self, timeout: float) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.child is not None:
            self.child.stop(timeout=timeout)
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """Managed containerd, shims and container processes that outlived dockerd."""
        needles = [str(self.runtime_dir)] if self.runtime_dir else []
        needles.append(f"\0-namespace\0{self.name}\0")  # shims of a shared system containerd
        leftovers.kill_processes(needles, self.name, own_pid=os.getpid())
        leftovers.remove_cgroups(self.name)

    def _remove_dirs(self) -> None:
        for directory in (self.runtime_dir, self.workdir / "data", self.cert_dir):
            if directory is not None and directory.exists():
                leftovers.unmount_below(directory)
                shutil.rmtree(directory, ignore_errors=True)


def _child_env() -> dict[str, str]:
    # dockerd reads DOCKER_CERT_PATH / DOCKER_TLS_VERIFY as flag defaults; ours come from argv only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env
