"""The `spyglass` command: flags and environment through the settings table, one scan, the report, an exit code.

`spyglass update` (docs/update.md) scans the same way, then applies what it found.

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
    _add_rows(scan, [row for row in table.rows(table.CLI) if row.group != table.UPDATE])
    update = commands.add_parser("update", help="update the stale containers a scan finds, with rollback",
                                 description=(
        "Scan as `spyglass scan` does, then move each stale running container to the digest the scan saw: "
        "pull by digest, stop in dependency order, recreate with the same settings, verify (running, "
        "healthy), roll back what does not come up. Without --yes it shows the plan and asks; a run that "
        "is not on a terminal refuses (exit 2). Exit codes: 0 done, 1 a container rolled back or failed, "
        "2 usage or configuration error, 3 the endpoint could not be listed. See docs/update.md."))
    _add_rows(update, table.rows(table.CLI))
    return parser


def _add_rows(command: argparse.ArgumentParser, rows) -> None:
    groups: dict[str, argparse._ArgumentGroup] = {}
    for row in rows:
        if not row.flags:
            continue
        if row.group not in groups:
            groups[row.group] = command.add_argument_group(row.group)
        _add_argument(groups[row.group], row)


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
    """The CLI's values (flag > environment > default), with "command"; None without a command."""
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    if command not in ("scan", "update"):
        return None
    if not args.get("names"):
        args["names"] = None  # no positional names: SPYGLASS_NAMES or every container
    values = table.resolve(table.CLI, [table.flags(args), table.environment(env, table.CLI)], home=home)
    if values["fleet"] and not args.get("host"):
        values["host"] = ()  # the fleet file says where: neither DOCKER_HOST nor the default socket joins
    return {**values, "command": command}


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         stdout=None, stderr=None, home: Path | None = None, stdin=None) -> int:
    env = os.environ if env is None else env
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
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
        if values["command"] == "update":
            return _update(values, stdout=stdout, stderr=stderr, stdin=stdin, home=home)
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


def _config(values: Mapping[str, object], home: Path):
    from handler.compose import scan_config
    from handler.fleet import RunTLS, config_fields, endpoint_configs, fleet_name, read_fleet_file

    items = read_fleet_file(values["fleet"], home=home) if values["fleet"] else ()
    tls = RunTLS(values["tls_verify"], values["tls_ca"], values["tls_cert"], values["tls_key"], values["cert_path"])
    endpoints = endpoint_configs(items, values["host"], tls, timeout=min(30.0, values["timeout"]))
    fields = config_fields(endpoints, items)
    return scan_config(values, fields.pop("daemon"), **fields, fleet_name=fleet_name(values["fleet"], values["host"]))


def _token_store(values: Mapping[str, object]):
    if not values["token_cache"]:
        return None
    from handler.aws.dynamodb import token_store_for_table  # boto3 only when asked for
    return token_store_for_table(values["token_cache"])


def _scan(values: Mapping[str, object], *, stdout, stderr, home: Path) -> int:
    from engine.recover import mark_interrupted
    from handler.compose import run_scan
    from handler.outcome import ensure_listed
    from handler.progress import TerminalProgress

    config = _config(values, home)
    token_store = _token_store(values)
    progress = TerminalProgress(stderr) if _isatty(stderr) else None
    try:
        report = mark_interrupted(ensure_listed(run_scan(config, progress=progress, token_store=token_store)))
    finally:
        if progress is not None:
            progress.close()
    delivered = _deliver(values, report, stdout, stderr)
    reason = found(report.summary, fail_on_stale=values["fail_on_stale"], fail_on_error=values["fail_on_error"],
                   fail_on_outdated=values["fail_on_outdated"])
    return _exit_code(delivered, EXIT_FOUND if reason else EXIT_OK)


def _exit_code(delivered: int, verdict: int) -> int:
    """A failed SNS delivery (2, 3) first, then the scan's or update's verdict (1), then a failed
    notify URL (4)."""
    if delivered in (EXIT_CONFIG, EXIT_UNREACHABLE):
        return delivered
    return verdict or delivered


def _deliver(values: Mapping[str, object], report, stdout, stderr) -> int:
    """The report on stdout, in the report file, to SNS and the notify URLs; the code as _publish."""
    from engine.report import render_json, render_markdown, render_text
    from handler.compose import render_page, write_json_report, write_report

    output = _output(values, stdout)
    page = render_page(report) if output == "html" or values["report_html"] else ""
    render = {"json": render_json, "text": render_text, "markdown": render_markdown, "html": lambda _: page}[output]
    stdout.write(render(report) + ("\n" if output == "json" else ""))
    stdout.flush()
    if values["report_file"]:
        write_json_report(Path(values["report_file"]), render_json(report))
    if values["report_html"]:
        write_report(Path(values["report_html"]), page)
    return _publish(values, report, stderr)


def _output(values: Mapping[str, object], stdout) -> str:
    return values["output"] or ("text" if _isatty(stdout) else "json")


def _update(values: Mapping[str, object], *, stdout, stderr, stdin, home: Path) -> int:
    """Scan, plan, ask (unless --yes or --dry-run), apply; the report carries each container's action."""
    from engine.plan import describe
    from handler.compose import run_update, update_options
    from handler.outcome import update_found

    interactive = _isatty(stdin) and _isatty(stderr)
    if not values["dry_run"] and not values["yes"] and not interactive:
        print("spyglass: update needs --yes when it cannot ask (not on a terminal); --dry-run shows the plan",
              file=stderr)
        return EXIT_CONFIG
    plan_out = stdout if _output(values, stdout) != "json" else stderr

    def confirm(plan) -> bool:
        print(describe(plan), file=stderr)
        if not plan.steps:
            return False
        stderr.write("Apply this plan? [y/N] ")
        stderr.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    run = run_update(_config(values, home), update_options(values), dry_run=values["dry_run"],
                     confirm=None if values["yes"] or values["dry_run"] else confirm,
                     token_store=_token_store(values))
    if values["dry_run"]:
        print(describe(run.plan), file=plan_out)
    delivered = _deliver(values, run.report, stdout, stderr)
    return _exit_code(delivered, EXIT_FOUND if update_found(run.report) else EXIT_OK)


def _publish(values: Mapping[str, object], report, stderr) -> int:
    """SNS and the notify URLs under the notify policy (handler.delivery, as the Action); a line on
    stderr per target that did not take the report. The exit code: 2 when the state file could not
    be written, 2 or 3 when SNS failed, 4 when a notify URL did and --fail-on-notify-error is set,
    else 0."""
    from handler.delivery import Targets, deliver

    where = values["report_file"] or "the report spyglass printed"
    delivery = deliver(report, Targets.of(values), where=where)
    if delivery.decision is not None and not delivery.decision.notify:
        log.info("nothing published or sent (%s)", delivery.decision.reason)
    if delivery.sns_problem:
        print(f"spyglass: {delivery.sns_problem}", file=stderr)
    for failure in delivery.failed:
        print(f"spyglass: {failure.target}: not notified: {failure.reason}", file=stderr)
    if delivery.record_problem:
        print(f"spyglass: configuration error: {delivery.record_problem}", file=stderr)
        return EXIT_CONFIG
    if delivery.sns_code:
        return delivery.sns_code
    return EXIT_NOTIFY if delivery.failed and values["fail_on_notify_error"] else EXIT_OK


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
