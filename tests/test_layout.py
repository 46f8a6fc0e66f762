"""The package's shape: no import circles, nothing imports upward, aiohttp in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zomro_async"

# Lower layers never import higher ones. Each module is placed by its dotted
# name's longest matching prefix.
LAYERS: dict[str, int] = {
    "zomro_async._clock": 0,
    "zomro_async._checks": 0,
    "zomro_async._status": 0,
    "zomro_async._binding": 0,
    "zomro_async._awaiting": 0,
    "zomro_async._snapshots._domain": 0,
    "zomro_async._images._domain": 0,
    "zomro_async._backups._domain": 0,
    "zomro_async._instances._domain": 0,
    "zomro_async._exceptions": 1,
    "zomro_async._core": 2,
    "zomro_async._images": 3,
    "zomro_async._instances": 3,
    "zomro_async._snapshots": 3,
    "zomro_async._backups": 3,
    "zomro_async._client": 4,
    "zomro_async": 5,
    "zomro_async.testing": 6,
    "zomro_async._cli": 7,
    "zomro_async.__main__": 7,  # the console script: the CLI, or how to install it
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every package module `name` imports, type-only imports included."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            subs = {f"{module}.{a.name}" for a in node.names} & MODULES.keys()
            found |= subs or ({module} & MODULES.keys())
    return found - {name}


def layer(name: str) -> int:
    matches = [p for p in LAYERS if name == p or name.startswith(p + ".")]
    return LAYERS[max(matches, key=len)]


def test_every_module_has_a_layer() -> None:
    assert {name: layer(name) for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_nothing_imports_upward(name: str) -> None:
    upward = {i for i in imports_of(name) if layer(i) > layer(name)}
    assert not upward, f"{name} (layer {layer(name)}) imports {sorted(upward)}"


def test_there_is_no_import_circle() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(" -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in graph[name]:
            visit(target, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_only_the_transport_uses_aiohttp_in_the_client() -> None:
    users = set()
    for name, path in MODULES.items():
        if name.startswith(("zomro_async.testing", "zomro_async._cli")):
            continue  # the emulator serves with aiohttp.web by design; the CLI runs it
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []  # a type-only import is no use of it
        for node in ast.walk(tree):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(t == "aiohttp" or t.startswith("aiohttp.") for t in targets):
                users.add(name)
    assert users == {"zomro_async._core._transport"}


def test_the_cli_and_the_emulator_use_no_private_helper_of_another_module() -> None:
    for name, path in MODULES.items():
        if not name.startswith(("zomro_async._cli", "zomro_async.testing")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and not node.level
                and (node.module or "").startswith("zomro_async")
            ):
                private = [a.name for a in node.names if a.name[:1] == "_" != a.name[1:2]]
                assert not private, f"{name} imports {private} from {node.module}"
