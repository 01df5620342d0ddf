"""The Building Emotional Intimacy course keeps the structure of its source article.

The article is South Denver Therapy's "Building Emotional Intimacy: 18 Ways to Deepen Your Connection".
Its structure is test data beside this file (seed_outline.yaml): the 18 ways in order, their categories
and short titles, the Warning Signs and Professional Support checklists and their bands, the questions
of the FAQ; the exercise boxes are the phrases below. The wording of the teaching is not locked: it is
the marketers' to edit. The tests also fail when the data stops validating.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from course.curriculum import CURRICULA_DIR, Course, Day, load_course, load_course_file

OUTLINE_PATH = Path(__file__).with_name("seed_outline.yaml")
COURSE_FILE = CURRICULA_DIR / "building-emotional-intimacy.yaml"

# --- Normalisation ---------------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "‒": "-"})
# Emojis, arrows, check marks, bullets and variation selectors: the article's decoration, not its content.
_DECORATION = re.compile("[\U0001f000-\U0001ffff\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d•]")
# The capitals the article itself uses (acronyms, and one word it stresses); anything else is shouting.
ARTICLE_CAPITALS = {"ANSWER", "KC", "LMFT", "QUICK", "TV", "YOUR"}


def plain(text: str) -> str:
    """Text with curly and straight quotes alike, dashes alike, decoration dropped and whitespace collapsed."""
    return " ".join(_DECORATION.sub(" ", text.translate(_TYPOGRAPHY)).split())


def strings(value: Any) -> Iterator[str]:
    """Every string of a model_dump() in reading order: a block's title and intro, its content, then its outro."""
    if isinstance(value, dict):
        keys = [key for key in value if key not in ("kind", "outro")]
        if "outro" in value:
            keys.append("outro")
        for key in keys:
            yield from strings(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


# --- Fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outline() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(OUTLINE_PATH.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course("building-emotional-intimacy")


def day_box_strings(course: Course, day: Day) -> list[str]:
    """What a day's exercise box became: the exercise, and the day's checklist if it has one."""
    assert day.exercise is not None
    found = list(strings(day.exercise.model_dump()))
    if day.checklist is not None:
        found += strings(course.checklists[day.checklist].model_dump())
    return [plain(text) for text in found]


# --- Days and categories ---------------------------------------------------------------------------


def test_every_way_of_the_article_is_a_day_in_order(outline: dict[str, Any], course: Course) -> None:
    assert [day.title for day in course.days] == outline["days"]
    assert [day.number for day in course.days] == list(range(1, 19))


def test_every_day_sits_in_the_category_the_article_gives_it(outline: dict[str, Any], course: Course) -> None:
    expected = [(c["title"], c["first_day"], c["last_day"]) for c in outline["categories"]]
    assert [(c.title, c.first_day, c.last_day) for c in course.categories] == expected
    for title, first, last in expected:
        for number in range(first, last + 1):
            category = course.category(course.day(number).category)
            assert category is not None and category.title == title, f"day {number}"


def test_short_titles_and_category_short_titles_are_the_articles_quick_reference(
    outline: dict[str, Any], course: Course
) -> None:
    assert [c.short_title for c in course.categories] == [c["short_title"] for c in outline["categories"]]
    assert [day.short_title for day in course.days] == outline["short_titles"]


# --- Exercise boxes --------------------------------------------------------------------------------

# For each day, phrases of its exercise box in the article. Each must stay in that day's exercise.
EXERCISE_BOXES: dict[int, list[str]] = {
    1: [
        "The 5-Minute Daily Check-In",
        '"What was the high of your day?"',
        '"What was the low of your day?"',
        '"Is there anything you need from me right now?"',
        '"What is one thing you are looking forward to?"',
        "Consistency matters more than length.",
    ],
    2: [
        "Bids for Connection: What They Look Like",
        '"Look at this sunset."',
        '"Wow, that is beautiful. Come sit with me."',
        "*continues scrolling phone*",
        '"You think YOUR day was hard?"',
        "Pull hand away, seem annoyed",
        "Couples who divorce turn toward only 33% of the time.",
    ],
    3: [
        "A real goodbye kiss, not just a peck",
        "A bedtime ritual where you talk before sleep",
        '"What daily or weekly ritual would help you feel more connected to me?"',
    ],
    4: ["During the first hour you are home from work.", "put the phone face-down or in another room"],
    5: [
        '"Thank you for making coffee."',
        '"You looked really good today."',
        "This 5:1 ratio, discovered by Gottman's research, is the magic number for relationship health.",
    ],
    6: [
        "Deep Conversation Starters",
        "Dr. Arthur Aron's famous 36 Questions study",
        '"What would constitute a perfect day for you?"',
        '"Where do you see us in ten years? What does that life look like?"',
        '"What is something I do that makes you feel most loved?"',
    ],
    7: [
        '"What is a dream you have that you have not talked about in a while?"',
        '"What is something you are scared of that you do not usually admit?"',
        "listen without judgment",
    ],
    8: [
        "Inside jokes and shared memories you reference",
        "What are we building together? What is our shared purpose beyond just coexisting?",
    ],
    9: ["Celebrate your partner's achievements.", "Give them space to be their own person."],
    10: [
        "Your Partner's Love Map: How Well Do You Really Know Them?",
        "Can you answer these questions about your partner? If not, ask them.",
        "What is their biggest current stress?",
        "What was their childhood wound?",
        "How do they like to de-stress?",
        'Gottman calls this your partner\'s "Love Map"',
    ],
    11: [
        '"I am having a hard time with something. Can I talk to you about it?"',
        '"I have been feeling insecure about something."',
    ],
    12: ['Saying "I was wrong" or "I am sorry, you were right"'],
    13: [
        "How to Express Your Needs (Without Criticism)",
        '"You never want to spend time with me. You only care about your friends."',
        '"I have been missing you. Can we plan a date night this week?',
        '"I feel [emotion]. I need [specific request]. Would you be willing to [action]?"',
    ],
    14: [
        "Listen fully without interrupting",
        "Keep what they share confidential",
        "Bring it up later in arguments",
        "Share it with others without permission",
    ],
    15: [
        '"I feel like we have gotten distant from each other. I miss feeling close to you. '
        'Can we talk about what has been happening and how to reconnect?"',
    ],
    16: [
        "The 5-Step Post-Conflict Repair",
        "Cool down first",
        "This takes at least 20 minutes.",
        "Take responsibility",
        '"I should not have raised my voice."',
        "Listen to understand",
        "Identify the real issue",
        "Reconnect physically",
        '"I love you. Even when we fight, I want you to know that."',
    ],
    17: ["A weekend getaway without kids", "Protect this time fiercely."],
    18: ["Signs You May Need Professional Support", "Check any that apply to your relationship:"],
}


def test_every_exercise_box_of_the_article_is_in_its_days_exercise(course: Course) -> None:
    assert sorted(EXERCISE_BOXES) == [day.number for day in course.days]
    for number, phrases in EXERCISE_BOXES.items():
        box = day_box_strings(course, course.day(number))
        for phrase in phrases:
            assert any(plain(phrase) in text for text in box), f"day {number}: {phrase!r} is not in its exercise"


# --- Checklists ------------------------------------------------------------------------------------


def test_warning_signs_checklist_has_the_eight_signs_and_the_articles_bands(
    outline: dict[str, Any], course: Course
) -> None:
    checklist = course.checklists["warning-signs"]
    signs = outline["warning_signs"]["signs"]

    assert len(signs) == len(checklist.items) == 8
    for sign, item in zip(signs, checklist.items, strict=True):
        assert f"{item.text} {item.detail}" == sign
    assert [(band.label.removesuffix(" checked"), band.title) for band in checklist.bands] == [
        (band["label"], band["title"]) for band in outline["warning_signs"]["bands"]
    ]
    assert [(band.key, band.min, band.max) for band in checklist.bands] == [
        ("normal", 0, 1),
        ("prioritise", 2, 3),
        ("significant", 4, None),
    ]
    expected = ["normal"] * 2 + ["prioritise"] * 2 + ["significant"] * 5
    assert [checklist.band_for_score(score).key for score in range(9)] == expected
    with pytest.raises(ValueError, match="between 0 and 8"):
        checklist.band_for_score(9)


def test_professional_support_checklist_sends_any_checked_sign_to_the_consultation(
    outline: dict[str, Any], course: Course
) -> None:
    checklist = course.checklists["professional-support"]

    assert checklist.title == outline["professional_support"]["title"]
    assert checklist.prompt == outline["professional_support"]["prompt"]
    assert 6 <= len(checklist.items) <= 8
    assert checklist.band_for_score(0).key == "none"
    assert {checklist.band_for_score(score).key for score in range(1, len(checklist.items) + 1)} == {"any"}
    any_sign = checklist.band("any")
    assert any_sign is not None
    assert any_sign.meaning == "If you checked any of these, couples therapy can help."
    assert course.day(18).checklist == "professional-support"


def test_the_welcome_and_completion_carry_the_warning_signs_baseline_and_retake(course: Course) -> None:
    assert course.welcome.checklist == "warning-signs"
    assert course.completion.checklist == "warning-signs"
    assert course.confirmation.checklist is None
    assert [day.number for day in course.days if day.checklist] == [18]


# --- Resources, FAQ, tone --------------------------------------------------------------------------

REQUIRED_RESOURCES = [
    "attachment-style-quiz",
    "relationship-health-quiz",
    "emotional-bids-quiz",
    "stonewalling-quiz",
    "couples-exercise-guide",
    "conversation-starters-guide",
]


def _resources_by_email(course: Course) -> dict[str, list[str]]:
    used = {
        "confirmation": course.confirmation.resources,
        "welcome": course.welcome.resources,
        "completion": course.completion.resources,
    }
    used.update({f"day {day.number}": day.resources for day in course.days})
    return used


def test_every_required_resource_exists_and_is_used_by_an_email(course: Course) -> None:
    used = {key for keys in _resources_by_email(course).values() for key in keys}

    for key in REQUIRED_RESOURCES:
        assert key in course.resources, f"missing resource {key!r}"
        assert key in used, f"resource {key!r} is in no email"
    assert set(course.resources) == used, "every resource should reach a subscriber"
    for key, resource in course.resources.items():
        assert str(resource.url).startswith("https://www.southdenvertherapy.com/"), key
    assert "emotional-bids-quiz" in course.day(2).resources
    assert "couples-exercise-guide" in course.completion.resources


def test_faq_answers_the_articles_questions_in_emails_that_exist(outline: dict[str, Any], course: Course) -> None:
    # The questions are the article's; how they are answered is wording, and may be edited.
    assert [question.question for question in course.faq] == [entry["question"] for entry in outline["faq"]]
    assert all(question.answer.strip() for question in course.faq)
    emails = {"welcome", "completion", *range(1, len(course.days) + 1)}
    for question in course.faq:
        assert question.shown_in is None or question.shown_in in emails, question.question


def test_course_text_has_no_emojis_and_no_shouting(course: Course) -> None:
    for text in strings(course.model_dump(mode="json", exclude={"theme"})):  # (a font stack is not text)
        assert not _DECORATION.search(text), f"decoration in {text!r}"
        assert "!!" not in text, text
        assert set(re.findall(r"\b[A-Z]{2,}\b", text)) <= ARTICLE_CAPITALS, f"capitals not in the article: {text!r}"


# --- A broken course is refused --------------------------------------------------------------------


def _write_broken(tmp_path: Path, break_it: Any) -> Path:
    data = yaml.safe_load(COURSE_FILE.read_text(encoding="utf-8"))
    break_it(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_the_course_file_loads_as_is(tmp_path: Path) -> None:
    course = load_course_file(_write_broken(tmp_path, lambda data: None))
    assert len(course.days) == 18


def test_a_checklist_band_gap_is_refused(tmp_path: Path) -> None:
    def leave_a_gap(data: dict[str, Any]) -> None:
        data["checklists"]["warning-signs"]["bands"][1]["min"] = 3

    with pytest.raises(pydantic.ValidationError, match=r"band 'prioritise' starts at 3, expected 2"):
        load_course_file(_write_broken(tmp_path, leave_a_gap))


def test_an_unknown_resource_on_a_day_is_refused(tmp_path: Path) -> None:
    def point_to_nothing(data: dict[str, Any]) -> None:
        data["days"][4]["body"].append({"kind": "guides", "guides": ["no-such-quiz"]})

    with pytest.raises(pydantic.ValidationError, match=r"day 5: unknown resource 'no-such-quiz'"):
        load_course_file(_write_broken(tmp_path, point_to_nothing))


def test_a_day_keeps_its_number_wherever_it_stands(tmp_path: Path) -> None:
    def swap_the_first_two(data: dict[str, Any]) -> None:
        data["days"][0], data["days"][1] = data["days"][1], data["days"][0]

    course = load_course_file(_write_broken(tmp_path, swap_the_first_two))
    assert [(day.number, day.position) for day in course.days[:3]] == [(2, 1), (1, 2), (3, 3)]
    assert [step.email for step in course.steps[:3]] == ["welcome", "day-02", "day-01"]
    assert course.step(1).position == 2 and course.completion.step == 19


def test_two_days_with_one_number_are_refused(tmp_path: Path) -> None:
    def repeat(data: dict[str, Any]) -> None:
        data["days"][1]["number"] = 1

    with pytest.raises(pydantic.ValidationError, match=r"two days carry one number: \[1, 1\]"):
        load_course_file(_write_broken(tmp_path, repeat))


def test_a_day_may_not_take_the_completions_number(tmp_path: Path) -> None:
    def collide(data: dict[str, Any]) -> None:
        data["completion"]["step"] = 5

    with pytest.raises(pydantic.ValidationError, match=r"the completion's number 5 is a day's"):
        load_course_file(_write_broken(tmp_path, collide))


def test_a_question_placed_in_an_email_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    def misplace(data: dict[str, Any]) -> None:
        data["faq"][0]["shown_in"] = 19

    with pytest.raises(pydantic.ValidationError, match=r"shown_in 19 is not an email"):
        load_course_file(_write_broken(tmp_path, misplace))


def test_an_unknown_field_is_a_typo_not_an_extension(tmp_path: Path) -> None:
    def misspell(data: dict[str, Any]) -> None:
        data["days"][2]["teazer"] = data["days"][2].pop("teaser")

    with pytest.raises(pydantic.ValidationError, match=r"teazer"):
        load_course_file(_write_broken(tmp_path, misspell))


def test_a_web_page_on_another_letter_than_the_welcome_is_refused(tmp_path: Path) -> None:
    def give_the_completion_a_page(data: dict[str, Any]) -> None:
        data["completion"]["page"] = data["welcome"]["page"]

    with pytest.raises(pydantic.ValidationError, match=r"only the welcome has a web page \(/about\)"):
        load_course_file(_write_broken(tmp_path, give_the_completion_a_page))


def test_a_verdict_other_than_good_or_bad_is_refused(tmp_path: Path) -> None:
    def call_it_neutral(data: dict[str, Any]) -> None:
        exercise = next(part for part in data["days"][1]["body"] if part["kind"] == "exercise")
        exercise["blocks"][0]["cards"][0]["rows"][0]["tone"] = "neutral"

    with pytest.raises(pydantic.ValidationError, match=r"Input should be 'good' or 'bad'"):
        load_course_file(_write_broken(tmp_path, call_it_neutral))
