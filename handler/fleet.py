"""A fleet as data: a JSON list of endpoint items, each field parsed by the settings table's kinds.

    item        {"host": "tcp://10.0.0.5:2376", "name": "web-1", "tls_verify": true,
                 "cert_path": "/etc/spyglass/web-1", "names": ["app"], "label_enable": false,
                 "scope": "prod", "include_stopped": false}
    fields      host (required); name (display name, default the host); tls_verify; cert_path (a
                folder holding ca.pem, cert.pem and key.pem) or ca_cert / client_cert / client_key
                (files; in the Action also PEM content); names, label_enable, scope,
                include_stopped; the Lambda also takes tls_secret
    defaults    a field left out takes the run's value (the command line's, the Action's inputs,
                the Lambda's environment)
    problems    every bad item and field at once, in one ConfigurationError (exit 2), each named
                "fleet item 3 (tcp://10.0.0.7:2376): tls_verify: 'maybe' is not a boolean"

The CLI reads the list from --fleet FILE, the Action from its fleet input; the Lambda parses its
event's endpoints and its S3 fleet list (infra/fleet.example.json) with the same function and
LAMBDA_FIELDS, and its event's single endpoint with parse_item, as an item named "endpoint" whose
host may be left to the environment's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from engine.errors import ConfigurationError
from engine.text import one_line
from handler import settings as table
from handler.compose import EndpointConfig, daemon_settings

ITEM_FIELDS: Mapping[str, table.Kind] = {
    "host": table.HOST, "name": table.TEXT, "tls_verify": table.BOOL, "cert_path": table.PATH,
    "ca_cert": table.PATH, "client_cert": table.PATH, "client_key": table.PATH, "names": table.LIST,
    "label_enable": table.BOOL, "scope": table.TEXT, "include_stopped": table.BOOL,
}
LAMBDA_FIELDS: Mapping[str, table.Kind] = {**ITEM_FIELDS, "tls_secret": table.TEXT}
PEM_FIELDS = ("ca_cert", "client_cert", "client_key")


@dataclass(frozen=True)
class FleetItem:
    """One endpoint of a fleet: its host and the fields it gives (parsed); the rest is the run's."""

    index: int  # 1-based, as people count items
    host: str
    given: Mapping[str, object]
    where: str = ""  # how messages name it, before its host: "fleet item 3" (the default), "endpoint"

    @property
    def label(self) -> str:
        return _label(self.where or f"fleet item {self.index}", self.host)

    def get(self, field: str, default=None):
        return self.given.get(field, default)


def parse_fleet(document: object, *, fields: Mapping[str, table.Kind] = ITEM_FIELDS,
                home: Path | None = None) -> tuple[FleetItem, ...]:
    """The items of a fleet document; ConfigurationError naming every bad item and field."""
    if not isinstance(document, list) or not document:
        raise ConfigurationError(f"fleet: expected a non-empty JSON list of endpoint objects, got "
                                 f"{'an empty list' if document == [] else table.json_type(document)}")
    problems: list[str] = []
    items = [parse_item(raw, fields=fields, home=home, problems=problems, index=i)
             for i, raw in enumerate(document, 1)]
    if problems:
        raise ConfigurationError("; ".join(problems))
    return tuple(items)


def read_fleet_file(path: str, *, home: Path | None = None) -> tuple[FleetItem, ...]:
    """A fleet file's items; a file that cannot be read or parsed is a ConfigurationError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"read fleet file {path}: {exc.strerror or exc}") from None
    return parse_fleet(_json(text, f"fleet file {path}"), home=home)


def parse_fleet_text(text: str, *, where: str, home: Path | None = None) -> tuple[FleetItem, ...]:
    """Fleet items from JSON text (the Action's input)."""
    return parse_fleet(_json(text, where), home=home)


def _json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{where}: not valid JSON (line {getattr(exc, 'lineno', '?')})") from None


def parse_item(raw: object, *, problems: list[str], fields: Mapping[str, table.Kind] = ITEM_FIELDS,
               home: Path | None = None, index: int = 1, where: str = "", host_required: bool = True) -> FleetItem:
    """One endpoint item, each problem appended as "WHERE (HOST): FIELD: PROBLEM"; where defaults to
    "fleet item INDEX". Without host_required a missing host is the caller's to fill (the Lambda's
    environment)."""
    where = where or f"fleet item {index}"
    host = raw.get("host") if isinstance(raw, dict) else None
    label = _label(where, host if isinstance(host, str) else "")
    if not isinstance(raw, dict):
        problems.append(f"{label}: expected an object, got {table.json_type(raw)}")
        return FleetItem(index, "", {}, where)
    given: dict[str, object] = {}
    for key in sorted(str(k) for k in raw):
        if key not in fields:
            problems.append(f"{label}: {key}: unknown field (known: {', '.join(fields)})")
            continue
        value = raw[key]
        try:
            if value is None or (isinstance(value, str) and not value.strip()):
                raise ValueError("no value (leave the field out to take the run's)")
            given[key] = _expanded(fields[key], fields[key].native(value), home)
        except ValueError as exc:
            problems.append(f"{label}: {key}: {exc}")
    if host_required and "host" not in raw:
        problems.append(f"{label}: host: required")
    both = [key for key in PEM_FIELDS if key in given]
    if both and "cert_path" in given:
        problems.append(f"{label}: cert_path and {', '.join(both)}: give one or the other")
    return FleetItem(index, str(given.get("host", "")), given, where)


def _label(where: str, host: str) -> str:
    return f"{where} ({one_line(host, 100)})" if host else where


def _expanded(kind: table.Kind, value, home: Path | None):
    if isinstance(kind, table.PathKind) and home is not None and isinstance(value, str) and (
            value == "~" or value.startswith("~/")):
        return str(home / value[2:]) if value != "~" else str(home)
    return value


@dataclass(frozen=True)
class RunTLS:
    """The run's own TLS for its endpoints (the command line's flags, the Action's inputs)."""

    verify: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    cert_dir: str | None = None


def endpoint_configs(items: tuple[FleetItem, ...], hosts: tuple[str, ...], tls: RunTLS, *, timeout: float,
                     pem_file: Callable[[FleetItem, str, str], str] | None = None) -> tuple[EndpointConfig, ...]:
    """The run's endpoints: each host given alone (the run's TLS on each), then each fleet item.

    pem_file(item, field, content) writes PEM content given in place of a path (the Action) and
    returns the file's path; without it such content is taken for a path."""
    configs = [EndpointConfig(_daemon(host, tls, timeout)) for host in hosts]
    problems: list[str] = []
    for item in items:
        try:
            configs.append(_item_config(item, tls, timeout, pem_file))
        except ConfigurationError as exc:
            problems.append(f"{item.label}: {exc}")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return tuple(configs)


def _item_config(item: FleetItem, run: RunTLS, timeout: float, pem_file) -> EndpointConfig:
    files = {}
    for field in PEM_FIELDS:
        value = item.get(field)
        if isinstance(value, str) and "-----BEGIN" in value and pem_file is not None:
            value = pem_file(item, field, value)
        files[field] = value
    if "cert_path" in item.given:  # its own folder: the run's files do not mix in
        tls = RunTLS(item.get("tls_verify", run.verify), cert_dir=item.get("cert_path"))
    else:
        tls = RunTLS(item.get("tls_verify", run.verify or bool(files["ca_cert"])),
                     files["ca_cert"] or run.ca, files["client_cert"] or run.cert, files["client_key"] or run.key,
                     run.cert_dir)
    return EndpointConfig(_daemon(item.host, tls, timeout), name=item.get("name", ""), names=item.get("names"),
                          label_enable=item.get("label_enable"), scope=item.get("scope"),
                          scope_given="scope" in item.given, include_stopped=item.get("include_stopped"))


def _daemon(host: str, tls: RunTLS, timeout: float):
    return daemon_settings(host, tls_verify=tls.verify, ca=tls.ca, cert=tls.cert, key=tls.key,
                           cert_dir=Path(tls.cert_dir) if tls.cert_dir else None, timeout=timeout)


def fleet_name(path: str | None, hosts: tuple[str, ...]) -> str:
    """A fleet file's name (its stem), else the hosts given; "" for a fleet of one (its endpoint)."""
    if path:
        return Path(path).stem
    return ",".join(hosts) if len(hosts) > 1 else ""


def config_fields(endpoints: tuple[EndpointConfig, ...], items: tuple[FleetItem, ...]) -> dict:
    """ScanConfig's daemon for a single host given alone (a fleet of one, as every entry point
    builds it), else its endpoints."""
    if len(endpoints) == 1 and not items:
        return {"daemon": endpoints[0].daemon, "endpoints": ()}
    return {"daemon": None, "endpoints": endpoints}
