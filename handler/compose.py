"""Composition: settings in, a wired scan out. Every entry point (CLI, Lambda, Action) goes through here.

The environment is read by the entry points and arrives as values; this module
builds the engine's collaborators (TLS policy, HTTP pools, keychain, token
cache, daemon client) and makes the one delegating call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.authn import DockerConfigKeychain, default_config_dir
from engine.clock import Clock, SystemClock
from engine.daemon import DaemonSettings, DockerDaemon
from engine.errors import ConfigurationError
from engine.report import Report
from engine.scan import Progress, ScanOptions, scan
from engine.selection import Selection, normalise_names
from engine.tlsconfig import TLSPolicy, parse_insecure_registry, read_ca_bundle
from engine.tokens import MemoryTokenCache, TokenStore
from engine.transport import HttpPools

log = logging.getLogger("spyglass")

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class ScanConfig:
    daemon: DaemonSettings
    names: tuple[str, ...] = ()
    include_stopped: bool = False
    label_enable: bool = False
    scope: str | None = None
    registry_ca: str | None = None
    registry_ca_validate: bool = False
    insecure_registries: tuple[str, ...] = ()
    docker_config: str | None = None  # a config.json, or a folder holding one
    concurrency: int = 8
    timeout: float | None = None


def daemon_settings(env: Mapping[str, str], home: Path, *, host: str | None = None,
                    tls_verify: bool | None = None, ca: str | None = None, cert: str | None = None,
                    key: str | None = None, timeout: float = 30.0) -> DaemonSettings:
    """Docker CLI rules: flags over DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (default ~/.docker)."""
    host = host or env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if tls_verify is None:
        tls_verify = env.get("DOCKER_TLS_VERIFY", "") not in ("", "0", "false")
    cert_dir = Path(env.get("DOCKER_CERT_PATH") or home / ".docker")
    ca = ca or _existing(cert_dir / "ca.pem")
    cert = cert or _existing(cert_dir / "cert.pem")
    key = key or _existing(cert_dir / "key.pem")
    if host.startswith("unix://") or host.startswith("npipe://"):
        return DaemonSettings(host=host, timeout=timeout)
    if tls_verify and not ca:
        raise ConfigurationError(f"TLS verification asked for {host}, but no CA file (ca.pem in {cert_dir})")
    if bool(cert) != bool(key):
        raise ConfigurationError(f"client certificate for {host}: both cert and key are needed")
    if cert and not tls_verify:
        log.warning("connecting to %s with a client certificate but without verifying the daemon "
                    "(set DOCKER_TLS_VERIFY=1 or --tlsverify)", host)
    return DaemonSettings(host=host, tls_verify=tls_verify, ca_cert=ca, client_cert=cert,
                          client_key=key, timeout=timeout)


def tls_policy(config: ScanConfig) -> TLSPolicy:
    """The registry trust store; a bad CA bundle stops the run only when validation was asked for."""
    extra = ""
    if config.registry_ca:
        try:
            extra = read_ca_bundle(config.registry_ca)
        except ConfigurationError as exc:
            if config.registry_ca_validate:
                raise
            log.warning("%s; continuing with the default trust store only", exc)
    insecure = tuple(parse_insecure_registry(text) for text in config.insecure_registries)
    for entry in insecure:
        log.warning("registry %s is named insecure: plain http or unverified TLS allowed for it", entry)
    return TLSPolicy(extra_ca_pem=extra, insecure=insecure)


def keychain(config: ScanConfig, env: Mapping[str, str], home: Path) -> DockerConfigKeychain:
    path = Path(config.docker_config) if config.docker_config else default_config_dir(env, home)
    if path.is_dir() or not path.suffix:
        path = path / "config.json"
    return DockerConfigKeychain.from_file(path)


def run_scan(config: ScanConfig, *, env: Mapping[str, str], home: Path, progress: Progress | None = None,
             clock: Clock | None = None, pools: HttpPools | None = None,
             token_store: TokenStore | None = None, keychain_wrapper=None) -> Report:
    """Everything a scan needs, built from config; ConfigurationError before any network call.

    ``keychain_wrapper`` takes the docker-config keychain and returns the one to use
    (the Lambda wraps it with native ECR auth).
    """
    clock = clock or SystemClock()
    # Pools passed in (a warm Lambda's) already carry the TLS policy they were built with.
    pools = pools or HttpPools(tls_policy(config), maxsize=config.concurrency)
    credentials = keychain(config, env, home)
    if keychain_wrapper is not None:
        credentials = keychain_wrapper(credentials)
    options = ScanOptions(
        selection=Selection(names=normalise_names(config.names), label_enable=config.label_enable,
                            scope=config.scope),
        include_stopped=config.include_stopped, concurrency=config.concurrency, timeout=config.timeout)
    return scan(DockerDaemon(config.daemon), options, pools=pools, keychain=credentials,
                token_cache=MemoryTokenCache(clock=clock, shared=token_store), clock=clock, progress=progress)


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None
