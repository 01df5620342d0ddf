"""The rooms stand in layers, and the import graph says so: each room imports only the rooms below it.

course (the domain, the database) < emails < workers < web < cli (the ``course`` command, the composition)
< bench (development only: it may use everything; nothing imports it, and the wheel does not ship it).
Function-level imports count as much as the ones at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["course", "emails", "workers", "web", "cli", "bench"]


def imported_rooms(room: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Each room this room imports, with the modules that import it."""
    found: dict[str, set[str]] = {}
    for path in (root / room).rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in (*LAYERS, "tests") and top != room:
                    found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


@pytest.mark.parametrize("room", LAYERS)
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    below = set(LAYERS[: LAYERS.index(room)])
    upward = {other: sorted(where) for other, where in imported_rooms(room).items() if other not in below}
    assert not upward, f"{room} imports rooms at or above its layer: {upward}"


def test_the_walk_finds_imports_inside_functions_and_from_tests(tmp_path: Path) -> None:
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "late.py").write_text(
        "import os\n\ndef later():\n    from web.app import create_app\n    import tests.support\n"
    )
    assert imported_rooms("course", tmp_path) == {"web": {"course/late.py"}, "tests": {"course/late.py"}}


def for_types_only(tree: ast.Module) -> set[int]:
    """The import statements under ``if TYPE_CHECKING:``: for the type checker, never run."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            found |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return found


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of the product (not bench/) and the modules of ours it imports when it runs, at any
    level (an import for the type checker only does not run)."""
    modules: dict[str, Path] = {}
    for room in LAYERS[:-1]:
        for path in (root / room).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = for_types_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, directly or around a loop (Tarjan's strongly
    connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                other = stack.pop()
                group.append(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_the_product_imports_itself_around_a_loop() -> None:
    assert cycles(module_graph()) == []


def test_the_loop_finder_finds_a_loop_through_a_late_import(tmp_path: Path) -> None:
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "one.py").write_text("from course.two import x\n")
    (tmp_path / "course" / "two.py").write_text("def later():\n    from course import one\n")
    (tmp_path / "course" / "three.py").write_text(
        "from typing import TYPE_CHECKING\nimport course.one\nif TYPE_CHECKING:\n    from course.four import y\n"
    )
    (tmp_path / "course" / "four.py").write_text("from course.three import z\n")  # a loop for types only
    assert cycles(module_graph(tmp_path)) == [["course.one", "course.two"]]
