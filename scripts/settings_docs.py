"""Write the settings' documentation from the one table (handler/settings.py), so it cannot drift.

    python3 -m scripts.settings_docs           rewrite the generated blocks in place
    python3 -m scripts.settings_docs --check   exit 1 and print a diff when a file disagrees

Each target file holds its generated block between a BEGIN and an END marker line; the
text around it is written by hand. tests/unit/test_settings_docs.py runs the check.
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from handler import settings as table

ROOT = Path(__file__).resolve().parents[1]
HOW = "scripts/settings_docs.py from handler/settings.py; do not edit by hand"


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    name: str
    comment: str  # "md" or "yaml": how a marker line is written
    indent: str
    render: Callable[[], list[str]]

    def markers(self) -> tuple[str, str]:
        if self.comment == "md":
            return f"<!-- BEGIN generated {self.name}: {HOW} -->", f"<!-- END generated {self.name} -->"
        return f"{self.indent}# BEGIN generated {self.name}: {HOW}", f"{self.indent}# END generated {self.name}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _default(row: table.Setting, place: str) -> str:
    if row.shown_default:
        return _cell(row.shown_default) if " " in row.shown_default else _code(row.shown_default)
    return _code(row.default_text(place)) or "none"


def _option(row: table.Setting) -> str:
    if row.flags and not row.flags[0].startswith("-"):
        return f"`{row.flags[0]}...`"
    value = "" if isinstance(row.kind, table.Flag) else f" {row.metavar or row.kind_in(table.CLI).metavar}"
    flags = [f"--[no-]{f[2:]}" if isinstance(row.kind, table.Flag) and f.startswith("--") else f for f in row.flags]
    return ", ".join(_code(flag + (value if flag == flags[-1] else "")) for flag in flags)


def cli_table() -> list[str]:
    lines = ["| option | environment | default | meaning |", "|---|---|---|---|"]
    for row in table.rows(table.CLI):
        lines.append(f"| {_option(row)} | {_code(row.env)} | {_default(row, table.CLI)} | {_cell(row.help_in(table.CLI))} |")
    return lines


def lambda_table() -> list[str]:
    lines = ["| variable | event field | default | meaning |", "|---|---|---|---|"]
    for row in table.rows(table.LAMBDA):
        field = _code(f"endpoint.{row.event_field}") if row.event_field else ""
        lines.append(f"| {_code(row.env)} | {field} | {_default(row, table.LAMBDA)} | {_cell(row.help_in(table.LAMBDA))} |")
    return lines


def action_table() -> list[str]:
    lines = ["| input | default | meaning |", "|---|---|---|"]
    for row in table.rows(table.ACTION):
        if row.action_input:
            lines.append(f"| {_code(row.action_input)} | {_code(row.input_default())} | "
                         f"{_cell(_action_description(row))} |")
    return lines


def _action_description(row: table.Setting) -> str:
    help_text = row.help_in(table.ACTION)
    text = help_text[0].upper() + help_text[1:] + "."
    if row.runner_env:
        text += f" Empty: ${row.env} on the runner, else {row.default_text(table.ACTION)}."
    return text


def action_inputs() -> list[str]:
    lines = ["inputs:"]
    for row in table.rows(table.ACTION):
        if row.action_input:
            lines += [f"  {row.action_input}:", f"    description: {json.dumps(_action_description(row))}",
                      "    required: false", f"    default: {json.dumps(row.input_default())}"]
    return lines


def action_env() -> list[str]:
    return [f"        {table.input_env_name(row.action_input)}: ${{{{ inputs.{row.action_input} }}}}"
            for row in table.rows(table.ACTION) if row.action_input]


BLOCKS = (
    Block("README.md", "cli options", "md", "", cli_table),
    Block("docs/lambda.md", "lambda variables", "md", "", lambda_table),
    Block("docs/github-action.md", "action inputs", "md", "", action_table),
    Block("action.yml", "action inputs", "yaml", "", action_inputs),
    Block("action.yml", "input variables", "yaml", "        ", action_env),
)


def fill(text: str, block: Block) -> str:
    """text with the block's lines between its markers written anew."""
    begin, end = block.markers()
    lines = text.split("\n")
    try:
        start, stop = lines.index(begin), lines.index(end)
    except ValueError:
        raise SystemExit(f"{block.path}: the markers of the generated {block.name} are missing:\n{begin}\n{end}")
    return "\n".join(lines[:start + 1] + block.render() + lines[stop:])


def expected(path: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    for block in BLOCKS:
        if block.path == path:
            text = fill(text, block)
    return text


def differences() -> dict[str, str]:
    """path -> a unified diff from the file to what the table says, for each file that disagrees."""
    found = {}
    for path in dict.fromkeys(block.path for block in BLOCKS):
        current = (ROOT / path).read_text(encoding="utf-8")
        wanted = expected(path)
        if current != wanted:
            found[path] = "".join(difflib.unified_diff(current.splitlines(True), wanted.splitlines(True),
                                                       f"{path} (now)", f"{path} (from the table)"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    found = differences()
    if args.check:
        for diff in found.values():
            sys.stdout.write(diff)
        return 1 if found else 0
    for path in found:
        (ROOT / path).write_text(expected(path), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
