"""Several endpoints in one invocation: an event's list or fleet, or a batch of the fleet state machine.

    scan_endpoints(specs)   each endpoint scanned with what the invocation shares: the HTTP pools,
                            the registry credentials, one token cache (over the DynamoDB table) and
                            one digest cache (the run's, on the table; else in memory), so each image
                            is asked of its registry once for all of them; ENDPOINTS_AT_ONCE at a time;
                            one report document (schema_version 2) with an entry per endpoint, an
                            endpoint that cannot be listed an entry with its reason
    deliver_document(doc)   an event's list (not a batch): the report stored in S3 and one message
                            under NOTIFY, as the fleet run's aggregation does (handler/aws/aggregate.py)

The endpoints are scanned one engine scan each, side by side: a batch shares HEADs and tokens
through the caches, each endpoint still pings its registries. Lane fleet's engine fleet scan (one
listing pass over every daemon, one lookup phase) takes the place of the loop when merged.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("spyglass.lambda")

ENDPOINTS_AT_ONCE = 4  # each scan runs its own lookups; more at once would crowd 512 MB and its CPU share


def scan_endpoints(settings, specs, runtime, budget: float | None, run_id: str, *, name: str) -> tuple[dict, dict]:
    """(the report document, cache statistics) for every endpoint of specs."""
    from engine.digestcache import MemoryDigestCache
    from handler.aws.fleetreport import merge
    from handler.aws.resultwriter import BatchOutcome

    tokens, digests = shared_caches(settings, runtime, run_id)
    digests = digests or MemoryDigestCache(clock=runtime.clock)
    materials = Materials(settings, runtime)
    started = runtime.clock.now()
    with ThreadPoolExecutor(max_workers=min(ENDPOINTS_AT_ONCE, len(specs)),
                            thread_name_prefix="spyglass-endpoint") as pool:
        entries = list(pool.map(lambda spec: _endpoint(settings, spec, runtime, budget, materials, tokens, digests),
                                specs))
    batches = [BatchOutcome(spec.name or spec.host, "SUCCEEDED", report=entry) for spec, entry in zip(specs, entries)]
    doc = merge(name, batches, started_at=started, finished_at=runtime.clock.now())
    doc.pop("run")  # no Step Functions run behind it
    stats = {"token_cache": tokens.stats() if tokens else None,
             "digest_cache": digests.stats() if hasattr(digests, "stats") else None}
    return doc, stats


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


def _endpoint(settings, spec, runtime, budget, materials, tokens, digests) -> dict:
    """One endpoint's scan as a one-endpoint document (its failure to list as its entry)."""
    from engine.errors import DaemonError
    from handler.compose import run_scan

    started = runtime.clock.now()
    try:
        with scan_inputs(settings, spec, runtime, budget, materials) as (config, wrapper):
            report = run_scan(config, clock=runtime.clock, pools=runtime.pools_for(config), token_store=tokens,
                              keychain_wrapper=wrapper, digest_cache=digests)
    except DaemonError as exc:
        log.error("endpoint could not be scanned: %s", exc, extra={"endpoint": spec.host})
        return _document(spec, started, runtime.clock.now(), failure=exc)
    entry = report.to_dict()
    if "endpoints" in entry:  # a schema_version 2 report (a fleet of one)
        entry = dict(entry["endpoints"][0], registries=entry.get("registries") or [])
    return _document(spec, report.started_at, report.finished_at, listed=entry)


def _document(spec, started: float, finished: float, *, listed: dict | None = None, failure=None) -> dict:
    """A one-endpoint report document in the fleet shape (schema_version 2)."""
    from handler.aws.fleetreport import CONTAINER_COUNTS

    if listed is None:
        status = "unreachable" if getattr(failure, "unreachable", False) else "error"
        endpoint = {"endpoint": spec.host, "name": spec.name or spec.host, "status": status,
                    "reason": failure.reason, "error": str(failure), "api_version": None,
                    "summary": dict.fromkeys(CONTAINER_COUNTS, 0), "containers": []}
        registries = []
    else:
        summary = {count: listed["summary"].get(count, 0) for count in CONTAINER_COUNTS}
        endpoint = {"endpoint": spec.host, "name": spec.name or spec.host, "status": listed["status"],
                    "reason": None, "error": None, "api_version": listed.get("api_version"),
                    "summary": summary, "containers": listed["containers"]}
        registries = listed.get("registries") or []
    return {"schema_version": 2, "endpoints": [endpoint], "registries": registries,
            "started_at": started, "finished_at": finished}


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
def scan_inputs(settings, spec, runtime, budget, materials):
    """(ScanConfig, keychain wrapper) for one endpoint; its key material is gone when the block ends."""
    from handler.aws.ecr import EcrKeychain
    from handler.aws.secrets import private_cert_dir
    from handler.compose import ScanConfig, daemon_settings

    registry_keychain = materials.registry_keychain()
    with contextlib.ExitStack() as stack:
        tls = {}
        if spec.tls_secret:
            folder = stack.enter_context(private_cert_dir(materials.tls(spec.tls_secret)))
            tls = {"tls_verify": True, "ca": str(folder / "ca.pem"), "cert": str(folder / "cert.pem"),
                   "key": str(folder / "key.pem")}
        timeout = 30.0 if budget is None else min(30.0, max(1.0, budget))
        daemon = daemon_settings(spec.host, timeout=timeout, **tls)
        config = ScanConfig(daemon=daemon, names=spec.names, include_stopped=spec.include_stopped,
                            label_enable=spec.label_enable, scope=spec.scope, registry_ca=settings.registry_ca,
                            registry_ca_validate=settings.registry_ca_validate,
                            insecure_registries=settings.insecure_registries,
                            concurrency=settings.concurrency, versions=settings.versions, timeout=budget)
        yield config, lambda default: EcrKeychain(registry_keychain or default, runtime.ecr_tokens)
