"""The CLI's NOTIFY=change state: per endpoint, atomic, and a bad file means "notify again"."""
import json
import os

import pytest

from engine.errors import ConfigurationError
from handler.statefile import StateFile, default_path


def test_the_default_is_under_the_user_s_cache_folder(tmp_path):
    assert default_path({}, tmp_path) == tmp_path / ".cache" / "spyglass" / "state.json"
    assert default_path({"XDG_CACHE_HOME": "/c"}, tmp_path).as_posix() == "/c/spyglass/state.json"
    assert default_path({"XDG_CACHE_HOME": "relative"}, tmp_path).parent.parent == tmp_path / ".cache"


def test_each_endpoint_keeps_its_own_last_fingerprint(tmp_path):
    state = StateFile(tmp_path / "sub" / "state.json")
    assert state.last("tcp://a:1") is None
    state.record("tcp://a:1", "f1", 1.0)
    state.record("tcp://b:1", "f2", 2.0)
    state.record("tcp://a:1", "f3", 3.0)
    again = StateFile(tmp_path / "sub" / "state.json")
    assert (again.last("tcp://a:1"), again.last("tcp://b:1")) == ("f3", "f2")
    assert [p.name for p in (tmp_path / "sub").iterdir() if p.name.startswith(".state-")] == []  # no temp left


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"endpoints": 3}'])
def test_a_file_that_is_not_state_means_never_delivered_and_is_replaced(tmp_path, content, caplog):
    path = tmp_path / "state.json"
    path.write_text(content)
    state = StateFile(path)
    assert state.last("tcp://a:1") is None
    assert "state file" in caplog.text
    state.record("tcp://a:1", "f1", 1.0)
    assert json.loads(path.read_text())["endpoints"]["tcp://a:1"]["fingerprint"] == "f1"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_that_cannot_be_written_is_a_configuration_error_naming_the_file(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(ConfigurationError, match="state.json"):
        StateFile(folder / "state.json").record("tcp://a:1", "f", 1.0)


def test_a_state_path_that_is_a_folder_is_a_configuration_error(tmp_path):
    (tmp_path / "state.json").mkdir()
    with pytest.raises(ConfigurationError, match="state.json"):
        StateFile(tmp_path / "state.json").record("tcp://a:1", "f", 1.0)
