"""The Lambda's settings: environment variables, and the per-endpoint overrides an event may carry.

Both go through the settings table (handler.settings): an event field > its variable > the
default, with the table's one rule per type. Every problem is collected before anything is
reported, so one error names every offending variable or field at once; nothing is scanned
after one. docs/lambda.md's variable table is written from the table.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from engine.errors import ConfigurationError
from handler import settings as table

# Keys an EventBridge event or scheduled event carries; they mean "use the environment's endpoint".
_ENVELOPE = frozenset({"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                       "detail"})


class InvalidEventError(ConfigurationError):
    """The invocation event does not say what to scan in a form we accept."""


@dataclass(frozen=True)
class EndpointSpec:
    """One Docker endpoint and what to select on it (the fields an event may override)."""

    host: str = ""
    tls_secret: str = ""  # a Secrets Manager id or ARN, or "ssm:/parameter/prefix"
    names: tuple[str, ...] = ()
    label_enable: bool = False
    scope: str | None = None
    include_stopped: bool = False


@dataclass(frozen=True)
class LambdaSettings:
    endpoint: EndpointSpec
    topic_arn: str = ""
    report_bucket: str = ""
    report_prefix: str = "reports/"
    notify: str = "always"
    token_table: str = ""  # TOKEN_CACHE=dynamodb:TABLE
    digest_cache_ttl: float = 300.0  # seconds; with a token table, tag digests are shared there (0: not)
    state_table: str = ""  # where NOTIFY=change keeps the last delivered state
    registry_auth_secret: str = ""
    registry_ca: str | None = None
    registry_ca_validate: bool = True
    insecure_registries: tuple[str, ...] = ()
    concurrency: int = 8
    versions: str = "major"
    timeout: float | None = None  # None: the function's remaining time is the only bound
    delivery_margin: float = 10.0
    log_level: str = "info"
    notify_urls: tuple[str, ...] = ()  # Apprise URLs: secrets, never logged
    notify_timeout: float = 30.0


def settings_from_env(env: Mapping[str, str]) -> LambdaSettings:
    """Read and check every variable; ConfigurationError lists all that are wrong."""
    problems: list[str] = []
    values = table.collect(table.LAMBDA, [table.environment(env, table.LAMBDA)], problems)
    state_table = values["state_table"] or values["token_cache"]
    if values["notify"] == "change" and not state_table:
        problems.append("NOTIFY=change: needs a table (TOKEN_CACHE=dynamodb:TABLE or STATE_TABLE)")
    if problems:
        raise ConfigurationError("invalid Lambda settings: " + "; ".join(problems))
    return LambdaSettings(
        endpoint=_endpoint(values),
        topic_arn=values["sns_topic_arn"] or "", report_bucket=values["report_bucket"] or "",
        report_prefix=values["report_prefix"] or "", notify=values["notify"], token_table=values["token_cache"],
        digest_cache_ttl=values["digest_cache_ttl"],
        state_table=state_table, registry_auth_secret=values["registry_auth_secret"] or "",
        registry_ca=values["registry_ca"], registry_ca_validate=values["registry_ca_validate"],
        insecure_registries=values["insecure_registries"], concurrency=values["concurrency"],
        versions=values["versions"], timeout=values["timeout"], delivery_margin=values["delivery_margin"],
        log_level=values["log_level"], notify_urls=values["notify_urls"], notify_timeout=values["notify_timeout"])


def early_log_level(env: Mapping[str, str]) -> str:
    """SPYGLASS_LOG_LEVEL for logging the reading of the settings themselves (a bad value: the default;
    settings_from_env reports it)."""
    given = table.read(table.environment(env, table.LAMBDA), table.LAMBDA, [])
    return given.get("log_level") or table.BY_NAME["log_level"].default_text(table.LAMBDA)


def _endpoint(values: Mapping[str, object]) -> EndpointSpec:
    return EndpointSpec(host=values["host"] or "", tls_secret=values["tls_secret"] or "", names=values["names"],
                        label_enable=values["label_enable"], scope=values["scope"],
                        include_stopped=values["include_stopped"])


def endpoint_for(event: object, default: EndpointSpec) -> tuple[EndpointSpec, str]:
    """The endpoint to scan and the caller's correlation id ("" when none).

    An empty event or an EventBridge (scheduled) event means the environment's
    endpoint; ``{"endpoint": {...}}`` overrides its fields one by one.
    """
    problems: list[str] = []
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"invalid event: expected a JSON object, got {table.json_type(event)}")
    unknown = sorted(str(k) for k in event if k not in _ENVELOPE | {"endpoint", "correlation_id"})
    problems += [f"{key}: unknown field" for key in unknown]
    correlation_id = event.get("correlation_id", "")
    if not isinstance(correlation_id, str) or len(correlation_id) > 256:
        problems.append("correlation_id: must be a string of at most 256 characters")
        correlation_id = ""
    spec = default
    if "endpoint" in event:
        spec = _override(default, event["endpoint"], problems)
    if not problems and not spec.host:
        problems.append("endpoint.host: required (no DOCKER_HOST in the environment)")
    if problems:
        raise InvalidEventError("invalid event, nothing scanned: " + "; ".join(problems))
    return spec, correlation_id


def _override(default: EndpointSpec, given: object, problems: list[str]) -> EndpointSpec:
    if not isinstance(given, Mapping):
        problems.append(f"endpoint: expected an object, got {table.json_type(given)}")
        return default
    known = table.event_field_names()
    problems += [f"endpoint.{key}: unknown field" for key in sorted(str(k) for k in given) if key not in known]
    changes = table.read(table.event_fields(given), table.LAMBDA, problems)
    return replace(default, **changes)
