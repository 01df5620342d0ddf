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
