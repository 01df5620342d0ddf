"""The field-by-field merge (web/studio/merge.py) as a function: what one side changed comes through on its
own, over any contents (Hypothesis); the blocks are merged as a sequence, a moved block keeps the other's
change, and only a field both changed differently is a question."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from web.studio.merge import merge

A = {"kind": "text", "paragraphs": ["First."]}
B = {"kind": "text", "title": "Two", "paragraphs": ["Second."]}
C = {"kind": "divider"}
D = {"kind": "quote", "text": "A quote."}

texts = st.text(max_size=8)
blocks = st.one_of(
    st.builds(lambda words: {"kind": "text", "paragraphs": words}, st.lists(texts, min_size=1, max_size=2)),
    st.builds(lambda text: {"kind": "quote", "text": text}, texts),
    st.just({"kind": "divider"}),
)
contents = st.fixed_dictionaries(
    {"title": texts, "body": st.lists(blocks, max_size=5)}, optional={"subject": texts, "teaser": texts}
)


def everything(side: str, clashes: list[Any]) -> dict[int, str]:
    return {clash.number: side for clash in clashes}


@settings(max_examples=200, deadline=None)
@given(contents, contents)
def test_a_change_on_one_side_only_is_the_merge(base: dict[str, Any], changed: dict[str, Any]) -> None:
    for merged in (merge(base, changed, base), merge(base, base, changed), merge(base, changed, changed)):
        assert merged.clashes == [] and merged.resolved({}) == changed


@settings(max_examples=300, deadline=None)
@given(contents, contents, contents, st.sampled_from(["mine", "theirs", "both"]))
def test_any_three_contents_merge_and_keep_what_only_one_side_changed(
    base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any], side: str
) -> None:
    merged = merge(base, mine, theirs)
    choices = {clash.number: side if side != "both" or clash.may_take_both else "mine" for clash in merged.clashes}
    result = merged.resolved(choices)
    assert isinstance(result["body"], list)
    for key in ("title", "subject", "teaser"):
        if theirs.get(key) == base.get(key) and key in mine:
            assert result[key] == mine[key]
        if mine.get(key) == base.get(key) and key in theirs:
            assert result[key] == theirs[key]
        if key in mine and key in theirs and mine[key] != theirs[key] != base.get(key) != mine[key]:
            if side == "both" and key == "teaser":  # a long text: both, mine first
                assert result[key] == f"{mine[key].rstrip()}\n\n{theirs[key].lstrip()}"
            else:  # a line: yours or theirs
                assert result[key] == (theirs[key] if side == "theirs" else mine[key])


def test_each_one_changes_a_different_block_and_both_changes_stay() -> None:
    merged = merge({"body": [A, B, C]}, {"body": [{**A, "paragraphs": ["Mine."]}, B, C]},
                   {"body": [A, {**B, "paragraphs": ["Theirs."]}, C]})  # fmt: skip
    assert merged.clashes == []
    assert merged.resolved({})["body"] == [{**A, "paragraphs": ["Mine."]}, {**B, "paragraphs": ["Theirs."]}, C]


def test_one_block_changed_in_two_fields_by_two_people_keeps_both() -> None:
    merged = merge({"body": [B]}, {"body": [{**B, "title": "Mine"}]}, {"body": [{**B, "paragraphs": ["Theirs."]}]})
    assert merged.clashes == []
    assert merged.resolved({})["body"] == [{"kind": "text", "title": "Mine", "paragraphs": ["Theirs."]}]


def test_a_moved_block_keeps_the_change_made_where_it_was() -> None:
    moved = {"body": [B, A, C]}
    changed = {"body": [{**A, "paragraphs": ["Changed."]}, B, C]}
    for mine, theirs in ((moved, changed), (changed, moved)):
        merged = merge({"body": [A, B, C]}, mine, theirs)
        assert merged.clashes == []
        assert merged.resolved({})["body"] == [B, {**A, "paragraphs": ["Changed."]}, C]


def test_the_same_field_changed_two_ways_is_a_question_with_both_for_long_text_only() -> None:
    merged = merge({"title": "T", "teaser": "x", "body": []}, {"title": "Mine", "teaser": "mine", "body": []},
                   {"title": "Theirs", "teaser": "theirs", "body": []})  # fmt: skip
    assert [(clash.label, clash.may_take_both) for clash in merged.clashes] == [
        ("Title", False), ("Tomorrow's teaser", True)]  # fmt: skip
    assert merged.resolved({1: "theirs", 2: "both"}) == {"title": "Theirs", "teaser": "mine\n\ntheirs", "body": []}


def test_a_block_taken_out_by_one_and_changed_by_the_other_is_a_question() -> None:
    merged = merge({"body": [A, B, C]}, {"body": [A, C]}, {"body": [A, {**B, "title": "Kept"}, C]})
    [clash] = merged.clashes
    assert clash.run and clash.shown("mine") == "(taken out)" and "Kept" in clash.shown("theirs")
    assert merged.resolved({1: "mine"})["body"] == [A, C]
    assert merged.resolved({1: "theirs"})["body"] == [A, {**B, "title": "Kept"}, C]


def test_blocks_added_at_one_place_by_both_may_both_stay_mine_first() -> None:
    merged = merge({"body": [A]}, {"body": [A, C]}, {"body": [A, D]})
    [clash] = merged.clashes
    assert clash.may_take_both
    assert merged.resolved({1: "both"})["body"] == [A, C, D]
