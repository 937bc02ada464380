"""The module map's rules, checked by reading the imports (see docs/architecture.md)."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ENGINE = sorted((ROOT / "engine").glob("*.py"))
ARCHITECTURE = ROOT / "docs" / "architecture.md"


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


def documented_layers(text: str) -> list[list[str]]:
    """The first fenced block under "## Import directions": a line per layer, top to bottom,
    engine module names separated by spaces, "#" starting a comment."""
    section = text.split("\n## Import directions\n", 1)[1]
    block = re.search(r"^```\n(.*?)^```", section, re.S | re.M)
    lines = (line.split("#", 1)[0].split() for line in block.group(1).splitlines())
    return [names for names in lines if names]


def engine_imports(path: Path) -> set[str]:
    """The engine modules a file imports, at top level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "engine":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("engine.")}
    return found


LAYERS = documented_layers(ARCHITECTURE.read_text())
LAYER_OF = {name: depth for depth, names in enumerate(LAYERS) for name in names}
MODULES = [path for path in ENGINE if path.name != "__init__.py"]


def test_the_documented_layers_name_every_engine_module_once():
    listed = [name for names in LAYERS for name in names]
    assert sorted(listed) == sorted(set(listed)), "a module is on two lines of docs/architecture.md"
    missing = sorted({path.stem for path in MODULES} - set(listed))
    assert not missing, f"add {missing} to a layer under 'Import directions' in docs/architecture.md"
    assert not set(listed) - {path.stem for path in MODULES}, "docs/architecture.md lists a module that is gone"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_each_engine_module_imports_only_from_the_layers_below_it(path):
    upward = sorted(name for name in engine_imports(path) if LAYER_OF.get(name, -1) <= LAYER_OF.get(path.stem, -1))
    assert not upward, (f"engine/{path.name} imports {upward} from its own layer or above; move a module "
                        "in docs/architecture.md's 'Import directions' or the import")


def test_the_layer_reader_reads_the_stated_format_and_every_kind_of_import(tmp_path):
    text = "# x\n\n## Import directions\n\nprose\n\n```\ntop  # why\n\nmid other\nbottom\n```\n\n```\nnot this\n```\n"
    assert documented_layers(text) == [["top"], ["mid", "other"], ["bottom"]]
    module = tmp_path / "m.py"
    module.write_text("from .a import x\nfrom . import b, c\nimport engine.d\nfrom engine.e import y\n"
                      "from engine import f\nimport os\nfrom urllib3 import z\n"
                      "def lazy():\n    from .g import w\n")
    assert engine_imports(module) == {"a", "b", "c", "d", "e", "f", "g"}


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
