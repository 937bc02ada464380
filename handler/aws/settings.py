"""The Lambda's settings: environment variables, and the endpoints an event names.

An event names what to scan in one of four ways (``targets_for``):
    {} or an EventBridge event          the environment's endpoint
    {"endpoint": {...}}                 that endpoint, its fields over the environment's
    {"endpoints": [{...}, ...]}         several, scanned together in this invocation
    {"fleet": {"bucket", "key"}}        the JSON list in S3 (infra/fleet.example.json), the same
    {"Items": [...], "BatchInput": {}}  a Step Functions ItemBatcher batch of the fleet list:
                                        scanned together, the report returned, nothing published

Variables go through the settings table (handler.settings); an endpoint object, alone or in a
list, is an item of handler.fleet (the CLI's fleet file's rules), each field given over its
variable's value, then the default. Every problem is collected before anything is
reported, so one error names every offending variable or field at once; nothing is scanned
after one. docs/lambda.md's variable table is written from the table.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Mapping

from engine.errors import ConfigurationError
from handler import settings as table

# Keys an EventBridge event or scheduled event carries; they mean "use the environment's endpoint".
_ENVELOPE = frozenset({"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                       "detail"})


class InvalidEventError(ConfigurationError):
    """The invocation event does not say what to scan in a form we accept."""


MAX_EVENT_ENDPOINTS = 1000  # far more than fit one invocation's time (docs/lambda.md); a list is a mistake past it


@dataclass(frozen=True)
class EndpointSpec:
    """One Docker endpoint and what to select on it (the fields an event may override)."""

    host: str = ""
    tls_secret: str = ""  # a Secrets Manager id or ARN, or "ssm:/parameter/prefix"
    names: tuple[str, ...] = ()
    label_enable: bool = False
    scope: str | None = None
    include_stopped: bool = False
    name: str = ""  # a display name (a fleet item's); "" for the host


@dataclass(frozen=True)
class LambdaSettings:
    endpoint: EndpointSpec
    topic_arn: str = ""
    report_bucket: str = ""
    report_prefix: str = "reports/"
    report_link_expiry: int = 86_400  # seconds the presigned link to the HTML report lasts
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
    notify_urls_secret: str = ""  # a Secrets Manager id holding more of them
    notify_timeout: float = 30.0
    apply: bool = False  # APPLY: update what the scan finds (docs/update.md)
    update: Mapping[str, object] | None = None  # the update rows' values (handler.compose.update_options)


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
        report_prefix=values["report_prefix"] or "", report_link_expiry=values["report_link_expiry"],
        notify=values["notify"], token_table=values["token_cache"], digest_cache_ttl=values["digest_cache_ttl"],
        state_table=state_table, registry_auth_secret=values["registry_auth_secret"] or "",
        registry_ca=values["registry_ca"], registry_ca_validate=values["registry_ca_validate"],
        insecure_registries=values["insecure_registries"], concurrency=values["concurrency"],
        versions=values["versions"], timeout=values["timeout"], delivery_margin=values["delivery_margin"],
        log_level=values["log_level"], notify_urls=values["notify_urls"], notify_timeout=values["notify_timeout"],
        notify_urls_secret=values["notify_urls_secret"] or "",
        apply=values["apply"], update={name: values[name] for name in _UPDATE_ROWS})


_UPDATE_ROWS = ("rolling", "health_timeout", "stop_timeout", "cleanup", "concurrency")


def early_log_level(env: Mapping[str, str]) -> str:
    """SPYGLASS_LOG_LEVEL for logging the reading of the settings themselves (a bad value: the default;
    settings_from_env reports it)."""
    given = table.read(table.environment(env, table.LAMBDA), table.LAMBDA, [])
    return given.get("log_level") or table.BY_NAME["log_level"].default_text(table.LAMBDA)


def _endpoint(values: Mapping[str, object]) -> EndpointSpec:
    return EndpointSpec(host=values["host"] or "", tls_secret=values["tls_secret"] or "", names=values["names"],
                        label_enable=values["label_enable"], scope=values["scope"],
                        include_stopped=values["include_stopped"])


@dataclass(frozen=True)
class Location:
    """An S3 object: the fleet list an event names, a report the function stored."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "key": self.key, "uri": self.uri}


@dataclass(frozen=True)
class Targets:
    """What one invocation scans: the endpoints, or the fleet list to read them from."""

    endpoints: tuple[EndpointSpec, ...]
    correlation_id: str
    fleet: Location | None = None
    batch: bool = False  # a Step Functions batch: return the report, publish nothing

    @property
    def fleet_name(self) -> str:
        """The name of a list's or fleet's report, and its NOTIFY=change state key: the event's
        correlation_id, else one that stays the same from one invocation to the next for the same
        fleet (the S3 list's location; the listed hosts' digest), so that change can match."""
        if self.correlation_id:
            return self.correlation_id
        if self.fleet is not None:
            return self.fleet.uri
        hosts = "\n".join(sorted({spec.host for spec in self.endpoints}))
        return "endpoints-" + hashlib.sha256(hosts.encode()).hexdigest()[:12]


_SHAPES = ("endpoint", "endpoints", "fleet", "Items")


def _lambda_item_fields() -> dict:
    """handler.fleet's item fields the Lambda takes: the table's event fields and a display name (its
    TLS comes from tls_secret, not from files; imported when an endpoint is read: handler.fleet brings
    handler.compose and the engine)."""
    from handler.fleet import LAMBDA_FIELDS

    taken = {"name", *table.event_field_names()}
    return {field: kind for field, kind in LAMBDA_FIELDS.items() if field in taken}


def targets_for(event: object, default: EndpointSpec) -> Targets:
    """What the event names (see the module docstring); InvalidEventError lists every problem."""
    problems: list[str] = []
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"invalid event: expected a JSON object, got {table.json_type(event)}")
    unknown = sorted(str(k) for k in event if k not in _ENVELOPE | {*_SHAPES, "BatchInput", "correlation_id"})
    problems += [f"{key}: unknown field" for key in unknown]
    given = [shape for shape in _SHAPES if shape in event]
    if len(given) > 1:
        problems.append(f"{' and '.join(given)}: give one of them")
    batch = event.get("BatchInput", {}) if "Items" in event else {}
    correlation_id = _correlation_id(event.get("correlation_id", batch.get("correlation_id", "")
                                               if isinstance(batch, Mapping) else ""), problems)
    fleet, specs = None, (default,)  # every shape given is checked, so one error names every problem
    if "endpoint" in event:
        specs = (_endpoint_item(event["endpoint"], default, problems),)
    for key in ("endpoints", "Items"):
        if key in event:
            specs = endpoints_from_list(event[key], default, problems, where=key)
    if "fleet" in event:
        fleet, specs = _fleet_location(event["fleet"], problems), ()
    if not problems and any(not spec.host for spec in specs):
        problems.append("endpoint: host: required (no DOCKER_HOST in the environment)")
    if problems:
        raise InvalidEventError("invalid event, nothing scanned: " + "; ".join(problems))
    return Targets(specs, correlation_id, fleet, batch="Items" in event)


def endpoints_from_list(items: object, default: EndpointSpec, problems: list[str], *,
                        where: str = "endpoints") -> tuple[EndpointSpec, ...]:
    """A JSON list of endpoint items (an event's, or the fleet list's), parsed by handler.fleet as the
    CLI's and the Action's are, each over default (the environment's fields)."""
    from handler.fleet import parse_fleet

    if isinstance(items, list) and len(items) > MAX_EVENT_ENDPOINTS:
        problems.append(f"{where}: {len(items)} endpoints; at most {MAX_EVENT_ENDPOINTS} in one invocation "
                        "(a larger fleet runs on the state machine)")
        return ()
    fields = _lambda_item_fields()
    try:
        parsed = parse_fleet(items, fields=fields)
    except ConfigurationError as exc:  # "fleet: ..." for the list, "fleet item 3 (host): ..." per item
        problems.append(f"{where}: {str(exc).removeprefix('fleet: ')}")
        return ()
    return tuple(_spec(item.given, default, fields) for item in parsed)


def _endpoint_item(given: object, default: EndpointSpec, problems: list[str]) -> EndpointSpec:
    """The event's one endpoint: an item as a list's, named "endpoint", its host left to the
    environment's when it gives none."""
    from handler.fleet import parse_item

    fields = _lambda_item_fields()
    item = parse_item(given, fields=fields, problems=problems, where="endpoint", host_required=False)
    return _spec(item.given, default, fields)


def _spec(given: Mapping[str, object], default: EndpointSpec, fields) -> EndpointSpec:
    """An item's fields over default's; a field left out keeps the environment's value."""
    changes = {field: given[field] for field in fields if field in given}
    if "names" in changes:
        changes["names"] = tuple(changes["names"])
    return replace(default, **changes)


def _fleet_location(given: object, problems: list[str]) -> Location | None:
    if isinstance(given, Mapping) and set(given) == {"bucket", "key"} \
            and all(isinstance(given[k], str) and given[k] for k in ("bucket", "key")):
        return Location(given["bucket"], given["key"])
    problems.append('fleet: expected {"bucket": "...", "key": "..."} (the S3 object holding the fleet list)')
    return None


def _correlation_id(value: object, problems: list[str]) -> str:
    if not isinstance(value, str) or len(value) > 256:
        problems.append("correlation_id: must be a string of at most 256 characters")
        return ""
    return value
