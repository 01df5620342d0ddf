"""Two people's edits of one email, merged field by field.

When a save meets a colleague's change (their draft saved, or a version published, since the page was
opened), the editor compares three texts of the email's content: what the page was drawn from (the base,
which the form carries), what was typed (mine) and the colleague's (theirs). A field only one of them
changed takes that change; a field both changed the same way is that; a field both changed differently is a
clash, which the person chooses: mine, theirs, or (for a long text, a list or blocks) both, mine first.

The body's blocks are merged as a sequence (Breezy's ``merge3``, the three-way merge of version control):
a block one side added, removed or moved comes through, and so does a block the other changed; two people
changing the same block are merged again inside it, field by field, so that a title changed by one and a
paragraph by the other are both kept. Only where both changed the same thing is there a question.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from merge3 import Merge3

from web.studio.words import place_label

SIDES = ("mine", "theirs", "both")
MAX_BLOCKS = 500  # more than any email a person writes; the sequence merge is quadratic in the worst case
_LONG_TEXT = {"paragraphs", "text", "items", "intro", "outro", "teaser", "description", "detail", "meaning",
              "next_step", "answer"}  # fmt: skip


class _Missing:
    """A field one side took out (or never had)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Clash:
    """A field (or a run of blocks) both sides changed differently: the person chooses."""

    number: int
    label: str
    mine: Any
    theirs: Any
    run: bool = False  # a run of blocks: mine and theirs are lists spliced into the body
    label_key: str = ""  # the field's own name ("paragraphs"): whether both may be kept

    @property
    def may_take_both(self) -> bool:
        if self.run:
            return True
        if self.mine is MISSING or self.theirs is MISSING:
            return False
        if isinstance(self.mine, list) and isinstance(self.theirs, list):
            return True
        if isinstance(self.mine, dict) and isinstance(self.theirs, dict):
            return "kind" in self.mine and "kind" in self.theirs  # two whole blocks, one after the other
        return isinstance(self.mine, str) and isinstance(self.theirs, str) and self.label_key in _LONG_TEXT

    def shown(self, side: str) -> str:
        """One side's value as the person reads it."""
        return readable(self.mine if side == "mine" else self.theirs, run=self.run)

    def chosen(self, side: str) -> Any:
        if side == "mine":
            return self.mine
        if side == "theirs":
            return self.theirs
        if self.run or isinstance(self.mine, list):
            return [*self.mine, *(item for item in self.theirs if item not in self.mine)]
        if isinstance(self.mine, str):
            return f"{self.mine.rstrip()}\n\n{self.theirs.lstrip()}"
        return _Both(self.mine, self.theirs)


@dataclass(frozen=True)
class _Both:
    """Two whole blocks at one place: both go in, mine first."""

    mine: Any
    theirs: Any


@dataclass
class Merge:
    """The merged content, with a :class:`Clash` wherever a choice is owed."""

    data: Any
    clashes: list[Clash] = field(default_factory=list)
    theirs_taken: list[str] = field(default_factory=list)  # their changes, come through on their own
    mine_kept: list[str] = field(default_factory=list)

    def resolved(self, choices: Mapping[int, str]) -> dict[str, Any]:
        """The content with each clash as chosen. ``ValueError`` naming the first clash left unchosen."""
        for clash in self.clashes:
            side = choices.get(clash.number)
            if side not in SIDES or (side == "both" and not clash.may_take_both):
                raise ValueError(f"choose yours or theirs for “{clash.label}”")
        resolved: dict[str, Any] = _resolve(self.data, choices, self.clashes)
        return resolved


def _resolve(value: Any, choices: Mapping[int, str], clashes: list[Clash]) -> Any:
    if isinstance(value, Clash):
        return _resolve(value.chosen(choices[value.number]), choices, clashes)
    if isinstance(value, dict):
        resolved = {key: _resolve(inner, choices, clashes) for key, inner in value.items()}
        return {key: inner for key, inner in resolved.items() if inner is not MISSING}
    if isinstance(value, list):
        out: list[Any] = []
        for inner in value:
            if isinstance(inner, Clash):
                chosen = _resolve(inner.chosen(choices[inner.number]), choices, clashes)
                if inner.run:
                    out.extend(chosen)
                elif isinstance(chosen, _Both):
                    out.extend([chosen.mine, chosen.theirs])
                else:
                    out.append(chosen)
            else:
                out.append(_resolve(inner, choices, clashes))
        return out
    return value


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _same_block(*blocks: Any) -> bool:
    """Three versions of one block (so merged inside): dictionaries of the same kind."""
    return all(isinstance(block, dict) for block in blocks) and len({block.get("kind") for block in blocks}) == 1


class _Merger:
    def __init__(self, mine_body: list[Any]) -> None:
        self.merge = Merge(data=None)
        self.mine_body = mine_body

    def label(self, path: tuple[str, ...], blocks: list[Any] | None = None) -> str:
        return place_label(blocks if blocks is not None else self.mine_body, path)

    def value(self, base: Any, mine: Any, theirs: Any, path: tuple[str, ...]) -> Any:
        if mine == theirs:
            return mine
        if mine == base:
            self.merge.theirs_taken.append(self.label(path))
            return theirs
        if theirs == base:
            self.merge.mine_kept.append(self.label(path))
            return mine
        if isinstance(mine, dict) and isinstance(theirs, dict) and (path == () or _same_block(base, mine, theirs)):
            base_dict = base if isinstance(base, dict) else {}
            merged: dict[str, Any] = {}
            for key in [*mine, *(key for key in theirs if key not in mine)]:
                merged[key] = self.value(base_dict.get(key, MISSING), mine.get(key, MISSING),
                                         theirs.get(key, MISSING), (*path, str(key)))  # fmt: skip
            return merged
        if path[-1:] == ("body",) and all(isinstance(side, list) for side in (base, mine, theirs)):
            return self.blocks(base, mine, theirs, path)
        return self.clash(path, mine, theirs)

    def clash(self, path: tuple[str, ...], mine: Any, theirs: Any, *, run: bool = False, label: str = "") -> Clash:
        clash = Clash(len(self.merge.clashes) + 1, label or self.label(path), mine, theirs, run=run,
                      label_key=path[-1] if path else "")  # fmt: skip
        self.merge.clashes.append(clash)
        return clash

    def blocks(self, base: list[Any], mine: list[Any], theirs: list[Any], path: tuple[str, ...]) -> list[Any]:
        """The body: a three-way merge of its blocks as a sequence, then of a block both changed."""
        for moved, edited, kept in ((mine, theirs, self.merge.mine_kept), (theirs, mine, self.merge.theirs_taken)):
            carried = _reordered(base, moved, edited)
            if carried is not None:  # one side only moved blocks, the other changed them where they were
                kept.append("The order of the blocks")
                for index, block in enumerate(edited):
                    if block != base[index]:
                        (self.merge.theirs_taken if edited is theirs else self.merge.mine_kept).append(
                            self.label((*path, str(index)), edited)
                        )
                return carried
        merged: list[Any] = []
        regions = Merge3([_key(b) for b in base], [_key(b) for b in mine], [_key(b) for b in theirs]).merge_regions()
        for region in regions:
            what = region[0]
            if what == "unchanged":
                merged.extend(base[region[1] : region[2]])
            elif what in {"same", "a"}:
                if what == "a":
                    self.merge.mine_kept.append(self._run_label(path, region[1], region[2], mine))
                merged.extend(mine[region[1] : region[2]])
            elif what == "b":
                self.merge.theirs_taken.append(self._run_label(path, region[1], region[2], theirs))
                merged.extend(theirs[region[1] : region[2]])
            else:
                base_from, base_to, mine_from, mine_to, theirs_from, theirs_to = region[1:7]  # type: ignore[misc]
                width = base_to - base_from
                if width == mine_to - mine_from == theirs_to - theirs_from:
                    for offset in range(width):  # the same blocks, changed on both sides: merged inside each
                        place = (*path, str(mine_from + offset))
                        merged.append(self.value(base[base_from + offset], mine[mine_from + offset],
                                                 theirs[theirs_from + offset], place))  # fmt: skip
                else:
                    label = (self._run_label(path, mine_from, mine_to, mine) if mine_to > mine_from
                             else self._run_label(path, theirs_from, theirs_to, theirs))  # fmt: skip
                    sides = mine[mine_from:mine_to], theirs[theirs_from:theirs_to]
                    merged.append(self.clash(path, *sides, run=True, label=label))
        return merged

    def _run_label(self, path: tuple[str, ...], start: int, end: int, blocks: list[Any]) -> str:
        if end - start == 1:
            return self.label((*path, str(start)), blocks)
        if end > start:
            return f"Blocks {start + 1} to {end}"
        return f"Blocks taken out at {start + 1}"


def _reordered(base: list[Any], moved: list[Any], edited: list[Any]) -> list[Any] | None:
    """When ``moved`` is ``base`` with its blocks in another order and ``edited`` is ``base`` changed block by
    block in place: ``edited``'s blocks in ``moved``'s order. Otherwise None."""
    keys = [_key(block) for block in base]
    if moved == base or len(edited) != len(base) or sorted(keys) != sorted(_key(block) for block in moved):
        return None
    if sorted(keys) == sorted(_key(block) for block in edited):
        return None  # both reordered: the sequence merge says what clashes
    used: set[int] = set()
    carried = []
    for block in moved:
        key = _key(block)
        index = next(place for place, known in enumerate(keys) if known == key and place not in used)
        used.add(index)
        carried.append(edited[index])
    return carried


def merge(base: Any, mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> Merge:
    """Three versions of one email's content (a words file's data), merged field by field."""
    body = mine.get("body")
    merger = _Merger(body if isinstance(body, list) else [])
    merger.merge.data = merger.value(base if isinstance(base, dict) else {}, dict(mine), dict(theirs), ())
    return merger.merge


def readable(value: Any, *, run: bool = False) -> str:
    """A value as the person reads it: text as text, a block as its words, a run of blocks one by one."""
    if value is MISSING:
        return "(taken out)"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value == [] and run:
            return "(taken out)"
        if value and all(isinstance(item, dict) and "kind" in item for item in value):
            return "\n\n".join(readable(item) for item in value)
        return "\n".join(readable(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        if "kind" in value:
            words = [readable(inner) for key, inner in value.items() if key != "kind" and inner not in (None, "")]
            return f"[{value['kind']}] " + " · ".join(word for word in words if word)
        return " · ".join(readable(inner) for inner in value.values() if inner not in (None, ""))
    if value is None:
        return "(empty)"
    return yaml.safe_dump(value, allow_unicode=True).strip().removesuffix("...").strip()


def merge_words(base: Any, mine: Mapping[str, Any], theirs_text: str) -> Merge | None:
    """Mine merged with a colleague's words file (its text); None when theirs is not a form's content."""
    try:
        theirs = yaml.safe_load(theirs_text)
    except yaml.YAMLError:
        return None
    if not isinstance(theirs, dict):
        return None
    return merge(base, mine, theirs)


@dataclass
class Offered:
    """A merge the editor offers: the merge, and what the merge form carries to redo it when it is posted."""

    merge: Merge | None
    base: Any
    mine: dict[str, Any]
    revision: int  # their draft's revision (0: none), which the merged draft follows

    @property
    def base_json(self) -> str:
        return json.dumps(self.base, ensure_ascii=False)

    @property
    def mine_json(self) -> str:
        return json.dumps(self.mine, ensure_ascii=False)


def carried(text: str, what: str) -> Any:
    """A content the merge form carried back (JSON of a dictionary); ValueError when it is damaged."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ValueError(f"the merge came back damaged ({what}): open the email again")
    if len(data.get("body") or []) > MAX_BLOCKS:
        raise ValueError(f"an email has at most {MAX_BLOCKS} blocks to merge ({what})")
    return data
