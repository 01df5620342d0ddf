"""Compiled templates kept on disk between processes (emails/compiler.py ``CodeCache``): used for the very
source and kind they were made for only, still metered, and never the reason a check fails."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from emails import compiler
from emails.compiler import CodeCache, RenderBudgetExceeded, from_source, kept, prune


def environment(kind: str, folder: Path, *, html: bool) -> compiler.CourseEnvironment:
    made = compiler.CourseEnvironment(autoescape=html, undefined=jinja2.StrictUndefined,
                                      bytecode_cache=CodeCache(kind, str(folder)))  # fmt: skip
    made.meter_filters_and_tests()
    return made


def test_a_second_process_takes_the_code_and_never_compiles_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "Hello {{ name }}!"
    assert from_source(environment("text", tmp_path, html=False), source).render(name="Kayla") == "Hello Kayla!"
    assert len(list(tmp_path.iterdir())) == 1
    later = environment("text", tmp_path, html=False)  # as a new process makes it
    monkeypatch.setattr(later, "compile", lambda *args, **kwargs: pytest.fail("compiled again"))
    assert from_source(later, source).render(name="Sam") == "Hello Sam!"
    # Another source is compiled, and kept beside the first.
    monkeypatch.undo()
    assert from_source(later, "Bye {{ name }}").render(name="Sam") == "Bye Sam"
    assert len(list(tmp_path.iterdir())) == 2


def test_code_made_for_text_is_never_used_for_html(tmp_path: Path) -> None:
    source = "{{ name }}"
    assert from_source(environment("text", tmp_path, html=False), source).render(name="<b>") == "<b>"
    assert from_source(environment("html", tmp_path, html=True), source).render(name="<b>") == "&lt;b&gt;"
    assert from_source(environment("text", tmp_path, html=False), source).render(name="<b>") == "<b>"


def test_code_from_the_cache_is_metered_like_code_just_made(tmp_path: Path) -> None:
    runaway = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}Hi"
    for _ in range(2):  # made, then read back
        template = from_source(environment("text", tmp_path, html=False), runaway)
        with pytest.raises(RenderBudgetExceeded, match="steps"):
            template.render()


def test_a_damaged_or_foreign_entry_is_compiled_again(tmp_path: Path) -> None:
    from_source(environment("text", tmp_path, html=False), "A {{ x }}")
    (entry,) = tmp_path.iterdir()
    for damage in (b"", b"garbage", entry.read_bytes()[:40]):
        entry.write_bytes(damage)
        assert from_source(environment("text", tmp_path, html=False), "A {{ x }}").render(x=1) == "A 1"


def test_what_a_check_learns_of_a_source_is_kept_as_data(tmp_path: Path) -> None:
    made = environment("text", tmp_path, html=False)
    asked = []

    def work() -> list[str]:
        asked.append(1)
        return ["a", "b"]

    assert kept(made, "names", "{{ a }}{{ b }}", work) == ["a", "b"]
    assert kept(environment("text", tmp_path, html=False), "names", "{{ a }}{{ b }}", work) == ["a", "b"]
    assert kept(made, "names", "{{ c }}", lambda: ["c"]) == ["c"]  # another source, its own entry
    assert asked == [1]
    for entry in tmp_path.iterdir():
        entry.write_text("{not json")
    assert kept(made, "names", "{{ a }}{{ b }}", work) == ["a", "b"] and asked == [1, 1]


def test_the_directory_keeps_the_most_recently_used_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "KEEP_MOST", 10)
    monkeypatch.setattr(compiler, "KEEP_LEAST", 6)
    for n in range(12):
        entry = tmp_path / f"entry-{n:02d}"
        entry.write_text("x")
        os.utime(entry, (1_000_000 + n, 1_000_000 + n))
    os.utime(tmp_path / "entry-00", None)  # used just now
    prune(tmp_path)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [
        "entry-00", "entry-07", "entry-08", "entry-09", "entry-10", "entry-11"
    ]  # fmt: skip
