"""Every setting spyglass reads, as one table, and one parser per type.

    SETTINGS  one row per setting: name, kind, default, where it applies (cli, action,
              lambda), CLI flags, environment variable, Action input, Lambda event field, help
    kinds     BOOL, Whole, Number, Choice, LIST, PATH, TEXT and a few patterned texts: each turns
              the text a person typed into a value, or says in a phrase why it cannot
    sources   where values come from: flags, the environment, Action inputs (an endpoint object
              of a Lambda event or a fleet list is an item of handler.fleet, by the same kinds)
    resolve   one place's values: its sources in precedence order, then the row's default;
              every problem is collected and reported in one ConfigurationError (exit 2)
    needs     a value a place refuses unless another setting there is given (the Action's
              notify: change without the state-file input), said with what to do

Precedence: CLI flag > environment > default; Action input > default (the docker CLI's own
variables DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and DOCKER_CONFIG on the runner
between the two, as the docker CLI there would read them); Lambda event field > environment >
default.

The same rules everywhere:
    blank       an empty or all-space value is no value: the next source or the default applies
                (in a Lambda event a field that is present must carry a value)
    booleans    true/false, 1/0, yes/no, on/off, in any case; anything else is refused
    lists       split on commas and newlines, each item trimmed, empty items dropped; a repeated
                flag adds to the list; in a Lambda event a JSON array of strings works too
    numbers     decimal text; bounds are part of the kind; inf and nan are refused
    choices     one of a fixed set, in any case

A problem reads ``WHERE (SOURCE): PROBLEM``, e.g. ``SPYGLASS_LABEL_ENABLE (environment
variable): 'ture' is not a boolean (use true/false, 1/0, yes/no)``. Secret values are never
quoted. scripts/settings_docs.py writes the README option table, action.yml's inputs and
docs/lambda.md's variable table from this table; a test checks that they agree.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from engine.errors import ConfigurationError
from engine.versions import LEVELS as VERSION_LEVELS
from handler.outcome import NOTIFY_POLICIES

CLI, ACTION, LAMBDA = "cli", "action", "lambda"
PLACES = (CLI, ACTION, LAMBDA)
LOG_LEVELS = ("debug", "info", "warning", "error")
OUTPUTS = ("json", "text", "markdown", "html")


# -- kinds: text in, value out, or ValueError with the reason -----------------------------

class Kind:
    """A type of setting. ``parse`` takes text; ``native`` takes a JSON value (a Lambda event's)."""

    metavar = "TEXT"
    empty: object = None  # the value of a setting without any value

    def parse(self, text: str):
        raise NotImplementedError

    def native(self, value: object):
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError(f"expected a string, got {json_type(value)}")


class Text(Kind):
    """Any text, trimmed; with a pattern, text that matches it in full."""

    def __init__(self, metavar: str = "TEXT", pattern: str | None = None, expect: str = "") -> None:
        self.metavar, self._pattern, self._expect = metavar, re.compile(pattern) if pattern else None, expect

    def parse(self, text: str) -> str:
        value = text.strip()
        if not self.matches(value):
            raise ValueError(f"{value!r} is not {self._expect}")
        return value

    def matches(self, text: str) -> bool:
        return self._pattern is None or self._pattern.fullmatch(text) is not None


class PathKind(Text):
    """A file or folder; a leading ``~`` is the user's home (expanded when the place is resolved)."""

    def __init__(self, metavar: str = "PATH") -> None:
        super().__init__(metavar)


class Flag(Kind):
    metavar = "true|false"
    TRUE, FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in self.TRUE or word in self.FALSE:
            return word in self.TRUE
        raise ValueError(f"{text.strip()!r} is not a boolean (use true/false, 1/0, yes/no)")

    def native(self, value: object) -> bool:
        return value if isinstance(value, bool) else super().native(value)


def _converted(text: str, convert, noun: str):
    """int or float of the text, or a ValueError that quotes it."""
    try:
        return convert(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not {noun}") from None


class Whole(Kind):
    metavar = "N"

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def parse(self, text: str) -> int:
        value = _converted(text, int, "a whole number")
        if self.low is not None and value < self.low:
            raise ValueError(f"{value} is less than {self.low}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{value} is more than {self.high}")
        return value

    def native(self, value: object) -> int:
        return self.parse(str(value)) if isinstance(value, int) and not isinstance(value, bool) else super().native(value)


class Number(Kind):
    metavar = "SECONDS"

    def __init__(self, *, above: float | None = None, at_least: float | None = None) -> None:
        self.above, self.at_least = above, at_least

    def parse(self, text: str) -> float:
        value = _converted(text, float, "a number")
        if not math.isfinite(value):
            raise ValueError(f"{text.strip()!r} is not a finite number")
        if self.above is not None and not value > self.above:
            raise ValueError(f"{value:g} is not more than {self.above:g}")
        if self.at_least is not None and value < self.at_least:
            raise ValueError(f"{value:g} is less than {self.at_least:g}")
        return value


class Choice(Kind):
    """One of a few words, in any case; ``refused`` says why a word known elsewhere is not one here."""

    def __init__(self, *choices: str, refused: Mapping[str, str] | None = None) -> None:
        self.choices, self.refused = choices, dict(refused or {})
        self.metavar = "|".join(choices)

    def parse(self, text: str) -> str:
        word = text.strip().lower()
        if word not in self.choices:
            why = f" ({word} {self.refused[word]})" if word in self.refused else ""
            raise ValueError(f"{text.strip()!r} is not one of {', '.join(self.choices)}{why}")
        return word


class Items(Kind):
    """A list: commas and newlines separate, items are trimmed, empty items dropped."""

    metavar = "ITEM,..."
    empty = ()

    def parse(self, text: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in re.split(r"[,\n]", text) if item.strip())

    def native(self, value: object) -> tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(item for text in value for item in self.parse(text))
        if isinstance(value, str):
            return self.parse(value)
        what = "an array with something other than strings" if isinstance(value, list) else json_type(value)
        raise ValueError(f"expected a list of strings, got {what}")


class TokenCache(Kind):
    """``memory`` or ``dynamodb:TABLE``; the value is the table ("" for memory)."""

    metavar = "memory|dynamodb:TABLE"

    def parse(self, text: str) -> str:
        spec = text.strip()
        if spec == "memory":
            return ""
        kind, _, table = spec.partition(":")
        if kind != "dynamodb" or not TABLE.matches(table):
            raise ValueError(f"{spec!r} is not 'memory' or 'dynamodb:TABLE'")
        return table


class DaemonAddress(Text):
    """A daemon address as the docker CLI takes it: ``HOST:PORT`` alone means ``tcp://HOST:PORT``."""

    def __init__(self) -> None:
        super().__init__("URL", r"(tcp|unix|npipe|ssh)://\S+", "a daemon address (tcp://HOST:PORT or unix:///path)")

    def parse(self, text: str) -> str:
        value = text.strip()
        if "://" not in value and re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}", value):
            value = "tcp://" + value  # the docker CLI's default scheme
        return super().parse(value)


class DaemonAddresses(Items):
    """Daemon addresses: a repeated flag, or commas between them."""

    metavar = "URL"

    def parse(self, text: str) -> tuple[str, ...]:
        return tuple(HOST.parse(item) for item in super().parse(text))


BOOL = Flag()
LIST = Items()
PATH = PathKind()
TEXT = Text()
# The docker SDK's schemes; the Lambda can reach tcp:// (unix:// is accepted, rarely useful there).
HOST = DaemonAddress()
HOSTS = DaemonAddresses()
TABLE = Text("TABLE", r"[A-Za-z0-9_.-]{3,255}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}",
             "a DynamoDB table name or ARN")


class UrlList(Items):
    """Notification URLs: newlines separate, and a comma only where a new ``scheme://`` (or nothing)
    follows (Apprise URLs carry commas of their own: ``mailto://...?to=a@example.com,b@example.com``)."""

    metavar = "URL"

    def parse(self, text: str) -> tuple[str, ...]:
        items = re.split(r"\n|,(?=\s*(?:[A-Za-z][A-Za-z0-9+.-]*://|,|$))", text)
        return tuple(item.strip() for item in items if item.strip())


NOTIFY_URLS = UrlList()

# -- the table ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One row. ``default`` is text as a person would type it ("" for none), per place if they differ."""

    name: str  # the attribute (ScanConfig's field where there is one)
    kind: Kind
    help: str
    places: tuple[str, ...]
    default: str = ""
    defaults: Mapping[str, str] = field(default_factory=dict)  # place -> default, where it differs
    flags: tuple[str, ...] = ()  # CLI; a name without a dash is a positional argument
    env: str = ""  # read by the CLI and the Lambda
    action_input: str = ""
    event_field: str = ""  # Lambda: endpoint.<field> of the invocation event
    runner_env: bool = False  # the Action reads env too: a docker CLI variable on the runner
    secret: bool = False  # never quoted in a message
    group: str = "scan"
    metavar: str = ""
    shown_default: str = ""  # for the docs, when the default is not a plain value
    notes: Mapping[str, str] = field(default_factory=dict)  # place -> what the help adds there
    kinds: Mapping[str, Kind] = field(default_factory=dict)  # place -> a narrower kind there
    needs: Mapping[str, "Need"] = field(default_factory=dict)  # place -> a value that wants another setting

    def kind_in(self, place: str) -> Kind:
        return self.kinds.get(place, self.kind)

    def help_in(self, place: str) -> str:
        note = self.notes.get(place)
        return f"{self.help}; {note}" if note else self.help

    def default_text(self, place: str) -> str:
        return self.defaults.get(place, self.default)

    def input_default(self) -> str:
        """The default action.yml declares: blank where a docker CLI variable on the runner comes next."""
        return "" if self.runner_env else self.default_text(ACTION)

    def default_value(self, place: str, home: Path | None = None):
        text = self.default_text(place)
        kind = self.kind_in(place)
        return _expand(self, kind.parse(text), home) if text else kind.empty


@dataclass(frozen=True)
class Need:
    """A value of one setting that is refused in a place unless another setting there has a value."""

    value: object
    setting: str  # the row that must be given
    why: str  # what to do, for the message


ENDPOINT, SELECTION, REGISTRIES, OUTPUT, DELIVERY, TIME, NOTIFY, UPDATE = (
    "Docker endpoint (as the docker CLI)", "selection (Watchtower's labels)", "registries", "output",
    "delivery (AWS; pip install 'spyglass[aws]')", "time", "notifications (pip install 'spyglass[notify]')",
    "update (spyglass update; docs/update.md)")

SETTINGS: tuple[Setting, ...] = (
    Setting("host", HOST, "daemon address, tcp://HOST:PORT or unix:///path", (CLI, ACTION, LAMBDA),
            default="unix:///var/run/docker.sock", defaults={LAMBDA: ""}, flags=("-H", "--host"), env="DOCKER_HOST",
            action_input="host", event_field="host", runner_env=True, group=ENDPOINT,
            notes={LAMBDA: "needed unless every event names a host",
                   CLI: "several scan together as one fleet, the TLS flags applying to each tcp:// one"},
            kinds={CLI: HOSTS}),
    Setting("fleet", PATH, "JSON list of endpoints scanned together: host (required), name, tls_verify, "
            "cert_path or ca_cert, client_cert, client_key, names, label_enable, scope, include_stopped; a field "
            "left out takes the value of these settings", (CLI, ACTION), flags=("--fleet",), env="SPYGLASS_FLEET",
            action_input="fleet", group=ENDPOINT, metavar="FILE", kinds={ACTION: TEXT},
            notes={CLI: "a file; with it, DOCKER_HOST and the default host are not added (-H hosts are)",
                   ACTION: "the JSON or a file path; ca_cert, client_cert, client_key may hold PEM content "
                           "(from a secret); the host input is not added"}),
    Setting("endpoint_concurrency", Whole(low=1), "endpoints listed at once", (CLI, ACTION), default="16",
            flags=("--endpoint-concurrency",), env="SPYGLASS_ENDPOINT_CONCURRENCY",
            action_input="endpoint-concurrency", group=ENDPOINT),
    Setting("tls_verify", BOOL, "verify the daemon's certificate", (CLI, ACTION), default="false",
            flags=("--tlsverify",), env="DOCKER_TLS_VERIFY", runner_env=True, group=ENDPOINT),
    Setting("cert_path", PATH, "folder holding ca.pem, cert.pem and key.pem", (CLI, ACTION), default="~/.docker",
            env="DOCKER_CERT_PATH", runner_env=True, group=ENDPOINT),
    Setting("tls_ca", PATH, "CA of the daemon", (CLI,), flags=("--tlscacert",), group=ENDPOINT,
            shown_default="$DOCKER_CERT_PATH/ca.pem"),
    Setting("tls_cert", PATH, "client certificate", (CLI,), flags=("--tlscert",), group=ENDPOINT,
            shown_default="$DOCKER_CERT_PATH/cert.pem"),
    Setting("tls_key", PATH, "client key", (CLI,), flags=("--tlskey",), group=ENDPOINT,
            shown_default="$DOCKER_CERT_PATH/key.pem"),
    Setting("tls_ca_pem", TEXT, "PEM content of the CA that signed the daemon's certificate (from a secret); "
            "turns on verification", (ACTION,), action_input="tls-ca", secret=True, group=ENDPOINT),
    Setting("tls_cert_pem", TEXT, "PEM content of the client certificate the daemon accepts (from a secret)",
            (ACTION,), action_input="tls-cert", secret=True, group=ENDPOINT),
    Setting("tls_key_pem", TEXT, "PEM content of the client certificate's private key (from a secret)",
            (ACTION,), action_input="tls-key", secret=True, group=ENDPOINT),
    Setting("tls_secret", TEXT, "Secrets Manager id of the daemon's TLS material (JSON ca, cert, key), "
            "or ssm:/prefix for three SecureString parameters; without it plain TCP", (LAMBDA,),
            env="SPYGLASS_TLS_SECRET", event_field="tls_secret", group=ENDPOINT),

    Setting("names", LIST, "only these containers (names or IDs); empty: every one", (CLI, ACTION, LAMBDA),
            flags=("NAME",), env="SPYGLASS_NAMES", action_input="names", event_field="names", group=SELECTION),
    Setting("include_stopped", BOOL, "check stopped containers too (otherwise skipped, not-running)",
            (CLI, ACTION, LAMBDA), default="false", flags=("--include-stopped",), env="SPYGLASS_INCLUDE_STOPPED",
            action_input="include-stopped", event_field="include_stopped", group=SELECTION),
    Setting("label_enable", BOOL, "only containers labelled com.centurylinklabs.watchtower.enable=true",
            (CLI, ACTION, LAMBDA), default="false", flags=("--label-enable",), env="SPYGLASS_LABEL_ENABLE",
            action_input="label-enable", event_field="label_enable", group=SELECTION),
    Setting("scope", TEXT, "only containers whose com.centurylinklabs.watchtower.scope label is this "
            "(none: those without one)", (CLI, ACTION, LAMBDA), flags=("--scope",), env="SPYGLASS_SCOPE",
            action_input="scope", event_field="scope", group=SELECTION, metavar="SCOPE"),

    Setting("registry_ca", PATH, "CA bundle trusted for registries besides certifi's roots", (CLI, ACTION, LAMBDA),
            flags=("--registry-ca",), env="SPYGLASS_REGISTRY_CA", action_input="registry-ca", group=REGISTRIES,
            metavar="PEM", notes={ACTION: "PEM content or a file path", LAMBDA: "a path inside the package or a layer"}),
    Setting("registry_ca_validate", BOOL, "a bad registry CA bundle is exit 2 (false: a warning, public roots "
            "only)", (CLI, ACTION, LAMBDA), default="false", defaults={ACTION: "true", LAMBDA: "true"},
            flags=("--registry-ca-validate",), env="SPYGLASS_REGISTRY_CA_VALIDATE",
            action_input="registry-ca-validate", group=REGISTRIES),
    Setting("insecure_registries", LIST, "registries allowed unverified TLS, then plain http, as dockerd's "
            "insecure-registries: HOST[:PORT], http(s)://HOST[:PORT], [IPv6]:PORT or a CIDR range",
            (CLI, ACTION, LAMBDA), flags=("--insecure-registry",), env="SPYGLASS_INSECURE_REGISTRIES",
            action_input="insecure-registries", group=REGISTRIES, metavar="HOST[:PORT]"),
    Setting("docker_config", PATH, "docker config.json (or its folder) with registry credentials",
            (CLI, ACTION), default="~/.docker", flags=("--docker-config",), env="DOCKER_CONFIG", runner_env=True,
            group=REGISTRIES),
    Setting("docker_config_json", TEXT, "content of a docker config.json with registry credentials (from a "
            "secret); empty: $DOCKER_CONFIG or ~/.docker/config.json on the runner", (ACTION,),
            action_input="docker-config", secret=True, group=REGISTRIES),
    Setting("registry_auth_secret", TEXT, "Secrets Manager id of a docker config.json with registry "
            "credentials (read into memory)", (LAMBDA,), env="SPYGLASS_REGISTRY_AUTH_SECRET", group=REGISTRIES),
    Setting("concurrency", Whole(low=1), "registry requests in flight at once", (CLI, ACTION, LAMBDA), default="8",
            flags=("--concurrency",), env="SPYGLASS_CONCURRENCY", action_input="concurrency", group=REGISTRIES),
    Setting("versions", Choice(*VERSION_LEVELS), "report newer version tags (1.25.3 → 1.27.2) up to this level: "
            "off, patch, minor or major; off asks for no tags list", (CLI, ACTION, LAMBDA), default="major",
            flags=("--versions",), env="SPYGLASS_VERSIONS", action_input="versions", group=REGISTRIES),

    Setting("timeout", Number(above=0), "bound on the whole scan in seconds; unfinished lookups are reported "
            "as timeout", (CLI, ACTION, LAMBDA), default="120", defaults={LAMBDA: ""}, flags=("--timeout",),
            env="SPYGLASS_TIMEOUT", action_input="timeout", group=TIME),
    Setting("delivery_margin", Number(at_least=0), "seconds kept back from the scan for publishing",
            (LAMBDA,), default="10", env="SPYGLASS_DELIVERY_MARGIN", group=TIME),

    Setting("output", Choice(*OUTPUTS), "report format: json, text, markdown or html", (CLI, ACTION),
            defaults={ACTION: "text"}, flags=("-o", "--output"), env="SPYGLASS_OUTPUT", action_input="output",
            group=OUTPUT, shown_default="text on a terminal, json otherwise",
            notes={CLI: "on stdout (html: one self-contained page)",
                   ACTION: "of the report printed in the log: json, text or markdown"},
            kinds={ACTION: Choice(*OUTPUTS[:3], refused={"html": "is written as a file: the report-html input "
                                                                 "and the report-html-path output"})}),
    Setting("report_file", PATH, "write the JSON report to this file", (CLI, ACTION),
            notes={CLI: "besides the report on stdout",
                   ACTION: "instead of a new file under $RUNNER_TEMP; the report-path output names it"},
            flags=("--report-file",), env="SPYGLASS_REPORT_FILE", action_input="report-file", group=OUTPUT),
    Setting("report_html", PATH, "write the report as one self-contained HTML page to this file", (CLI, ACTION),
            notes={CLI: "besides the report on stdout",
                   ACTION: "instead of a new file under $RUNNER_TEMP; the report-html-path output names it"},
            flags=("--report-html",), env="SPYGLASS_REPORT_HTML", action_input="report-html", group=OUTPUT),
    Setting("fail_on_stale", BOOL, "exit 1 when a container is stale", (CLI, ACTION), default="false",
            flags=("--fail-on-stale",), env="SPYGLASS_FAIL_ON_STALE", action_input="fail-on-stale", group=OUTPUT),
    Setting("fail_on_error", BOOL, "exit 1 when a container could not be checked", (CLI, ACTION), default="false",
            flags=("--fail-on-error",), env="SPYGLASS_FAIL_ON_ERROR", action_input="fail-on-error", group=OUTPUT),
    Setting("fail_on_outdated", BOOL, "exit 1 when a container runs a version tag with a newer version reported",
            (CLI, ACTION), default="false", flags=("--fail-on-outdated",), env="SPYGLASS_FAIL_ON_OUTDATED",
            action_input="fail-on-outdated", group=OUTPUT),
    Setting("log_level", Choice(*LOG_LEVELS), "log level: debug, info, warning or error", (CLI, ACTION, LAMBDA), default="warning",
            defaults={LAMBDA: "info"}, flags=("--log-level",), env="SPYGLASS_LOG_LEVEL", action_input="log-level",
            group=OUTPUT, notes={ACTION: "debug when the run is re-run with debug logging"}),
    Setting("log_format", Choice("text", "json"), "logs on stderr as text or one JSON object a line",
            (CLI, ACTION), default="text", flags=("--log-format",), env="SPYGLASS_LOG_FORMAT",
            action_input="log-format", group=OUTPUT),

    Setting("sns_topic_arn", TEXT, "publish the report to this SNS topic", (CLI, ACTION, LAMBDA),
            flags=("--sns-topic-arn",), env="SNS_TOPIC_ARN", action_input="sns-topic-arn", group=DELIVERY,
            metavar="ARN", notes={ACTION: "AWS credentials come from an earlier aws-actions/configure-aws-credentials "
                                          "step", LAMBDA: "without it the report is only written to the log"}),
    Setting("report_bucket", TEXT, "S3 bucket for reports too large for one SNS message", (CLI, ACTION, LAMBDA),
            flags=("--report-bucket",), env="REPORT_BUCKET", action_input="report-bucket", group=DELIVERY,
            metavar="BUCKET"),
    Setting("report_prefix", TEXT, "key prefix of the reports in that bucket", (CLI, ACTION, LAMBDA),
            default="reports/", flags=("--report-prefix",), env="REPORT_PREFIX", action_input="report-prefix",
            group=DELIVERY, metavar="PREFIX"),
    Setting("report_link_expiry", Whole(low=60, high=604_800), "seconds the presigned link to the HTML report "
            "stays valid (the page is stored in the report bucket, its link put in the SNS and notify messages)",
            (LAMBDA,), default="86400", env="SPYGLASS_REPORT_LINK_EXPIRY", group=DELIVERY,
            notes={LAMBDA: "at most 604800 (7 days, S3's limit); a link signed with the function's role "
                           "credentials also ends when they expire"}),
    Setting("notify", Choice(*NOTIFY_POLICIES), "when to publish to SNS and the notify URLs: always, or stale "
            "(something stale or errored)", (CLI, ACTION, LAMBDA), default="always",
            flags=("--notify-policy", "--notify-when"), env="NOTIFY", action_input="notify", group=DELIVERY,
            notes={LAMBDA: "or change (the stale or errored set differs from the last delivered report; needs a "
                           "table)",
                   CLI: "or change (the stale or errored set differs from the last delivered report, kept in "
                        "--state-file)",
                   ACTION: "or change (the stale or errored set differs from the last delivered report, kept in "
                           "the state-file input)"},
            needs={ACTION: Need("change", "state_file", "a runner keeps nothing between runs: give a state-file "
                                "path and carry it from run to run with actions/cache (docs/github-action.md)")}),
    Setting("token_cache", TokenCache(), "share registry tokens between runs through a DynamoDB table",
            (CLI, ACTION, LAMBDA), default="memory", flags=("--token-cache",), env="TOKEN_CACHE",
            action_input="token-cache", group=DELIVERY,
            notes={ACTION: "dynamodb:TABLE installs spyglass with boto3"}),
    Setting("digest_cache_ttl", Number(at_least=0), "seconds a tag's digest is shared through the TOKEN_CACHE "
            "table, so the invocations of one fleet run ask each tag once; 0: not shared", (LAMBDA,),
            default="300", env="SPYGLASS_DIGEST_CACHE_TTL", group=DELIVERY),
    Setting("state_table", TABLE, "where NOTIFY=change keeps the last delivered state", (LAMBDA,),
            env="STATE_TABLE", group=DELIVERY, shown_default="the TOKEN_CACHE table"),

    Setting("notify_urls", NOTIFY_URLS, "send the report to these Apprise URLs (slack://, msteams://, "
            "discord://, tgram://, matrix://, ntfy://, gotify://, mailto://, json://...); secrets, never shown",
            (CLI, ACTION, LAMBDA), flags=("--notify",), env="SPYGLASS_NOTIFY", action_input="notify-urls",
            secret=True, group=NOTIFY, notes={ACTION: "one a line, from a secret",
                                              LAMBDA: "plain text in the function's configuration: prefer "
                                                      "SPYGLASS_NOTIFY_SECRET"}),
    Setting("notify_urls_secret", TEXT, "Secrets Manager id of more notify URLs (a JSON list of strings, or "
            "one URL a line), read into memory at each invocation", (LAMBDA,), env="SPYGLASS_NOTIFY_SECRET",
            group=NOTIFY),
    Setting("notify_timeout", Number(above=0), "seconds for all notify URLs together", (CLI, ACTION, LAMBDA),
            default="30", flags=("--notify-timeout",), env="SPYGLASS_NOTIFY_TIMEOUT", action_input="notify-timeout",
            group=NOTIFY, notes={LAMBDA: "within the delivery margin the function has left"}),
    Setting("fail_on_notify_error", BOOL, "exit 4 when a notify URL did not take the message (false: a "
            "warning)", (CLI, ACTION), default="false", flags=("--fail-on-notify-error",),
            env="SPYGLASS_FAIL_ON_NOTIFY_ERROR", action_input="fail-on-notify-error", group=NOTIFY),
    Setting("state_file", PATH, "where --notify-when change keeps the last delivered fingerprint per endpoint",
            (CLI, ACTION), flags=("--state-file",), env="SPYGLASS_STATE_FILE", action_input="state-file",
            group=NOTIFY, shown_default="$XDG_CACHE_HOME/spyglass/state.json",
            notes={ACTION: "needed by notify: change; a file in the workspace that actions/cache restores before "
                           "the step and saves after it"}),

    Setting("dry_run", BOOL, "print the plan (containers, order, target digests, hooks) and change nothing",
            (CLI,), default="false", flags=("--dry-run",), group=UPDATE),
    Setting("yes", BOOL, "apply without asking (a run that is not on a terminal refuses without it)", (CLI,),
            default="false", flags=("-y", "--yes"), group=UPDATE),
    Setting("apply", BOOL, "update the stale containers the scan finds (pull by digest, recreate, verify, roll "
            "back), as `spyglass update --yes`", (ACTION, LAMBDA), default="false", env="APPLY",
            action_input="apply", group=UPDATE),
    Setting("rolling", BOOL, "one container at a time, each verified before the next is stopped",
            (CLI, ACTION, LAMBDA), default="false", flags=("--rolling",), env="SPYGLASS_ROLLING",
            action_input="rolling", group=UPDATE),
    Setting("health_timeout", Number(above=0), "seconds a new container has to turn healthy (or, without a "
            "health check, to stay up 2 s) before it is rolled back", (CLI, ACTION, LAMBDA), default="60",
            flags=("--health-timeout",), env="SPYGLASS_HEALTH_TIMEOUT", action_input="health-timeout",
            group=UPDATE),
    Setting("stop_timeout", Whole(low=0), "seconds a container has to stop before it is killed",
            (CLI, ACTION, LAMBDA), flags=("--stop-timeout",), env="SPYGLASS_STOP_TIMEOUT",
            action_input="stop-timeout", group=UPDATE, metavar="SECONDS",
            shown_default="the container's own, else 10"),
    Setting("cleanup", BOOL, "remove each replaced image once no container uses it", (CLI, ACTION, LAMBDA),
            default="false", flags=("--cleanup",), env="SPYGLASS_CLEANUP", action_input="cleanup", group=UPDATE),
)

BY_NAME: Mapping[str, Setting] = {row.name: row for row in SETTINGS}


def rows(place: str) -> tuple[Setting, ...]:
    return tuple(row for row in SETTINGS if place in row.places)


def input_env_name(name: str) -> str:
    """The variable action.yml sets for an input: INPUT_TLS_KEY for tls-key."""
    return "INPUT_" + name.upper().replace("-", "_")


# -- sources ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Raw values by setting name, what the user calls each, and what kind of source this is."""

    kind: str  # "flag", "environment variable", "Action input"
    values: Mapping[str, object]
    labels: Mapping[str, str]


def flags(parsed: Mapping[str, object]) -> Source:
    """argparse's namespace (vars()) as built by handler.cli: None where a flag was not given."""
    given = {name: value for name, value in parsed.items() if name in BY_NAME and value is not None}
    return Source("flag", given, {name: _flag_label(BY_NAME[name]) for name in given})


def environment(env: Mapping[str, str], place: str) -> Source:
    """The variables a place reads: every row's in the CLI and the Lambda, the docker CLI's in the Action."""
    chosen = [row for row in rows(place) if row.env and (place != ACTION or row.runner_env)]
    given = {row.name: env[row.env] for row in chosen if row.env in env}
    return Source("environment variable", given, {row.name: row.env for row in chosen})


def action_inputs(env: Mapping[str, str]) -> Source:
    chosen = [row for row in rows(ACTION) if row.action_input]
    given = {row.name: env.get(input_env_name(row.action_input), "") for row in chosen}
    return Source("Action input", given, {row.name: row.action_input for row in chosen})


def event_field_names() -> tuple[str, ...]:
    """The Lambda event's endpoint fields that stand for a setting (handler.aws.settings adds "name")."""
    return tuple(row.event_field for row in rows(LAMBDA) if row.event_field)


# -- resolution ------------------------------------------------------------------------------

def read(source: Source, place: str, problems: list[str], *, home: Path | None = None) -> dict[str, object]:
    """The values this source gives for the place's settings, parsed; a problem per bad one."""
    values = {}
    for row in rows(place):
        if row.name not in source.values:
            continue
        raw = source.values[row.name]
        if isinstance(raw, str) and not raw.strip():
            continue
        try:
            values[row.name] = _expand(row, _parse(row.kind_in(place), raw, source), home)
        except ValueError as exc:
            problems.append(f"{source.labels[row.name]} ({source.kind}): {_quiet(row, exc)}")
    return values


def resolve(place: str, sources: Iterable[Source], *, home: Path | None = None) -> dict[str, object]:
    """Every setting of the place: the first source that gives a value, else the default.

    ConfigurationError names every bad value of every source at once.
    """
    problems: list[str] = []
    values = collect(place, sources, problems, home=home)
    if problems:
        raise ConfigurationError("; ".join(problems))
    return values


def collect(place: str, sources: Iterable[Source], problems: list[str], *,
            home: Path | None = None) -> dict[str, object]:
    """As resolve, with each problem appended to ``problems`` (a bad value counts as not given)."""
    sources = list(sources)
    layers = [read(source, place, problems, home=home) for source in sources]
    values, labels = {}, {}
    for row in rows(place):
        given = [(layer[row.name], source) for layer, source in zip(layers, sources) if row.name in layer]
        values[row.name] = given[0][0] if given else row.default_value(place, home)
        labels[row.name] = f"{given[0][1].labels[row.name]} ({given[0][1].kind})" if given else row.name
    problems += _unmet_needs(place, values, labels)
    return values


def _unmet_needs(place: str, values: Mapping[str, object], labels: Mapping[str, str]) -> list[str]:
    """A problem per value refused in this place for want of another setting (row.needs)."""
    unmet = []
    for row in rows(place):
        need = row.needs.get(place)
        if need is not None and values[row.name] == need.value and not values[need.setting]:
            unmet.append(f"{labels[row.name]}: {need.value} needs {_name_in(BY_NAME[need.setting], place)}: "
                         f"{need.why}")
    return unmet


def _name_in(row: Setting, place: str) -> str:
    """What a person calls the setting in a place: its input, flag or variable."""
    if place == ACTION and row.action_input:
        return f"the {row.action_input} input"
    return _flag_label(row) if place == CLI and row.flags else row.env or row.name


def _parse(kind: Kind, raw: object, source: Source):
    if isinstance(raw, str):
        return kind.parse(raw)
    if isinstance(raw, list) and source.kind == "flag":  # a repeated flag, or the positional names
        return kind.native(raw) if isinstance(kind, Items) else kind.parse(raw[-1])
    return kind.native(raw)


def _expand(row: Setting, value, home: Path | None):
    if isinstance(row.kind, PathKind) and isinstance(value, str) and home is not None and (
            value == "~" or value.startswith("~/")):
        return str(home / value[2:]) if value != "~" else str(home)
    return value


def _quiet(row: Setting, exc: ValueError) -> str:
    return "not a valid value (not shown: secret)" if row.secret else str(exc)


def _flag_label(row: Setting) -> str:
    long = [flag for flag in row.flags if flag.startswith("--")]
    return (long or list(row.flags))[0]


def json_type(value: object) -> str:
    """How a JSON value's type reads in a message: an array, a string, null..."""
    return {list: "an array", dict: "an object", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
