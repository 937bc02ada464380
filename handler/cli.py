"""The `spyglass` command: parse flags and environment, run one scan, print the report, exit with a code.

Exit codes: 0 the scan completed; 1 with --fail-on-stale (or --fail-on-error) when
that is found; 2 usage or configuration error; 3 the endpoint could not be scanned.
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

EXIT_OK, EXIT_FOUND, EXIT_CONFIG, EXIT_UNREACHABLE = 0, 1, 2, 3
OUTPUTS = ("json", "text", "markdown")

log = logging.getLogger("spyglass")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 too; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"spyglass: error: {message}\n")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="spyglass", description="Find running containers whose image tag now points "
                     "to a newer image in its registry.")
    parser.add_argument("--version", action="version", version=f"spyglass {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    scan = commands.add_parser("scan", help="scan one Docker endpoint and report", description=(
        "Scan one Docker endpoint: list its containers, ask each image's registry for the digest its "
        "tag points to now, and report which containers are stale. Exit codes: 0 done, 1 stale (or "
        "errors) found with --fail-on-stale (--fail-on-error), 2 usage or configuration error, "
        "3 the endpoint could not be listed."))
    scan.add_argument("names", nargs="*", metavar="NAME", help="only these containers (names or IDs)")
    _endpoint_options(scan.add_argument_group("Docker endpoint (as the docker CLI)"), env)
    _selection_options(scan.add_argument_group("selection (Watchtower's labels)"), env)
    _registry_options(scan.add_argument_group("registries"), env)
    _output_options(scan.add_argument_group("output"), env)
    _aws_options(scan.add_argument_group("AWS (pip install 'spyglass[aws]')"), env)
    return parser


def _endpoint_options(group, env) -> None:
    group.add_argument("-H", "--host", default=env.get("DOCKER_HOST"),
                       help="daemon address, unix:///path or tcp://HOST:PORT [env DOCKER_HOST]")
    group.add_argument("--tlsverify", action="store_true", default=None,
                       help="verify the daemon's certificate [env DOCKER_TLS_VERIFY]")
    group.add_argument("--tlscacert", help="CA of the daemon [default: $DOCKER_CERT_PATH/ca.pem]")
    group.add_argument("--tlscert", help="client certificate [default: $DOCKER_CERT_PATH/cert.pem]")
    group.add_argument("--tlskey", help="client key [default: $DOCKER_CERT_PATH/key.pem]")


def _selection_options(group, env) -> None:
    group.add_argument("--include-stopped", action="store_true", default=_flag(env, "SPYGLASS_INCLUDE_STOPPED"),
                       help="check stopped containers too [env SPYGLASS_INCLUDE_STOPPED]")
    group.add_argument("--label-enable", action="store_true", default=_flag(env, "SPYGLASS_LABEL_ENABLE"),
                       help="only containers labelled com.centurylinklabs.watchtower.enable=true "
                            "[env SPYGLASS_LABEL_ENABLE]")
    group.add_argument("--scope", default=env.get("SPYGLASS_SCOPE"),
                       help="only containers whose com.centurylinklabs.watchtower.scope label is SCOPE; "
                            "'none' for those without one [env SPYGLASS_SCOPE]")


def _registry_options(group, env) -> None:
    group.add_argument("--registry-ca", default=env.get("SPYGLASS_REGISTRY_CA"), metavar="PEM",
                       help="CA bundle trusted for registries, in addition to certifi's [env SPYGLASS_REGISTRY_CA]")
    group.add_argument("--registry-ca-validate", action="store_true",
                       default=_flag(env, "SPYGLASS_REGISTRY_CA_VALIDATE"),
                       help="check the CA bundle at start-up and exit 2 if it is bad "
                            "[env SPYGLASS_REGISTRY_CA_VALIDATE]")
    group.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]",
                       default=_list(env, "SPYGLASS_INSECURE_REGISTRIES"),
                       help="allow plain http or unverified TLS for this registry only; repeatable "
                            "[env SPYGLASS_INSECURE_REGISTRIES, comma-separated]")
    group.add_argument("--docker-config", default=env.get("DOCKER_CONFIG"), metavar="PATH",
                       help="docker config.json (or its folder) holding registry credentials "
                            "[env DOCKER_CONFIG; default ~/.docker/config.json]")
    group.add_argument("--concurrency", type=_positive_int, default=env.get("SPYGLASS_CONCURRENCY", "8"),
                       help="registry requests in flight at once (default 8) [env SPYGLASS_CONCURRENCY]")
    group.add_argument("--timeout", type=_positive_float, default=env.get("SPYGLASS_TIMEOUT", "120"),
                       metavar="SECONDS", help="bound on the whole scan; what is unfinished then is "
                       "reported as a timeout (default 120) [env SPYGLASS_TIMEOUT]")


def _output_options(group, env) -> None:
    group.add_argument("--output", "-o", choices=OUTPUTS, default=env.get("SPYGLASS_OUTPUT"),
                       help="report format on stdout (default: text on a terminal, json otherwise) "
                            "[env SPYGLASS_OUTPUT]")
    group.add_argument("--report-file", metavar="PATH", help="also write the JSON report to PATH")
    group.add_argument("--fail-on-stale", action="store_true", default=_flag(env, "SPYGLASS_FAIL_ON_STALE"),
                       help="exit 1 when a container is stale [env SPYGLASS_FAIL_ON_STALE]")
    group.add_argument("--fail-on-error", action="store_true", default=_flag(env, "SPYGLASS_FAIL_ON_ERROR"),
                       help="exit 1 when a container could not be checked [env SPYGLASS_FAIL_ON_ERROR]")
    group.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                       default=env.get("SPYGLASS_LOG_LEVEL", "warning"), help="[env SPYGLASS_LOG_LEVEL]")
    group.add_argument("--log-format", choices=("text", "json"), default=env.get("SPYGLASS_LOG_FORMAT", "text"),
                       help="logs on stderr as text or one JSON object a line [env SPYGLASS_LOG_FORMAT]")


def _aws_options(group, env) -> None:
    group.add_argument("--sns-topic-arn", default=env.get("SNS_TOPIC_ARN"), metavar="ARN",
                       help="also publish the report to this SNS topic, as the Lambda does [env SNS_TOPIC_ARN]")
    group.add_argument("--report-bucket", default=env.get("REPORT_BUCKET"), metavar="BUCKET",
                       help="S3 bucket for reports too large for one SNS message [env REPORT_BUCKET]")
    group.add_argument("--token-cache", default=env.get("TOKEN_CACHE", "memory"), metavar="memory|dynamodb:TABLE",
                       help="share registry tokens between runs through a DynamoDB table (default memory) "
                            "[env TOKEN_CACHE]")


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         stdout=None, stderr=None, home: Path | None = None) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser(env)
    args = parser.parse_args(argv)
    if args.command != "scan":
        parser.print_help(stderr)
        return EXIT_CONFIG
    from handler import logs
    logs.configure(args.log_level, args.log_format, stream=stderr)
    try:
        return _scan(args, env=env, stdout=stdout, stderr=stderr, home=home or Path.home())
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
        return 130


def _scan(args, *, env, stdout, stderr, home: Path) -> int:
    from engine.report import render_json, render_markdown, render_text
    from handler.compose import ScanConfig, daemon_settings, run_scan
    from handler.progress import TerminalProgress

    settings = daemon_settings(env, home, host=args.host, tls_verify=args.tlsverify, ca=args.tlscacert,
                               cert=args.tlscert, key=args.tlskey, timeout=min(30.0, args.timeout))
    config = ScanConfig(daemon=settings, names=tuple(args.names), include_stopped=args.include_stopped,
                        label_enable=args.label_enable, scope=args.scope, registry_ca=args.registry_ca,
                        registry_ca_validate=args.registry_ca_validate,
                        insecure_registries=tuple(args.insecure_registry or ()),
                        docker_config=args.docker_config, concurrency=args.concurrency, timeout=args.timeout)
    token_store = None
    if args.token_cache != "memory":  # nosec B105 # a cache kind, not a password
        from handler.aws.dynamodb import token_store_from_spec  # boto3 only when asked for
        token_store = token_store_from_spec(args.token_cache)
    progress = TerminalProgress(stderr) if _isatty(stderr) else None
    try:
        report = run_scan(config, env=env, home=home, progress=progress, token_store=token_store)
    finally:
        if progress is not None:
            progress.close()
    output = args.output or ("text" if _isatty(stdout) else "json")
    render = {"json": render_json, "text": render_text, "markdown": render_markdown}[output]
    stdout.write(render(report) + ("\n" if output == "json" else ""))
    stdout.flush()
    if args.report_file:
        _write_report(Path(args.report_file), render_json(report))
    if args.sns_topic_arn:
        from handler.aws.sns import publish_report
        publish_report(report, topic_arn=args.sns_topic_arn, bucket=args.report_bucket or "")
    summary = report.summary
    if (args.fail_on_stale and summary["stale"]) or (args.fail_on_error and summary["errors"]):
        return EXIT_FOUND
    return EXIT_OK


def _write_report(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"write report {path}: {exc.strerror or exc}") from None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def run() -> None:
    """The `spyglass` command: main(), then exit."""
    code = main()
    # The process ends here, and the OS takes its memory back at once: freezing what the scan
    # built spares the interpreter's last full collection over it (60-100 ms for 300 containers).
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
