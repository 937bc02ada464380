"""The README's set-up commands: they run through the virtual environment scripts/setup makes, CI runs
exactly the README's test command, and nothing in tests/ or bench/ starts another Python or spyglass."""
from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.stack import sandbox

ROOT = Path(__file__).parents[2]
VENV_PYTHON = ".venv/bin/python"


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
            if line.startswith(("scripts/", ".venv/"))]


def test_ci_runs_exactly_the_readme_test_command():
    [test_command] = [c for c in readme_commands() if " -m pytest" in c]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
    assert [line for line in ci_lines if "pytest" in line and not line.startswith("#")] == [test_command]


def test_every_readme_command_runs_the_virtual_environment_s_python():
    commands = readme_commands()
    assert len(commands) >= 4  # sandbox, tests, benchmark and its quick variant
    for command in commands:
        assert not re.search(r"(^|&& )(python3?|pip3?) ", command), command
        assert VENV_PYTHON in command, command


def test_setup_makes_and_uses_the_git_ignored_environment():
    script = (ROOT / "scripts" / "setup").read_text()
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "setup")], check=True)
    assert '-m venv "$venv"' in script and "python3-venv" in script
    assert '"$venv/bin/python" -m pip install' in script
    assert not re.search(r"^\s*(python3|pip3?) ", script, re.M), "a bare interpreter would meet PEP 668"
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_no_test_or_benchmark_starts_an_interpreter_or_spyglass_from_path():
    # `python3` or `spyglass` as argv[0] picks whatever PATH holds first (a version manager's shim,
    # another installation), not the environment under test.
    pattern = re.compile(r"""\[\s*["'](python3?|spyglass)["']""")
    offenders = [f"{path.relative_to(ROOT)}:{number}" for folder in ("tests", "bench")
                 for path in (ROOT / folder).rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_sandbox_runs_the_spyglass_beside_this_interpreter():
    command = sandbox.scanner_command()
    script = Path(sysconfig.get_path("scripts")) / "spyglass"
    assert command == ([str(script)] if script.is_file() else [sys.executable, "-m", "handler.cli"])
