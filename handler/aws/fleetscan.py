"""Several endpoints in one invocation: an event's list or fleet, or a batch of the fleet state machine.

    scan_endpoints(specs)   one engine fleet scan (engine.scan.scan_fleet through handler.compose):
                            the daemons listed side by side, each registry pinged and asked for
                            tokens once, each image looked up once for all of them; with the run's
                            digest cache on the table, once for the whole Step Functions run; the
                            report document (schema_version 2), an endpoint that cannot be listed
                            an entry with its reason
    scan_inputs(spec)       one endpoint's ScanConfig (the single-endpoint path)

Secrets are read once per invocation however many endpoints name them (Materials); the key
material of every endpoint is in private folders that are gone when the scan ends.
"""
from __future__ import annotations

import contextlib
import logging
import threading

log = logging.getLogger("spyglass.lambda")


def scan_endpoints(settings, specs, runtime, budget: float | None, run_id: str, *, name: str) -> tuple[dict, dict]:
    """(the report document, cache statistics) for every endpoint of specs, in one engine fleet scan."""
    from engine.digestcache import MemoryDigestCache
    from handler.compose import run_scan

    tokens, digests = shared_caches(settings, runtime, run_id)
    digests = digests or MemoryDigestCache(clock=runtime.clock)
    with _fleet_inputs(settings, specs, runtime, budget, Materials(settings, runtime), name) as (config, wrapper):
        report = run_scan(config, clock=runtime.clock, pools=runtime.pools_for(config), token_store=tokens,
                          keychain_wrapper=wrapper, digest_cache=digests)
    stats = {"token_cache": tokens.stats() if tokens else None,
             "digest_cache": digests.stats() if hasattr(digests, "stats") else None}
    return report.to_dict(), stats


def shared_caches(settings, runtime, run_id: str):
    """(token store, digest cache) on the TOKEN_CACHE table, each None when not configured."""
    from handler.aws.dynamodb import DynamoDigestCache, DynamoTokenStore

    if not settings.token_table:
        return None, None
    dynamodb = runtime.clients.client("dynamodb")
    tokens = DynamoTokenStore(settings.token_table, client=dynamodb, clock=runtime.clock)
    digests = None
    if settings.digest_cache_ttl > 0:
        digests = DynamoDigestCache(settings.token_table, run=run_id, client=dynamodb, clock=runtime.clock,
                                    ttl=settings.digest_cache_ttl)
    return tokens, digests


class Materials:
    """Secrets read once per invocation, however many endpoints name them."""

    def __init__(self, settings, runtime):
        self._settings = settings
        self._runtime = runtime
        self._lock = threading.Lock()
        self._tls: dict[str, object] = {}
        self._registry = None
        self._registry_read = False

    def registry_keychain(self):
        from handler.aws.secrets import fetch_docker_config

        with self._lock:
            if not self._registry_read and self._settings.registry_auth_secret:
                self._registry = fetch_docker_config(self._settings.registry_auth_secret,
                                                     secrets_client=self._runtime.clients.client("secretsmanager"))
            self._registry_read = True
            return self._registry

    def tls(self, reference: str):
        from handler.aws.secrets import fetch_tls_material

        with self._lock:
            if reference not in self._tls:
                clients = self._runtime.clients
                ssm = clients.client("ssm") if reference.startswith("ssm:") else None
                self._tls[reference] = fetch_tls_material(reference, secrets_client=clients.client("secretsmanager"),
                                                          ssm_client=ssm)
            return self._tls[reference]


@contextlib.contextmanager
def _fleet_inputs(settings, specs, runtime, budget, materials, name: str):
    """(ScanConfig with an EndpointConfig per spec, keychain wrapper); key material gone after the block."""
    from dataclasses import replace

    from handler.compose import EndpointConfig

    with contextlib.ExitStack() as stack:
        endpoints, folders = [], {}
        for spec in specs:
            if spec.tls_secret and spec.tls_secret not in folders:  # one folder per secret, not per endpoint
                folders[spec.tls_secret] = stack.enter_context(_tls_folder(materials, spec.tls_secret))
            daemon = _daemon(spec, budget, folders.get(spec.tls_secret))
            endpoints.append(EndpointConfig(daemon, name=spec.name, names=spec.names, label_enable=spec.label_enable,
                                            scope=spec.scope, scope_given=True, include_stopped=spec.include_stopped))
        config, wrapper = _config(settings, runtime, budget, materials, daemon=None)
        yield replace(config, endpoints=tuple(endpoints), fleet_name=name), wrapper


@contextlib.contextmanager
def _tls_folder(materials, reference: str):
    from handler.aws.secrets import private_cert_dir

    with private_cert_dir(materials.tls(reference)) as folder:
        yield folder


def _daemon(spec, budget, folder):
    """The daemon's settings; TLS from the secret's private folder (no DOCKER_CERT_PATH in a Lambda)."""
    from handler.compose import daemon_settings

    tls = {}
    if folder is not None:
        tls = {"tls_verify": True, "ca": str(folder / "ca.pem"), "cert": str(folder / "cert.pem"),
               "key": str(folder / "key.pem")}
    timeout = 30.0 if budget is None else min(30.0, max(1.0, budget))
    return daemon_settings(spec.host, timeout=timeout, **tls)


def _config(settings, runtime, budget, materials, *, daemon, spec=None):
    """The run's ScanConfig (an endpoint's selection when spec is given) and the keychain wrapper."""
    from handler.aws.ecr import EcrKeychain
    from handler.compose import ScanConfig

    registry_keychain = materials.registry_keychain()
    selection = {}
    if spec is not None:
        selection = dict(names=spec.names, include_stopped=spec.include_stopped, label_enable=spec.label_enable,
                         scope=spec.scope)
    config = ScanConfig(daemon=daemon, registry_ca=settings.registry_ca,
                        registry_ca_validate=settings.registry_ca_validate,
                        insecure_registries=settings.insecure_registries, concurrency=settings.concurrency,
                        versions=settings.versions, timeout=budget, **selection)
    return config, lambda default: EcrKeychain(registry_keychain or default, runtime.ecr_tokens)


@contextlib.contextmanager
def scan_inputs(settings, spec, runtime, budget, materials):
    """(ScanConfig, keychain wrapper) for one endpoint; its key material is gone when the block ends."""
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(_tls_folder(materials, spec.tls_secret)) if spec.tls_secret else None
        yield _config(settings, runtime, budget, materials, daemon=_daemon(spec, budget, folder), spec=spec)
