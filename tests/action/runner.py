"""A simulated Actions runner for handler.action: the env a composite step gets, and what the step left.

    run = simulate(tmp_path, {"host": ..., "tls-key": ...})
    run.code, run.outputs, run.summary, run.stdout, run.stderr, run.commands("warning")

Inputs arrive as action.yml's `env:` block passes them (INPUT_<NAME>); GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY and RUNNER_TEMP are files and a folder under the test's tmp_path.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from handler.action import env_name, main

_OUTPUT_LINE = re.compile(r"^(?P<name>[^=<]+)(?:=(?P<value>.*)|<<(?P<delimiter>.+))$")
_COMMAND = re.compile(r"^::(?P<command>[a-z-]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def parse_output_file(text: str) -> dict[str, str]:
    """The runner's reading of $GITHUB_OUTPUT: name=value lines and name<<DELIMITER blocks."""
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        match = _OUTPUT_LINE.match(line)
        assert match, f"not an output line: {line!r}"
        if match["delimiter"] is None:
            values[match["name"]] = match["value"]
            continue
        body = []
        for body_line in lines:
            if body_line == match["delimiter"]:
                break
            body.append(body_line)
        else:
            raise AssertionError(f"no closing delimiter for {match['name']}")
        values[match["name"]] = "\n".join(body)
    return values


def unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


@dataclass(frozen=True)
class Command:
    command: str
    properties: dict[str, str]
    message: str


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    output_file: str
    summary: str
    runner_temp: Path
    scans: list = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, str]:
        return parse_output_file(self.output_file)

    def commands(self, name: str | None = None) -> list[Command]:
        found = []
        for line in self.stdout.splitlines():
            match = _COMMAND.match(line)
            if match and (name is None or match["command"] == name):
                props = dict(p.split("=", 1) for p in (match["props"] or "").split(",") if p)
                found.append(Command(match["command"], {k: unescape(v) for k, v in props.items()},
                                     unescape(match["message"])))
        return found


def simulate(tmp_path: Path, inputs: dict[str, str], *, extra_env: dict[str, str] | None = None,
             **main_kwargs) -> Run:
    """Run handler.action.main in-process as the runner would run the composite step."""
    runner_temp, home = tmp_path / "runner-temp", tmp_path / "home"
    runner_temp.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    output_file, summary_file = tmp_path / "github-output", tmp_path / "step-summary"
    output_file.touch()
    summary_file.touch()
    env = {env_name(name): value for name, value in inputs.items()} | {
        "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file),
        "RUNNER_TEMP": str(runner_temp), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"} | (extra_env or {})
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(env, stdout=stdout, stderr=stderr, home=home, **main_kwargs)
    return Run(code=code, stdout=stdout.getvalue(), stderr=stderr.getvalue(),
               output_file=output_file.read_text(), summary=summary_file.read_text(), runner_temp=runner_temp)
