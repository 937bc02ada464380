"""The GitHub Action's entry: inputs from the composite step, one scan, the result where a run shows it.

    1. mask every secret input line (and each credential inside docker-config) before anything else
    2. write the PEM and config contents into a private temporary folder (0700, files 0600)
    3. a ScanConfig through handler.compose, one scan
    4. outputs to $GITHUB_OUTPUT, the markdown report to $GITHUB_STEP_SUMMARY, the JSON report
       under $RUNNER_TEMP, one annotation per stale (warning) and errored (error) container
    5. SNS delivery when asked for; the secret folder is removed whatever happened

A composite action does not set INPUT_* by itself: action.yml maps each input to
``INPUT_<NAME>`` (upper case, ``-`` as ``_``) in the step's ``env:``. Exit codes as the
CLI: 0 done, 1 fail-on-stale / fail-on-error, 2 configuration, 3 could not scan.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import importlib.util
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

from engine.errors import ConfigurationError, DaemonError, SpyglassError, scrub
from engine.report import ERROR, STALE, Report, render_json, render_markdown, render_text, short_digest
from engine.text import markdown
from handler import logs
from handler.compose import ScanConfig, daemon_settings, run_scan

EXIT_OK, EXIT_FOUND, EXIT_CONFIG, EXIT_UNREACHABLE = 0, 1, 2, 3
FAILURE_LIMIT = 1000  # characters of the "could not scan" message in the step summary

# Every input action.yml declares, with the default it declares (tests hold the two together).
INPUT_DEFAULTS: dict[str, str] = {
    "host": "", "tls-ca": "", "tls-cert": "", "tls-key": "", "registry-ca": "",
    "insecure-registries": "", "docker-config": "", "names": "", "label-enable": "false", "scope": "",
    "timeout": "120", "fail-on-stale": "false", "fail-on-error": "false", "sns-topic-arn": "", "notify": "always",
}
INPUTS = tuple(INPUT_DEFAULTS)
SECRET_INPUTS = ("tls-ca", "tls-cert", "tls-key", "docker-config")
OUTPUTS = ("status", "stale-count", "error-count", "fresh-count", "report-path", "stale")

SUMMARY_LIMIT = 1024 * 1024  # the runner refuses a step summary above 1 MiB
_CONFIG_SECRET_KEYS = frozenset({"auth", "password", "identitytoken", "registrytoken"})
_PEM_ARMOR = re.compile(r"^-----(BEGIN|END) [A-Z0-9 ]+-----$")
_PLAIN_OUTPUT = re.compile(r"^[A-Za-z0-9._-]*$")

log = logging.getLogger("spyglass")

Scan = Callable[..., Report]


def env_name(name: str) -> str:
    """The variable action.yml sets for an input: INPUT_TLS_KEY for tls-key."""
    return "INPUT_" + name.upper().replace("-", "_")


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Each input as the runner passed it, the declared default when blank."""
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
        found += _config_secrets(value) if name == "docker-config" else _pem_lines(value)
    return list(dict.fromkeys(found))


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

    def describe(self, message: str) -> str:
        """A message with our private paths replaced by the inputs they hold."""
        for path, input_name in self.names.items():
            message = message.replace(path, f"(input {input_name})")
        return message

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# -- inputs -> ScanConfig -------------------------------------------------------------------

def scan_config(inputs: Mapping[str, str], files: SecretFiles, *, env: Mapping[str, str],
                home: Path) -> ScanConfig:
    pem = {name: files.write(name, f"{name}.pem", inputs[name]) if inputs[name] else None
           for name in ("tls-ca", "tls-cert", "tls-key")}
    timeout = _positive_float("timeout", inputs["timeout"])
    settings = daemon_settings(env, home, host=inputs["host"] or None,
                               tls_verify=True if pem["tls-ca"] else None, ca=pem["tls-ca"],
                               cert=pem["tls-cert"], key=pem["tls-key"], timeout=min(30.0, timeout))
    registry_ca = _registry_ca(inputs["registry-ca"], files)
    return ScanConfig(daemon=settings, names=tuple(_words(inputs["names"])),
                      label_enable=_bool("label-enable", inputs["label-enable"]), scope=inputs["scope"] or None,
                      registry_ca=registry_ca, registry_ca_validate=registry_ca is not None,
                      insecure_registries=tuple(_words(inputs["insecure-registries"])),
                      docker_config=_docker_config(inputs["docker-config"], files), timeout=timeout)


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
        raise ConfigurationError("input docker-config: expected the contents of a docker config.json "
                                 "(a JSON object)") from None
    return files.write("docker-config", "config.json", value)


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", text) if word]


def _bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ConfigurationError(f"input {name}: expected true or false, got {text!r}")
    return lowered == "true"


def _positive_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"input {name}: not a number: {text!r}") from None
    if not value > 0:
        raise ConfigurationError(f"input {name}: must be more than 0")
    return value


# -- results -----------------------------------------------------------------------------

def output_values(report: Report, report_path: str) -> dict[str, str]:
    summary = report.summary
    stale = [{"name": c.name, "id": c.id, "image": c.image, "reference": c.reference,
              "local_digests": list(c.local_digests), "remote_digest": c.remote_digest}
             for c in report.ordered() if c.status == STALE]
    return {"status": report.status, "stale-count": str(summary["stale"]),
            "error-count": str(summary["errors"]), "fresh-count": str(summary["fresh"]),
            "report-path": report_path, "stale": json.dumps(stale, separators=(",", ":"))}


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


def write_report_file(env: Mapping[str, str], report: Report) -> str:
    descriptor, path = tempfile.mkstemp(prefix="spyglass-report-", suffix=".json", dir=_runner_temp(env))
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(render_json(report) + "\n")
    return path


def annotate(commands: Commands, report: Report) -> None:
    """One warning per stale container, one error per container that could not be checked."""
    for c in report.ordered():
        where = f"{report.endpoint}: container {c.name}"
        if c.status == STALE:
            local = ", ".join(short_digest(d) for d in c.local_digests) or "no digest"
            commands.issue("warning", f"{where} runs {c.image} ({local}); the tag now points to "
                           f"{short_digest(c.remote_digest)}", title=f"Stale container {c.name}")
        elif c.status == ERROR:
            detail = ": ".join(x for x in (c.reason, c.error) if x)
            commands.issue("error", f"{where} ({c.image}) could not be checked: {detail}",
                           title=f"Container not checked {c.name}")


# -- SNS (handler.aws.sns, when this build has it) -------------------------------------------

# The Lambda's policies always and stale; its `change` compares with state kept in DynamoDB,
# which the Action does not keep (handler/aws/notify.py defines all three).
NOTIFY_POLICIES = ("always", "stale")


def load_sns_publisher() -> tuple[Callable | None, str]:
    """handler.aws.sns.publish_report when this build has it (and boto3), else None and why not."""
    try:
        module = importlib.import_module("handler.aws.sns")
    except ImportError as exc:
        return None, f"{exc.name or 'handler.aws.sns'} is not installed"
    publish = getattr(module, "publish_report", None)
    if not callable(publish):
        return None, "handler.aws.sns has no publish_report"
    if importlib.util.find_spec("boto3") is None:  # aws.sns imports it only when publishing
        return None, "boto3 is not installed"
    return publish, ""


def _notify_policy(text: str) -> str:
    policy = text.lower()
    if policy == "change":
        raise ConfigurationError("input notify: change needs the state the Lambda keeps in DynamoDB; "
                                 "the Action keeps none (use always or stale)")
    if policy not in NOTIFY_POLICIES:
        raise ConfigurationError(f"input notify: expected one of {', '.join(NOTIFY_POLICIES)}, got {text!r}")
    return policy


def deliver(commands: Commands, report: Report, topic_arn: str, policy: str, load_publisher, stdout) -> int:
    """Publish per the notify policy; a failed delivery is an error line and exit 2 or 3, never silent."""
    if not topic_arn:
        return EXIT_OK
    if policy == "stale" and report.status == "ok":
        stdout.write("SNS: nothing stale or errored, nothing published (notify: stale)\n")
        return EXIT_OK
    publish, why_not = load_publisher()
    if publish is None:
        commands.issue("warning", f"sns-topic-arn is set, but SNS delivery is not available in this build "
                       f"({why_not}); the report was not published", title="spyglass")
        return EXIT_OK
    try:
        delivery = publish(report, topic_arn=topic_arn)
    except ConfigurationError as exc:
        commands.issue("error", f"SNS delivery: configuration error: {exc}", title="spyglass")
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - DeliveryError, or botocore's own tree: reported and failed
        detail = str(exc) if isinstance(exc, SpyglassError) else type(exc).__name__
        commands.issue("error", f"SNS delivery to {topic_arn} failed: {scrub(detail)}", title="spyglass")
        return EXIT_UNREACHABLE
    stdout.write(f"SNS: report published to {topic_arn} (message {getattr(delivery, 'message_id', '?')})\n")
    return EXIT_OK


# -- the run -----------------------------------------------------------------------------

def main(env: Mapping[str, str] | None = None, *, stdout=None, stderr=None, home: Path | None = None,
         scan: Scan = run_scan, load_publisher=load_sns_publisher) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    inputs = read_inputs(env)
    commands = Commands(stdout)
    for value in mask_values(inputs):
        commands.mask(value)
    logs.configure("debug" if env.get("RUNNER_DEBUG") == "1" else "warning", stream=stderr)
    files = SecretFiles(_runner_temp(env))
    log.debug("secret inputs go to %s", files.folder)
    try:
        return _run(inputs, files, commands, env=env, stdout=stdout, home=home or Path.home(), scan=scan,
                    load_publisher=load_publisher)
    except ConfigurationError as exc:
        return _fail(commands, env, stdout, EXIT_CONFIG, f"configuration error: {files.describe(str(exc))}")
    except DaemonError as exc:
        return _fail(commands, env, stdout, EXIT_UNREACHABLE, f"cannot scan: {files.describe(str(exc))}")
    except SpyglassError as exc:
        return _fail(commands, env, stdout, EXIT_UNREACHABLE, files.describe(str(exc)))
    finally:
        files.remove()


def _run(inputs, files: SecretFiles, commands: Commands, *, env, stdout, home: Path, scan: Scan,
         load_publisher) -> int:
    config = scan_config(inputs, files, env=env, home=home)
    fail_on = {"stale": _bool("fail-on-stale", inputs["fail-on-stale"]),
               "errors": _bool("fail-on-error", inputs["fail-on-error"])}
    policy = _notify_policy(inputs["notify"])
    report = scan(config, env=env, home=home)
    report_path = write_report_file(env, report)
    write_outputs(env.get("GITHUB_OUTPUT"), output_values(report, report_path))
    write_summary(env, render_markdown(report), stdout)
    with commands.verbatim("spyglass report") as write:
        write(render_text(report))
    annotate(commands, report)
    delivered = deliver(commands, report, inputs["sns-topic-arn"], policy, load_publisher, stdout)
    return _verdict(commands, report, fail_on) or delivered


def _verdict(commands: Commands, report: Report, fail_on: Mapping[str, bool]) -> int:
    summary = report.summary
    if fail_on["stale"] and summary["stale"]:
        commands.issue("error", f"{_count(summary['stale'])} stale and fail-on-stale is true", title="spyglass")
        return EXIT_FOUND
    if fail_on["errors"] and summary["errors"]:
        commands.issue("error", f"{_count(summary['errors'])} could not be checked and fail-on-error is true",
                       title="spyglass")
        return EXIT_FOUND
    return EXIT_OK


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
