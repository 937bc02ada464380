"""The README option table, action.yml's inputs and env block, docs/lambda.md and docs/github-action.md
agree with the settings table (scripts/settings_docs.py writes them; this fails with the diff)."""
from __future__ import annotations

import pytest

from handler import settings as table
from scripts import settings_docs


@pytest.mark.parametrize("path", sorted({block.path for block in settings_docs.BLOCKS}))
def test_the_file_agrees_with_the_settings_table(path):
    wanted = settings_docs.expected(path)
    current = (settings_docs.ROOT / path).read_text(encoding="utf-8")
    if current != wanted:
        diff = settings_docs.differences()[path]
        pytest.fail(f"{path} disagrees with handler/settings.py; run `python3 -m scripts.settings_docs`:\n{diff}")


def test_a_changed_row_shows_up_as_a_difference(monkeypatch):
    """The check can fail: a new row is a missing line in each file of the places it applies to."""
    row = table.Setting("fleet", table.TEXT, "scan every endpoint of this fleet", table.PLACES,
                        flags=("--fleet",), env="SPYGLASS_FLEET", action_input="fleet")
    monkeypatch.setattr(table, "SETTINGS", table.SETTINGS + (row,))
    found = settings_docs.differences()
    assert set(found) == {"README.md", "action.yml", "docs/lambda.md", "docs/github-action.md"}
    assert "+| `--fleet TEXT` | `SPYGLASS_FLEET` | none | scan every endpoint of this fleet |" in found["README.md"]
    assert '+  fleet:' in found["action.yml"] and "+        INPUT_FLEET: ${{ inputs.fleet }}" in found["action.yml"]


def test_missing_markers_are_named():
    block = settings_docs.BLOCKS[0]
    with pytest.raises(SystemExit, match="markers"):
        settings_docs.fill("no markers here\n", block)
