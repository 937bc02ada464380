"""The `spyglass` command: flags and environment through the settings table, one scan, the report, an exit code.

Exit codes (handler.outcome): 0 the scan completed; 1 with --fail-on-stale (or --fail-on-error,
which counts an endpoint not listed) when that is found; 2 usage or configuration error; 3 no
endpoint could be listed; 4 with
--fail-on-notify-error when a notify URL did not take the message; 130 interrupted. Every option is a row of handler.settings: argparse only collects the text, the
table's parsers turn it into values (flag > environment > default).
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from engine.errors import ConfigurationError, DaemonError, SpyglassError
from engine.version import __version__
from handler import settings as table
from handler.outcome import (EXIT_CONFIG, EXIT_FOUND, EXIT_INTERRUPTED, EXIT_NOTIFY, EXIT_OK, EXIT_UNREACHABLE,
                             found)

log = logging.getLogger("spyglass")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 too; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"spyglass: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line, one argument per row of the settings table that applies to the CLI."""
    parser = _Parser(prog="spyglass", description="Find running containers whose image tag now points "
                     "to a newer image in its registry.")
    parser.add_argument("--version", action="version", version=f"spyglass {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    scan = commands.add_parser("scan", help="scan Docker endpoints and report", description=(
        "Scan Docker endpoints (one -H, several, or a --fleet file): list their containers, ask each "
        "image's registry once for the digest its tag points to now, and report which containers are "
        "stale. Exit codes: 0 done, 1 stale (or errors, an endpoint not listed included) found with "
        "--fail-on-stale (--fail-on-error), 2 usage or configuration error, "
        "3 no endpoint could be listed, 4 a notify URL failed with --fail-on-notify-error, 130 "
        "interrupted. A boolean variable takes true/false, "
        "1/0, yes/no or on/off; a list takes commas or newlines."))
    groups: dict[str, argparse._ArgumentGroup] = {}
    for row in table.rows(table.CLI):
        if not row.flags:
            continue
        if row.group not in groups:
            groups[row.group] = scan.add_argument_group(row.group)
        _add_argument(groups[row.group], row)
    return parser


def _add_argument(group, row: table.Setting) -> None:
    """Every value arrives as text (or True/False for a switch); the table parses it after argparse."""
    help_text = row.help_in(table.CLI) + _help_tail(row)
    metavar = row.metavar or row.kind_in(table.CLI).metavar
    if not row.flags[0].startswith("-"):
        group.add_argument(row.name, nargs="*", metavar=row.flags[0], help=help_text)
    elif isinstance(row.kind, table.Flag):
        group.add_argument(*row.flags, dest=row.name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
    elif isinstance(row.kind_in(table.CLI), table.Items):
        group.add_argument(*row.flags, dest=row.name, action="append", default=None, metavar=metavar,
                           help=help_text + "; repeatable")
    else:
        group.add_argument(*row.flags, dest=row.name, default=None, metavar=metavar, help=help_text)


def _help_tail(row: table.Setting) -> str:
    default = row.shown_default or row.default_text(table.CLI)
    parts = [f"default {default}"] if default and not isinstance(row.kind, table.Flag) else []
    parts += [f"env {row.env}"] if row.env else []
    return f" [{'; '.join(parts)}]" if parts else ""


def read_settings(argv: Sequence[str] | None, env: Mapping[str, str], home: Path) -> dict[str, object] | None:
    """The CLI's values (flag > environment > default); None when the command is not `scan`."""
    args = vars(build_parser().parse_args(argv))
    if args.pop("command") != "scan":
        return None
    if not args.get("names"):
        args["names"] = None  # no positional names: SPYGLASS_NAMES or every container
    values = table.resolve(table.CLI, [table.flags(args), table.environment(env, table.CLI)], home=home)
    if values["fleet"] and not args.get("host"):
        values["host"] = ()  # the fleet file says where: neither DOCKER_HOST nor the default socket joins
    return values


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         stdout=None, stderr=None, home: Path | None = None) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    home = home or Path.home()
    from handler import logs
    try:
        values = read_settings(argv, env, home)
        if values is None:
            build_parser().print_help(stderr)
            return EXIT_CONFIG
        logs.configure(values["log_level"], values["log_format"], stream=stderr, secret_urls=values["notify_urls"])
        if values["notify"] == "change" and not values["state_file"]:
            from handler.statefile import default_path
            values["state_file"] = str(default_path(env, home))
        if values["notify_urls"]:
            from handler.notify import load_apprise
            load_apprise()  # not installed: exit 2 before the scan, not after it
        return _scan(values, stdout=stdout, stderr=stderr, home=home)
    except ConfigurationError as exc:
        print(f"spyglass: configuration error: {exc}", file=stderr)
        return EXIT_CONFIG
    except DaemonError as exc:
        print(f"spyglass: cannot scan: {exc}", file=stderr)
        return EXIT_UNREACHABLE
    except SpyglassError as exc:
        print(f"spyglass: {exc}", file=stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("spyglass: interrupted", file=stderr)
        return EXIT_INTERRUPTED


def _scan(values: Mapping[str, object], *, stdout, stderr, home: Path) -> int:
    from engine.report import render_json, render_markdown, render_text
    from handler.compose import run_scan, scan_config, write_json_report
    from handler.fleet import RunTLS, config_fields, endpoint_configs, fleet_name, read_fleet_file
    from handler.outcome import ensure_listed
    from handler.progress import TerminalProgress

    items = read_fleet_file(values["fleet"], home=home) if values["fleet"] else ()
    tls = RunTLS(values["tls_verify"], values["tls_ca"], values["tls_cert"], values["tls_key"], values["cert_path"])
    endpoints = endpoint_configs(items, values["host"], tls, timeout=min(30.0, values["timeout"]))
    fields = config_fields(endpoints, items)
    config = scan_config(values, fields.pop("daemon"), **fields, fleet_name=fleet_name(values["fleet"], values["host"]))
    token_store = None
    if values["token_cache"]:
        from handler.aws.dynamodb import token_store_for_table  # boto3 only when asked for
        token_store = token_store_for_table(values["token_cache"])
    progress = TerminalProgress(stderr) if _isatty(stderr) else None
    try:
        report = ensure_listed(run_scan(config, progress=progress, token_store=token_store))
    finally:
        if progress is not None:
            progress.close()
    output = values["output"] or ("text" if _isatty(stdout) else "json")
    render = {"json": render_json, "text": render_text, "markdown": render_markdown}[output]
    stdout.write(render(report) + ("\n" if output == "json" else ""))
    stdout.flush()
    if values["report_file"]:
        write_json_report(Path(values["report_file"]), render_json(report))
    notified = _publish(values, report, stderr)
    reason = found(report.summary, fail_on_stale=values["fail_on_stale"], fail_on_error=values["fail_on_error"],
                   fail_on_outdated=values["fail_on_outdated"])
    if reason:
        return EXIT_FOUND
    return EXIT_NOTIFY if not notified and values["fail_on_notify_error"] else EXIT_OK


def _publish(values: Mapping[str, object], report, stderr) -> bool:
    """SNS and the notify URLs, per the policy; False when a notify URL did not take the message.

    With --notify-when change, the fingerprint is recorded only when every delivery went
    through, so a failed one is tried again on the next run.
    """
    from handler.outcome import decide, fingerprint

    if not values["sns_topic_arn"] and not values["notify_urls"]:
        return True
    state = current = last = None
    if values["notify"] == "change":
        from handler.statefile import StateFile
        state, current = StateFile(Path(values["state_file"])), fingerprint(report)
        last = state.last(report.name)
    decision = decide(values["notify"], report.status, current or "", last)
    if not decision.notify:
        log.info("nothing published or sent (%s)", decision.reason)
        return True
    if values["sns_topic_arn"]:
        from handler.aws.sns import publish_report
        publish_report(report, topic_arn=values["sns_topic_arn"], bucket=values["report_bucket"] or "",
                       prefix=values["report_prefix"])
    delivered = _notify_urls(values, report, stderr)
    if state is not None and delivered:
        state.record(report.name, current, report.finished_at)
    return delivered


def _notify_urls(values: Mapping[str, object], report, stderr) -> bool:
    if not values["notify_urls"]:
        return True
    from handler.notify import send

    where = values["report_file"] or "the report spyglass printed"
    outcome = send(values["notify_urls"], report, deadline=values["notify_timeout"], where=where)
    for failure in outcome.failed:
        print(f"spyglass: {failure.target}: not notified: {failure.reason}", file=stderr)
    return outcome.ok


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run() -> None:
    """The `spyglass` command: main(), then exit."""
    code = main()
    # The process ends here, and the OS takes its memory back at once: freezing what the scan
    # built spares the interpreter's last full collection over it (60-100 ms for 300 containers).
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
