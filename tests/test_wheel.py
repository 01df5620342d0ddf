"""The wheel ships the product and only the product: its packages with their templates, static files and
migrations as package data (the image installs it, not the source), and neither bench/ nor tests/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_product_its_data_and_its_migrations_and_no_tools(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    left_out = (".venv", ".git", "node_modules", "build", "dist", "*.egg-info", "test-artefacts", "var", "out")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*left_out))
    built = subprocess.run(  # noqa: S603 - pip, on our own project
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"),
         str(source)], capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("course_mailer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.startswith("course_mailer-")}
    assert tops == {"cli", "course", "emails", "web", "workers"}
    modules = {path.relative_to(ROOT).as_posix() for room in sorted(tops)
               for path in (ROOT / room).rglob("*.py") if "node_modules" not in path.parts}  # fmt: skip
    assert modules <= set(names), f"not shipped: {sorted(modules - set(names))}"  # every module, every package
    migrations = {Path(name).name for name in names if name.startswith("course/migrations/versions/")}
    assert migrations == {path.name for path in (ROOT / "alembic" / "versions").glob("*.py")}
    assert {"course/migrations/env.py", "course/migrations/script.py.mako"} <= set(names)
    for folder in ("web/templates", "web/static", "emails/templates"):
        shipped = {name for name in names if name.startswith(folder + "/")}
        here = {str(path.relative_to(ROOT)) for path in (ROOT / folder).rglob("*") if path.is_file()}
        assert shipped == here, folder
    assert "course/curricula/building-emotional-intimacy.yaml" in names
