"""The Lambda's settings: environment variables, and the per-endpoint overrides an event may carry.

Every problem is collected before anything is reported, so one error names
every offending variable or field at once; nothing is scanned after one.
docs/lambda.md lists the variables; this module is the one place they are read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Mapping

from engine.errors import ConfigurationError

NOTIFY_POLICIES = ("always", "stale", "change")
_HOST = re.compile(r"(tcp|unix)://\S+")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}")
# Keys an EventBridge event or scheduled event carries; they mean "use the environment's endpoint".
_ENVELOPE = frozenset({"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                       "detail"})
_ENDPOINT_FIELDS = ("host", "tls_secret", "names", "label_enable", "scope", "include_stopped")


class InvalidEventError(ConfigurationError):
    """The invocation event does not say what to scan in a form we accept."""


@dataclass(frozen=True)
class EndpointSpec:
    """One Docker endpoint and what to select on it."""

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
    state_table: str = ""  # where NOTIFY=change keeps the last delivered state
    registry_auth_secret: str = ""
    registry_ca: str | None = None
    insecure_registries: tuple[str, ...] = ()
    concurrency: int = 8
    timeout: float | None = None  # None: the function's remaining time is the only bound
    delivery_margin: float = 10.0
    log_level: str = "info"


def settings_from_env(env: Mapping[str, str]) -> LambdaSettings:
    """Read and check every variable; ConfigurationError lists all that are wrong."""
    problems: list[str] = []
    token_table = _token_table(env.get("TOKEN_CACHE", ""), problems)
    settings = LambdaSettings(
        endpoint=EndpointSpec(
            host=env.get("DOCKER_HOST", "").strip(),
            tls_secret=env.get("SPYGLASS_TLS_SECRET", "").strip(),
            names=tuple(_items(env.get("SPYGLASS_NAMES", ""))),
            label_enable=_flag(env, "SPYGLASS_LABEL_ENABLE", problems),
            scope=env.get("SPYGLASS_SCOPE") or None,
            include_stopped=_flag(env, "SPYGLASS_INCLUDE_STOPPED", problems)),
        topic_arn=env.get("SNS_TOPIC_ARN", "").strip(),
        report_bucket=env.get("REPORT_BUCKET", "").strip(),
        report_prefix=env.get("REPORT_PREFIX", "reports/"),
        notify=_choice(env, "NOTIFY", NOTIFY_POLICIES, "always", problems),
        token_table=token_table,
        state_table=env.get("STATE_TABLE", "").strip() or token_table,
        registry_auth_secret=env.get("SPYGLASS_REGISTRY_AUTH_SECRET", "").strip(),
        registry_ca=env.get("SPYGLASS_REGISTRY_CA") or None,
        insecure_registries=tuple(_items(env.get("SPYGLASS_INSECURE_REGISTRIES", ""))),
        concurrency=int(_number(env, "SPYGLASS_CONCURRENCY", 8, problems, whole=True, low=1)),
        timeout=_number(env, "SPYGLASS_TIMEOUT", None, problems, low=0, open_low=True),
        delivery_margin=_number(env, "SPYGLASS_DELIVERY_MARGIN", 10.0, problems, low=0),
        log_level=_choice(env, "SPYGLASS_LOG_LEVEL", ("debug", "info", "warning", "error"), "info", problems),
    )
    if settings.endpoint.host and not _HOST.fullmatch(settings.endpoint.host):
        problems.append("DOCKER_HOST: must be tcp://HOST:PORT (or unix:///path)")
    if settings.state_table and not _TABLE.fullmatch(settings.state_table):
        problems.append("STATE_TABLE: not a DynamoDB table name or ARN")
    if settings.notify == "change" and not settings.state_table:
        problems.append("NOTIFY=change: needs a table (TOKEN_CACHE=dynamodb:TABLE or STATE_TABLE)")
    if problems:
        raise ConfigurationError("invalid Lambda settings: " + "; ".join(problems))
    return settings


def endpoint_for(event: object, default: EndpointSpec) -> tuple[EndpointSpec, str]:
    """The endpoint to scan and the caller's correlation id ("" when none).

    An empty event or an EventBridge (scheduled) event means the environment's
    endpoint; ``{"endpoint": {...}}`` overrides its fields one by one.
    """
    problems: list[str] = []
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"invalid event: expected a JSON object, got {_json_type(event)}")
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
        problems.append(f"endpoint: expected an object, got {_json_type(given)}")
        return default
    problems += [f"endpoint.{key}: unknown field" for key in sorted(str(k) for k in given)
                 if key not in _ENDPOINT_FIELDS]
    changes = {}
    for key in _ENDPOINT_FIELDS:
        if key in given:
            value = _check_field(key, given[key], problems)
            if value is not None:
                changes[key] = value
    return replace(default, **changes)


def _check_field(key: str, value: object, problems: list[str]):
    where = f"endpoint.{key}"
    if key == "host":
        if isinstance(value, str) and _HOST.fullmatch(value):
            return value
        problems.append(f"{where}: must be a string tcp://HOST:PORT (or unix:///path)")
    elif key in ("tls_secret", "scope"):
        if isinstance(value, str) and value.strip():
            return value.strip()
        problems.append(f"{where}: must be a non-empty string")
    elif key in ("label_enable", "include_stopped"):
        if isinstance(value, bool):
            return value
        problems.append(f"{where}: must be true or false")
    elif key == "names":
        if isinstance(value, list) and all(isinstance(n, str) and n.strip() for n in value):
            return tuple(n.strip() for n in value)
        problems.append(f"{where}: must be a list of non-empty strings")
    return None


def _token_table(spec: str, problems: list[str]) -> str:
    spec = spec.strip()
    if spec in ("", "memory"):
        return ""
    kind, _, table = spec.partition(":")
    if kind != "dynamodb" or not _TABLE.fullmatch(table):
        problems.append("TOKEN_CACHE: must be 'memory' or 'dynamodb:TABLE'")
        return ""
    return table


def parse_token_cache(spec: str) -> str:
    """The table of a TOKEN_CACHE / --token-cache value ("" for memory); ConfigurationError otherwise."""
    problems: list[str] = []
    table = _token_table(spec, problems)
    if problems:
        raise ConfigurationError(problems[0])
    return table


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _flag(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    problems.append(f"{name}: must be true or false")
    return False


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str,
            problems: list[str]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        problems.append(f"{name}: must be one of {', '.join(choices)}")
        return default
    return value


def _number(env: Mapping[str, str], name: str, default, problems: list[str], *, whole: bool = False,
            low: float = 0, open_low: bool = False):
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        problems.append(f"{name}: not a {'whole ' if whole else ''}number")
        return default
    if not math.isfinite(value) or value < low or (open_low and value == low):
        problems.append(f"{name}: must be {'more than' if open_low else 'at least'} {low:g}")
        return default
    return value


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)
