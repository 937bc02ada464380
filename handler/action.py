"""The GitHub Action's entry: inputs from the composite step, one scan, the result where a run shows it.

    1. mask every secret input line (and each credential inside docker-config) before anything else
    2. write the PEM and config contents into a private temporary folder (0700, files 0600), the
       PEM content of fleet items too (the fleet input: a JSON list of endpoints, or a file)
    3. the inputs through the settings table (handler.settings: input > default, the docker
       CLI's own variables on the runner between), a ScanConfig through handler.compose, one scan
    4. outputs to $GITHUB_OUTPUT, the markdown report to $GITHUB_STEP_SUMMARY, the JSON report
       and the HTML page under $RUNNER_TEMP (or report-file, report-html), one annotation per
       stale (warning) and errored (error) container
    5. SNS delivery and the notify URLs when asked for, under the notify policy the CLI follows too
       (handler.delivery; with change, the state-file input a workflow carries with actions/cache);
       the secret folder is removed whatever happened

A composite action does not set INPUT_* by itself: action.yml (written from the table by
scripts/settings_docs.py) maps each input to ``INPUT_<NAME>`` (upper case, ``-`` as ``_``) in the
step's ``env:``. With the apply input the scan is followed by the update (`spyglass update
--yes`, docs/update.md), and updated-count / rolled-back-count say what it did. Exit codes as the
CLI (handler.outcome): 0 done, 1 fail-on-stale / fail-on-error / a container rolled back or
failed, 2 configuration, 3 could not scan, 4 a notify URL failed and fail-on-notify-error.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping

from engine.errors import ConfigurationError, DaemonError, SpyglassError
from engine.report import ERROR, STALE, Report, render_json, render_markdown, render_text, newer_text, short_digest
from engine.text import markdown
from handler import logs
from handler import settings as table
from handler.compose import (ScanConfig, render_page, run_scan, run_update, scan_config, update_options,
                             write_report)
from handler.fleet import PEM_FIELDS, RunTLS, config_fields, endpoint_configs, parse_fleet_text, read_fleet_file
from handler.notify.redact import secrets_of
from handler.delivery import Delivery, Targets, load_sns_publisher
from handler.delivery import deliver as send_report
from handler.outcome import (EXIT_CONFIG, EXIT_FOUND, EXIT_NOTIFY, EXIT_OK, EXIT_UNREACHABLE, action_counts,
                             ensure_listed, found, update_found)

FAILURE_LIMIT = 1000  # characters of the "could not scan" message in the step summary

# Every input action.yml declares, with the default it declares: both come from the settings table.
INPUT_DEFAULTS: dict[str, str] = {row.action_input: row.input_default()
                                  for row in table.rows(table.ACTION) if row.action_input}
INPUTS = tuple(INPUT_DEFAULTS)
SECRET_INPUTS = tuple(row.action_input for row in table.rows(table.ACTION) if row.action_input and row.secret)
OUTPUTS = ("status", "stale-count", "error-count", "fresh-count", "outdated-count", "endpoint-count",
           "unreachable-count", "report-path", "report-html-path", "stale", "updated-count", "rolled-back-count")

SUMMARY_LIMIT = 1024 * 1024  # the runner refuses a step summary above 1 MiB
_CONFIG_SECRET_KEYS = frozenset({"auth", "password", "identitytoken", "registrytoken"})
_PEM_ARMOR = re.compile(r"^-----(BEGIN|END) [A-Z0-9 ]+-----$")
_PLAIN_OUTPUT = re.compile(r"^[A-Za-z0-9._-]*$")

log = logging.getLogger("spyglass")

Scan = Callable[..., Report]


env_name = table.input_env_name


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Each input's text as the runner passed it, the declared default when blank (what masks look at)."""
    return {name: env.get(env_name(name), "").strip() or default for name, default in INPUT_DEFAULTS.items()}


# -- workflow commands --------------------------------------------------------------

def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class Commands:
    """Workflow commands on stdout, escaped so that no outside text can open a command of its own."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def issue(self, command: str, message: str = "", **properties: str) -> None:
        props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
        self._stream.write(f"::{command}{' ' + props if props else ''}::{escape_data(message)}\n")
        self._stream.flush()

    def mask(self, value: str) -> None:
        self.issue("add-mask", value)

    @contextlib.contextmanager
    def verbatim(self, title: str) -> Iterator[Callable[[str], None]]:
        """A folded log group whose text is printed with workflow commands switched off."""
        token = secrets.token_hex(16)
        self.issue("group", title)
        self.issue("stop-commands", token)
        try:
            yield lambda text: self._stream.write(text if text.endswith("\n") else text + "\n")
        finally:
            self._stream.write(f"::{token}::\n")
            self.issue("endgroup")


# -- secrets: masks first, then private files ---------------------------------------------

def mask_values(inputs: Mapping[str, str]) -> list[str]:
    """What to mask: each line of a secret PEM, each credential inside the docker config."""
    found: list[str] = []
    for name in SECRET_INPUTS:
        value = inputs[name]
        if not value:
            continue
        if name == "docker-config":
            found += _config_secrets(value)
        elif name == NOTIFY_URLS_INPUT:
            found += _url_secrets(value)
        else:
            found += _pem_lines(value)
    found += _fleet_secrets(inputs.get(FLEET_INPUT_NAME, ""))
    return list(dict.fromkeys(found))


FLEET_INPUT_NAME = table.BY_NAME["fleet"].action_input


def _fleet_secrets(text: str) -> list[str]:
    """The lines of PEM content inside the fleet input (hosts and names stay readable)."""
    if "-----BEGIN" not in text:
        return []
    try:
        document = json.loads(text)
    except ValueError:  # it will be refused; hide every PEM-looking line meanwhile
        return _pem_lines(text)
    items = document if isinstance(document, list) else []
    return [line for item in items if isinstance(item, dict) for field in PEM_FIELDS
            if isinstance(item.get(field), str) for line in _pem_lines(item[field])]


NOTIFY_URLS_INPUT = table.BY_NAME["notify_urls"].action_input


def _url_secrets(text: str) -> list[str]:
    """Each notify URL, and every piece of it that could be a token or a password, longest first."""
    pieces = {piece for url in table.NOTIFY_URLS.parse(text) for piece in secrets_of(url)}
    return sorted((piece for piece in pieces if "\n" not in piece), key=len, reverse=True)


def _pem_lines(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not _PEM_ARMOR.match(line)]


def _config_secrets(text: str) -> list[str]:
    try:
        document = json.loads(text)
    except ValueError:  # it will be refused; hide all of it meanwhile
        return [line.strip() for line in text.splitlines() if line.strip()]
    found: list[str] = []
    _walk_config(document, found, in_headers=False)
    return found


def _walk_config(node, found: list[str], *, in_headers: bool) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_config(item, found, in_headers=in_headers)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, str) and value and (in_headers or key.lower() in _CONFIG_SECRET_KEYS):
            found += [line for line in value.splitlines() if line]
            if key.lower() == "auth":
                found += _decoded_auth(value)
        else:
            _walk_config(value, found, in_headers=in_headers or key.lower() == "httpheaders")


def _decoded_auth(value: str) -> list[str]:
    """An ``auth`` field is base64 of user:password; the decoded pair and the password are secrets too."""
    try:
        decoded = base64.b64decode(value, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    _, sep, password = decoded.partition(":")
    return [decoded] + ([password] if sep and password else [])


class SecretFiles:
    """The secret inputs as files in a folder only this user can enter; `remove()` takes it all away."""

    def __init__(self, parent: str | None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="spyglass-", dir=parent))  # mode 0700
        self.names: dict[str, str] = {}  # file path -> the input it came from, for messages

    def write(self, input_name: str, filename: str, content: str) -> str:
        path = self.folder / filename
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(content if content.endswith("\n") else content + "\n")
        self.names[str(path)] = input_name
        return str(path)

    def pem_for_item(self, item, field: str, content: str) -> str:
        """PEM content a fleet item gives in place of a path, as a private file."""
        return self.write(f"{FLEET_INPUT} item {item.index} {field}", f"fleet-{item.index}-{field}.pem", content)

    def describe(self, message: str) -> str:
        """A message with our private paths replaced by the inputs they hold."""
        for path, input_name in self.names.items():
            message = message.replace(path, f"(input {input_name})")
        return message

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# -- inputs -> ScanConfig -------------------------------------------------------------------

def read_settings(env: Mapping[str, str], home: Path) -> dict[str, object]:
    """The Action's values: input > the runner's docker variables > default; exit 2 naming each bad input."""
    return table.resolve(table.ACTION, [table.action_inputs(env), table.environment(env, table.ACTION)], home=home)


def build_scan_config(values: Mapping[str, object], files: SecretFiles, home: Path | None = None) -> ScanConfig:
    """The host input alone, or the fleet input's endpoints (the TLS inputs apply to each where an
    item leaves its own out)."""
    pem = {}
    for name in ("tls_ca_pem", "tls_cert_pem", "tls_key_pem"):
        input_name = table.BY_NAME[name].action_input
        pem[name] = files.write(input_name, f"{input_name}.pem", values[name]) if values[name] else None
    tls = RunTLS(bool(pem["tls_ca_pem"]) or values["tls_verify"], pem["tls_ca_pem"], pem["tls_cert_pem"],
                 pem["tls_key_pem"], values["cert_path"])
    items, name = _fleet(values["fleet"], home) if values["fleet"] else ((), "")
    endpoints = endpoint_configs(items, () if items else (values["host"],), tls,
                                 timeout=min(30.0, values["timeout"]), pem_file=files.pem_for_item)
    docker_config = _docker_config(values["docker_config_json"], files) or values["docker_config"]
    fields = config_fields(endpoints, items)
    return scan_config(values, fields.pop("daemon"), **fields, fleet_name=name,
                       registry_ca=_registry_ca(values["registry_ca"], files), docker_config=docker_config)


FLEET_INPUT = table.BY_NAME["fleet"].action_input


def _fleet(value: str, home: Path | None) -> tuple[tuple, str]:
    """The fleet input's items and the run's name: JSON text ("fleet"), or a file (its stem)."""
    if value.lstrip().startswith("["):
        return parse_fleet_text(value, where=f"{FLEET_INPUT} (Action input)", home=home), "fleet"
    return read_fleet_file(value, home=home), Path(value).stem


def _registry_ca(value: str, files: SecretFiles) -> str | None:
    if not value:
        return None
    if "-----BEGIN" in value:
        return files.write("registry-ca", "registry-ca.pem", value)
    return value  # a path, relative to the workspace


def _docker_config(value: str, files: SecretFiles) -> str | None:
    """The contents of a config.json; without it, $DOCKER_CONFIG or ~/.docker as the docker CLI finds it."""
    if not value:
        return None
    try:
        if not isinstance(json.loads(value), dict):
            raise ValueError
    except ValueError:
        raise ConfigurationError("docker-config (Action input): expected the contents of a docker config.json "
                                 "(a JSON object)") from None
    return files.write("docker-config", "config.json", value)


# -- results -----------------------------------------------------------------------------

def output_values(report: Report, report_path: str, page_path: str = "") -> dict[str, str]:
    summary = report.summary
    stale = [{"endpoint": e.display_name, "name": c.name, "id": c.id, "image": c.image, "reference": c.reference,
              "local_digests": list(c.local_digests), "remote_digest": c.remote_digest}
             for e, c in report.placed() if c.status == STALE]
    actions = action_counts(report)
    return {"status": report.status, "stale-count": str(summary["stale"]),
            "error-count": str(summary["errors"]), "fresh-count": str(summary["fresh"]),
            "outdated-count": str(summary["outdated"]), "endpoint-count": str(summary["endpoints"]),
            "unreachable-count": str(summary["unreachable"]),
            "report-path": report_path, "report-html-path": page_path,
            "stale": json.dumps(stale, separators=(",", ":")),
            "updated-count": str(actions.get("updated", 0)), "rolled-back-count": str(actions.get("rolled-back", 0))}


def write_outputs(path: str | None, values: Mapping[str, str]) -> None:
    """name=value for plain words; the delimiter form for anything else, so no value can add a line."""
    if not path:
        log.info("GITHUB_OUTPUT is not set: outputs not written")
        return
    with open(path, "a", encoding="utf-8") as file:
        for name, value in values.items():
            if _PLAIN_OUTPUT.match(value):
                file.write(f"{name}={value}\n")
                continue
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            file.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def write_summary(env: Mapping[str, str], markdown: str, stdout) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        stdout.write(markdown)
        return
    if len(markdown.encode("utf-8")) > SUMMARY_LIMIT:
        markdown = markdown.splitlines()[0] + "\n\nThe full table is too large for a step summary: see the " \
                                              "JSON report (`report-path` output).\n"
    with open(path, "a", encoding="utf-8") as file:
        file.write(markdown + "\n")


def write_report_file(env: Mapping[str, str], report: Report, path: str | None = None) -> str:
    """The JSON report at path (the report-file input), else in a new file under $RUNNER_TEMP."""
    return _write_file(env, render_json(report) + "\n", path, ".json")


def write_page_file(env: Mapping[str, str], report: Report, path: str | None = None) -> str:
    """The report as one HTML page at path (the report-html input), else in a new file under $RUNNER_TEMP."""
    return _write_file(env, render_page(report), path, ".html")


def _write_file(env: Mapping[str, str], text: str, path: str | None, suffix: str) -> str:
    if path:
        write_report(Path(path), text)
        return path
    descriptor, path = tempfile.mkstemp(prefix="spyglass-report-", suffix=suffix, dir=_runner_temp(env))
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def annotate(commands: Commands, report: Report) -> None:
    """One warning per stale container, one error per container that could not be checked, one
    notice per container behind a newer version, one error per endpoint that could not be listed."""
    for e in report.unlisted:
        commands.issue("error", f"{e.display_name} ({e.endpoint}) could not be listed: {e.reason}: {e.error}",
                       title=f"Endpoint not listed {e.display_name}")
    for e, c in report.placed():
        where = f"{e.display_name}: container {c.name}"
        if c.status == STALE:
            local = ", ".join(short_digest(d) for d in c.local_digests) or "no digest"
            commands.issue("warning", f"{where} runs {c.image} ({local}); the tag now points to "
                           f"{short_digest(c.remote_digest)}", title=f"Stale container {c.name}")
        elif c.status == ERROR:
            detail = ": ".join(x for x in (c.reason, c.error) if x)
            commands.issue("error", f"{where} ({c.image}) could not be checked: {detail}",
                           title=f"Container not checked {c.name}")
        if c.outdated:
            commands.issue("notice", f"{where} runs {c.image}; {newer_text(c)}", title=f"Newer version for {c.name}")


# -- SNS and the notify URLs (handler.delivery: the policy the CLI follows too) ------------------

def deliver(commands: Commands, report: Report, values: Mapping[str, object], env: Mapping[str, str], stdout,
            load_publisher=load_sns_publisher) -> int:
    """SNS and the notify URLs per the notify policy, said in the log and as annotations.

    A missing publisher is a warning; a failed SNS delivery an error and exit 2 or 3; a notify URL
    that failed a warning (an error and exit 4 with fail-on-notify-error), named without its secrets;
    a state file that cannot be written an error and exit 2.
    """
    targets = Targets.of(values)
    warn = functools.partial(commands.issue, "warning", title="spyglass")
    delivery = send_report(report, targets, where=_run_url(env), load_publisher=load_publisher, warn=warn)
    if delivery.decision is not None and not delivery.decision.notify:
        stdout.write(f"{_nothing_sent(targets)}: {delivery.decision.reason} (notify: {targets.policy})\n")
        return EXIT_OK
    sns, urls = _said_sns(commands, delivery, targets, stdout), _said_urls(commands, delivery, values, stdout)
    if delivery.record_problem:
        commands.issue("error", f"notify: configuration error: {delivery.record_problem}", title="spyglass")
        return EXIT_CONFIG
    return sns or urls


def _nothing_sent(targets: Targets) -> str:
    return " and ".join(what for what, given in (("SNS: nothing published", targets.topic_arn),
                                                  ("notify URLs: nothing sent", targets.urls)) if given)


def _said_sns(commands: Commands, delivery: Delivery, targets: Targets, stdout) -> int:
    if delivery.published:
        stdout.write(f"SNS: report published to {targets.topic_arn} (message {delivery.message_id})\n")
    elif delivery.sns_problem:  # not available in this build: a warning; failed: an error
        commands.issue("error" if delivery.sns_code else "warning", delivery.sns_problem, title="spyglass")
    return delivery.sns_code


def _said_urls(commands: Commands, delivery: Delivery, values: Mapping[str, object], stdout) -> int:
    for target in delivery.sent:
        stdout.write(f"{target}: notified\n")
    level = "error" if values["fail_on_notify_error"] else "warning"
    for failure in delivery.failed:
        commands.issue(level, f"{failure.target}: not notified: {failure.reason}", title="spyglass")
    if delivery.recorded:
        stdout.write(f"notify: change recorded in {values['state_file']}\n")
    return EXIT_NOTIFY if delivery.failed and values["fail_on_notify_error"] else EXIT_OK


# -- the run -----------------------------------------------------------------------------

def main(env: Mapping[str, str] | None = None, *, stdout=None, stderr=None, home: Path | None = None,
         scan: Scan = run_scan, load_publisher=load_sns_publisher, update=run_update) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    commands = Commands(stdout)
    for value in mask_values(read_inputs(env)):
        commands.mask(value)
    debug = env.get("RUNNER_DEBUG") == "1"
    logs.configure("debug" if debug else "warning", stream=stderr)
    files = SecretFiles(_runner_temp(env))
    try:
        values = read_settings(env, home or Path.home())
        logs.configure("debug" if debug else values["log_level"], values["log_format"], stream=stderr,
                       secret_urls=values["notify_urls"])
        log.debug("secret inputs go to %s", files.folder)
        if values["apply"]:  # the update scans first, as `spyglass update --yes`
            scan = _applying(values, update)
        return _run(values, files, commands, env=env, stdout=stdout, scan=scan, load_publisher=load_publisher,
                    home=home or Path.home())
    except ConfigurationError as exc:
        return _fail(commands, env, stdout, EXIT_CONFIG, f"configuration error: {files.describe(str(exc))}")
    except DaemonError as exc:
        return _fail(commands, env, stdout, EXIT_UNREACHABLE, f"cannot scan: {files.describe(str(exc))}")
    except SpyglassError as exc:
        return _fail(commands, env, stdout, EXIT_UNREACHABLE, files.describe(str(exc)))
    finally:
        files.remove()


def _applying(values: Mapping[str, object], update) -> Scan:
    """A scan function that also applies what it found (the apply input)."""
    def scan_and_update(config: ScanConfig, **collaborators) -> Report:
        return update(config, update_options(values), **collaborators).report
    return scan_and_update


def _run(values: Mapping[str, object], files: SecretFiles, commands: Commands, *, env, stdout, scan: Scan,
         load_publisher, home: Path | None = None) -> int:
    config = build_scan_config(values, files, home)
    if values["notify_urls"]:
        from handler.notify import load_apprise
        load_apprise()  # not installed: exit 2 before the scan, not after it
    token_store = None
    if values["token_cache"]:
        from handler.aws.dynamodb import token_store_for_table  # boto3 only when asked for
        token_store = token_store_for_table(values["token_cache"])
    report = ensure_listed(scan(config, token_store=token_store))
    report_path = write_report_file(env, report, values["report_file"])
    page_path = write_page_file(env, report, values["report_html"])
    write_outputs(env.get("GITHUB_OUTPUT"), output_values(report, report_path, page_path))
    write_summary(env, render_markdown(report), stdout)
    render = {"json": render_json, "text": render_text, "markdown": render_markdown}[values["output"]]
    with commands.verbatim("spyglass report") as write:
        write(render(report))
    annotate(commands, report)
    delivered = deliver(commands, report, values, env, stdout, load_publisher)
    return _verdict(commands, report, values) or delivered


def _run_url(env: Mapping[str, str]) -> str:
    """This workflow run's page (its summary holds the full report), or a plain pointer outside a runner."""
    server, repository, run_id = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run_id:
        return f"{server}/{repository}/actions/runs/{run_id}"
    return "the workflow run's summary"


def _verdict(commands: Commands, report: Report, values: Mapping[str, object]) -> int:
    if update_found(report):
        counts = action_counts(report)
        commands.issue("error", f"update: {counts.get('rolled-back', 0)} rolled back, {counts.get('failed', 0)} "
                       "failed (see the report)", title="spyglass")
        return EXIT_FOUND
    summary = report.summary
    reason = found(summary, fail_on_stale=values["fail_on_stale"], fail_on_error=values["fail_on_error"],
                   fail_on_outdated=values["fail_on_outdated"])
    if reason == "stale":
        commands.issue("error", f"{_count(summary['stale'])} stale and fail-on-stale is true", title="spyglass")
    elif reason == "errors":
        commands.issue("error", f"{_count(summary['errors'])} could not be checked and fail-on-error is true",
                       title="spyglass")
    elif reason == "outdated":
        commands.issue("error", f"{_count(summary['outdated'])} behind a newer version and fail-on-outdated is true",
                       title="spyglass")
    return EXIT_FOUND if reason else EXIT_OK


def _count(n: int) -> str:
    return f"{n} container is" if n == 1 else f"{n} containers are"


def _fail(commands: Commands, env: Mapping[str, str], stdout, code: int, message: str) -> int:
    commands.issue("error", f"spyglass: {message} (exit {code})", title="spyglass")
    write_summary(env, f"### 🔴 spyglass could not scan\n\n{markdown(message, FAILURE_LIMIT)}\n", stdout)
    return code


def _runner_temp(env: Mapping[str, str]) -> str | None:
    folder = env.get("RUNNER_TEMP", "")
    return folder if folder and os.path.isdir(folder) else None


if __name__ == "__main__":
    sys.exit(main())
