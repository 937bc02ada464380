"""The module map's rules, checked by reading the imports (see docs/architecture.md)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ENGINE = sorted((ROOT / "engine").glob("*.py"))


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at top level?) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, id(node) in top))
    return found


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_never_imports_handler_or_aws(path):
    roots = {name.split(".")[0] for name, _ in imports(path)}
    assert not roots & {"handler", "boto3", "botocore"}


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_does_not_read_the_environment(path):
    tree = ast.parse(path.read_text())
    reads = [node for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in {"environ", "environb", "getenv"}]
    assert reads == []


def test_only_transport_imports_urllib3_and_only_daemon_imports_docker():
    users = {}
    for path in ENGINE:
        for name, _ in imports(path):
            users.setdefault(name.split(".")[0], set()).add(path.name)
    assert users.get("urllib3") == {"transport.py"}
    assert users.get("docker") == {"daemon.py"}


def test_the_docker_sdk_is_imported_lazily():
    assert all(not top for name, top in imports(ROOT / "engine" / "daemon.py") if name.startswith("docker"))


def test_handler_modules_import_no_aws_at_top_level_for_the_cli():
    for path in (ROOT / "handler").glob("*.py"):
        if path.name.startswith("aws"):
            continue
        assert not any(top and name.split(".")[0] in {"boto3", "botocore"} for name, top in imports(path)), path
