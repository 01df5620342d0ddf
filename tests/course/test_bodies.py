"""An email's body is blocks: what the course refuses in one, and how an email written before bodies reads."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from course.curriculum import CURRICULA_DIR, Course, load_course

SHIPPED = CURRICULA_DIR / "building-emotional-intimacy.yaml"


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return data


def test_an_email_written_before_bodies_gets_the_body_its_layout_showed() -> None:
    """A course file or an email's file published before bodies (its teaching, exercise, checklist, guides)
    still reads, as the very same course: what was published keeps sending."""
    data = shipped()
    day = data["days"][17]  # day 18: text, the exercise, its checklist, the "done" button, the call to book
    exercise = next(part for part in day["body"] if part["kind"] == "exercise")
    teaching = [part for part in day["body"][: day["body"].index(exercise)]]
    guides = next(part for part in day["body"] if part["kind"] == "guides")["guides"]
    exercise = {key: value for key, value in exercise.items() if key != "kind"}
    data["days"][17] = {
        **{key: value for key, value in day.items() if key != "body"},
        "teaching": teaching, "exercise": exercise, "checklist": "professional-support", "resources": guides,
        "consultation_leads": True,
    }  # fmt: skip
    course = Course.model_validate(data)
    assert course == load_course()
    assert [part.kind for part in course.day(18).body][-4:] == ["checklist", "button", "consultation", "guides"]


@pytest.mark.parametrize(
    ("where", "part", "message"),
    [
        (3, {"kind": "checklist", "checklist": "no-such-list"}, "day 3: unknown checklist 'no-such-list'"),
        (18, {"kind": "checklist", "checklist": "warning-signs"}, "day 18: one checklist per email"),
        (3, {"kind": "exercise", "title": "Again", "blocks": [{"kind": "text", "paragraphs": ["x"]}]},
         "day 3: one exercise per email"),
        (3, {"kind": "guides", "guides": ["no-such-guide"]}, "day 3: unknown resource 'no-such-guide'"),
        (3, {"kind": "button", "action": "guide", "guide": "no-such-guide"}, "day 3: unknown resource"),
        (3, {"kind": "button", "action": "guide"}, "names its guide"),
        (3, {"kind": "button", "action": "consultation", "guide": "couples-exercise-guide"}, "names its guide"),
        (3, {"kind": "button", "action": "open-the-pod-bay-doors"}, "Input should be 'done'"),
        (3, {"kind": "image", "file": "https://tracker.example/p.gif", "alt": "x"}, "String should match pattern"),
        (3, {"kind": "image", "file": "0123456789abcdef0123456789abcdef.svg", "alt": "x"}, "String should match"),
        (3, {"kind": "image", "file": "0123456789abcdef0123456789abcdef.png", "alt": " "}, "a text alternative"),
        (3, {"kind": "image", "file": "0123456789abcdef0123456789abcdef.png", "alt": "x", "width": 2000},
         "less than or equal to 552"),
        (3, {"kind": "button", "action": "done", "label": "Done\r\nBcc: everyone@example.com"}, "String should match"),
        ("welcome", {"kind": "button", "action": "done"}, "welcome: a button that marks the exercise done needs"),
        ("confirmation", {"kind": "button", "action": "consultation"}, "the confirmation asks one thing"),
        ("confirmation", {"kind": "checklist", "checklist": "warning-signs"}, "the confirmation asks one thing"),
    ],
)  # fmt: skip
def test_a_body_the_course_cannot_back_is_refused_and_says_where(
    where: Any, part: dict[str, Any], message: str
) -> None:
    data = shipped()
    email = data[where] if isinstance(where, str) else data["days"][where - 1]
    email["body"].append(part)
    with pytest.raises(pydantic.ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Course.model_validate(data)


def test_a_day_without_an_exercise_has_no_done_button_to_mark_and_still_sends() -> None:
    data = shipped()
    day = data["days"][2]
    day["body"] = [part for part in day["body"] if part["kind"] not in {"exercise", "button"}]
    course = Course.model_validate(data)
    assert course.day(3).exercise is None and course.day(3).resources == ["couples-exercise-guide"]
    day["body"].append({"kind": "button", "action": "done"})
    with pytest.raises(pydantic.ValidationError, match="needs an exercise in the email"):
        Course.model_validate(data)


def test_what_a_body_holds_is_worked_out_from_its_blocks() -> None:
    course = load_course()
    welcome, eighteen = course.welcome, course.day(18)
    assert welcome.checklist == "warning-signs" and not welcome.consultation_leads
    assert eighteen.checklist == "professional-support" and eighteen.consultation_leads
    assert eighteen.exercise is not None and eighteen.exercise.title == "Check where you are"
    assert course.completion.resources == ["relationship-health-quiz", "couples-exercise-guide", "therapy-resources",
                                            "communicate-better"]  # fmt: skip
    assert [step.checklist for step in course.steps if step.checklist] == ["warning-signs", "professional-support",
                                                                           "warning-signs"]  # fmt: skip
