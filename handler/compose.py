"""Composition: settings in, a wired scan out. Every entry point (CLI, Lambda, Action) goes through here.

The entry points read flags, inputs, events and the environment through
handler.settings and hand this module resolved values only (it never reads the
environment); it builds the engine's collaborators (TLS policy, HTTP pools,
keychain, token cache, daemon client) and makes the one delegating call.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from engine.authn import ANONYMOUS_KEYCHAIN, DockerConfigKeychain, Keychain
from engine.clock import Clock, SystemClock
from engine.daemon import DaemonSettings, DockerDaemon
from engine.digestcache import DigestCache
from engine.enginehttp import TLSContexts
from engine.errors import ConfigurationError
from engine.report import Report
from engine.selection import Selection, normalise_names
from engine.tlsconfig import TLSPolicy, parse_insecure_registry, read_ca_bundle
from engine.tokens import MemoryTokenCache, TokenStore

if TYPE_CHECKING:
    # The registry code (engine.scan and below, urllib3) loads in run_scan while the daemons
    # connect; the update's modules load with the update only.
    from engine.apply import UpdateOptions
    from engine.plan import Plan
    from engine.scan import Endpoint, Progress
    from engine.transport import HttpPools
    from engine.update import UpdateRun

log = logging.getLogger("spyglass")

@dataclass(frozen=True)
class EndpointConfig:
    """One endpoint of a fleet: how to reach it, its display name, and the selection it gives
    itself (None: the run's)."""

    daemon: DaemonSettings
    name: str = ""
    names: tuple[str, ...] | None = None
    label_enable: bool | None = None
    scope: str | None = None
    scope_given: bool = False  # scope None given on purpose is "no scope"; not given is the run's
    include_stopped: bool | None = None


@dataclass(frozen=True)
class ScanConfig:
    daemon: DaemonSettings | None  # a fleet of one; None when endpoints are given
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
    versions: str = "major"  # the highest level of newer version tags reported
    endpoints: tuple[EndpointConfig, ...] = ()  # a fleet (else daemon alone)
    endpoint_concurrency: int = 16
    fleet_name: str = ""

    def fleet(self) -> tuple[EndpointConfig, ...]:
        return self.endpoints or (EndpointConfig(self.daemon),)


def scan_config(values: Mapping[str, object], daemon: DaemonSettings | None, **overrides) -> ScanConfig:
    """A ScanConfig from resolved settings (handler.settings names them as ScanConfig does); overrides win."""
    given = {f.name: values[f.name] for f in fields(ScanConfig) if f.name in values and f.name != "daemon"}
    given.update(overrides)
    for name in ("names", "insecure_registries", "endpoints"):
        given[name] = tuple(given.get(name) or ())
    return ScanConfig(daemon=daemon, **given)


def daemon_settings(host: str, *, tls_verify: bool = False, ca: str | None = None, cert: str | None = None,
                    key: str | None = None, cert_dir: Path | None = None, timeout: float = 30.0) -> DaemonSettings:
    """Docker CLI rules: explicit files over ca.pem, cert.pem and key.pem in cert_dir ($DOCKER_CERT_PATH)."""
    if cert_dir is not None:
        ca = ca or _existing(cert_dir / "ca.pem")
        cert = cert or _existing(cert_dir / "cert.pem")
        key = key or _existing(cert_dir / "key.pem")
    if host.startswith("unix://") or host.startswith("npipe://"):
        return DaemonSettings(host=host, timeout=timeout)
    if tls_verify and not ca:
        where = f" (ca.pem in {cert_dir})" if cert_dir is not None else ""
        raise ConfigurationError(f"TLS verification asked for {host}, but no CA file{where}")
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


def keychain(config: ScanConfig) -> Keychain:
    """The docker config's credentials; no config named, no credentials."""
    if not config.docker_config:
        return ANONYMOUS_KEYCHAIN
    path = Path(config.docker_config)
    if path.is_dir() or not path.suffix:
        path = path / "config.json"
    return DockerConfigKeychain.from_file(path)


def write_json_report(path: Path, text: str) -> None:
    """The JSON report into a file the user named; a failure is a configuration error naming the file."""
    write_report(path, text + "\n")


def write_report(path: Path, text: str) -> None:
    """A rendering of the report (JSON, the HTML page) into a file the user named, as it is."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"write report {path}: {exc.strerror or exc}") from None


def render_page(report: Report) -> str:
    """The report as one self-contained HTML page (engine.report_html reads its JSON document)."""
    from engine.report_html import render_html

    return render_html(report.to_dict())


def run_scan(config: ScanConfig, *, progress: Progress | None = None,
             clock: Clock | None = None, pools: HttpPools | None = None,
             token_store: TokenStore | None = None, keychain_wrapper=None,
             digest_cache: DigestCache | None = None) -> Report:
    """Everything a scan needs, built from config; ConfigurationError before any network call.

    ``keychain_wrapper`` takes the docker-config keychain and returns the one to use
    (the Lambda wraps it with native ECR auth).
    """
    clock = clock or SystemClock()
    credentials = keychain(config)
    if keychain_wrapper is not None:
        credentials = keychain_wrapper(credentials)
    tls = tls_policy(config) if pools is None else None
    tls_contexts = TLSContexts()  # the endpoints' CA and client certificate files, each loaded once
    daemons = [DockerDaemon(e.daemon, tls_contexts=tls_contexts) for e in config.fleet()]
    # The first listings' connections (TCP, TLS, the version: three of their four round trips)
    # open while the registry code loads, rather than after it.
    warmed = daemons[:max(1, config.endpoint_concurrency)]
    warming = ThreadPoolExecutor(max_workers=2 * len(warmed), thread_name_prefix="spyglass-warm")
    try:
        for daemon in warmed:
            daemon.warm(warming)
        return _scan_warmed(config, daemons, credentials, tls, clock=clock, pools=pools, progress=progress,
                            token_store=token_store, digest_cache=digest_cache)
    finally:
        for daemon in warmed:
            daemon.cool()
        warming.shutdown(wait=True)


def _scan_warmed(config: ScanConfig, daemons: list[DockerDaemon], credentials: Keychain, tls: TLSPolicy | None, *,
                 clock: Clock, pools: HttpPools | None, progress: Progress | None, token_store: TokenStore | None,
                 digest_cache: DigestCache | None) -> Report:
    from engine.scan import ScanOptions, scan_fleet
    from engine.transport import HttpPools

    options = ScanOptions(
        selection=Selection(names=normalise_names(config.names), label_enable=config.label_enable,
                            scope=config.scope),
        include_stopped=config.include_stopped, concurrency=config.concurrency, timeout=config.timeout,
        versions=config.versions, endpoint_concurrency=config.endpoint_concurrency)
    # Pools passed in (a warm Lambda's) already carry the TLS policy they were built with, and stay
    # open for the next invocation; pools made here are closed here.
    own_pools = pools is None
    pools = pools or HttpPools(tls, maxsize=config.concurrency)
    try:
        return scan_fleet([_endpoint(e, daemon, config) for e, daemon in zip(config.fleet(), daemons)], options,
                          name=config.fleet_name, pools=pools, keychain=credentials,
                          token_cache=MemoryTokenCache(clock=clock, shared=token_store), clock=clock,
                          progress=progress, digest_cache=digest_cache)
    finally:
        if own_pools:
            pools.close()


def update_options(values: Mapping[str, object], *, time_limit: float | None = None) -> UpdateOptions:
    """The update's options from resolved settings (the same rows in the CLI, the Action and the Lambda);
    time_limit: seconds the run may take from its start (the Lambda's time left), None for none."""
    from engine.apply import UpdateOptions

    return UpdateOptions(rolling=values["rolling"], health_timeout=values["health_timeout"],
                         stop_timeout=values["stop_timeout"], cleanup=values["cleanup"],
                         pull_concurrency=values["concurrency"], time_limit=time_limit)


def run_update(config: ScanConfig, options: UpdateOptions, *, dry_run: bool = False,
               confirm: Callable[[Plan], bool] | None = None, clock: Clock | None = None,
               keychain_wrapper=None, **scan_collaborators) -> UpdateRun:
    """`spyglass update`: the scan as run_scan builds it (``scan_collaborators`` go to it), then the
    update over the same daemon settings, pulling with the same credentials."""
    if config.daemon is None:  # the order, the hooks and the rollback are one daemon's
        raise ConfigurationError("an update works on one endpoint at a time: give one host, not a fleet")
    credentials = keychain(config)
    if keychain_wrapper is not None:
        credentials = keychain_wrapper(credentials)
    from engine.engineapi import EngineApi
    from engine.update import update

    api = EngineApi(config.daemon)
    try:
        return update(api, lambda: run_scan(config, clock=clock, keychain_wrapper=keychain_wrapper,
                                            **scan_collaborators), options,
                      selection=Selection(names=normalise_names(config.names), label_enable=config.label_enable,
                                          scope=config.scope),
                      dry_run=dry_run, confirm=confirm, keychain=credentials, clock=clock)
    finally:
        api.close()

def _endpoint(given: EndpointConfig, daemon: DockerDaemon, config: ScanConfig) -> Endpoint:
    """The engine's endpoint: its own selection where it gives any of names, label_enable, scope."""
    selection = None
    if given.names is not None or given.label_enable is not None or given.scope_given:
        names = config.names if given.names is None else given.names
        selection = Selection(names=normalise_names(names),
                              label_enable=config.label_enable if given.label_enable is None else given.label_enable,
                              scope=given.scope if given.scope_given else config.scope)
    from engine.scan import Endpoint

    return Endpoint(daemon, name=given.name, selection=selection,
                    include_stopped=given.include_stopped)


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None
