"""The Building Emotional Intimacy course carries its seed article whole, in the seed's own words.

The seed is South Denver Therapy's article "Building Emotional Intimacy: 18 Ways to Deepen Your Connection".
These tests read it next to the course data and fail when a strategy, an exercise box, a checklist or a line
of the article goes missing, or when the data stops validating.
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

# The seed article lives beside the repository, in ../shared/seed/, as it does on every clone and in CI.
SEED_PATH = Path(__file__).resolve().parents[3] / "shared" / "seed" / "building-emotional-intimacy-18-ways.txt"
COURSE_FILE = CURRICULA_DIR / "building-emotional-intimacy.yaml"

# --- Normalisation ---------------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "‒": "-"})
# Emojis, arrows, check marks, bullets and variation selectors: the seed's decoration, not its content.
_DECORATION = re.compile("[\U0001f000-\U0001ffff\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d•]")
# A list or step number ("1. " before an item, a bare "1" above a step) is the template's, like a bullet.
_NUMBERING = re.compile(r"^\d+(?:\.\s+|$)")


def plain(text: str) -> str:
    """Text with curly and straight quotes alike, dashes alike, decoration dropped and whitespace collapsed."""
    return " ".join(_DECORATION.sub(" ", text.translate(_TYPOGRAPHY)).split())


def words(text: str) -> str:
    """The words of ``text`` in order, lower-cased, without punctuation.

    The seed writes "Vulnerability. The willingness..." or "Getting to Know: "What would..."" on one line where
    the course keeps a label and a text in two fields; comparing words lets such a line match the two fields
    read in order. Exact punctuation is checked by the exercise-box phrases below.
    """
    return " ".join(re.findall(r"[^\W_]+%?", plain(text).casefold().replace("'", "")))


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
def seed() -> str:
    assert SEED_PATH.is_file(), f"the seed article belongs at {SEED_PATH} (../shared/seed beside the repository)"
    return SEED_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed_lines(seed: str) -> list[str]:
    return [line.strip() for line in seed.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course("building-emotional-intimacy")


def day_box_strings(course: Course, day: Day) -> list[str]:
    """What a day's exercise box became: the exercise, and the day's checklist if it has one."""
    found = list(strings(day.exercise.model_dump()))
    if day.checklist is not None:
        found += strings(course.checklists[day.checklist].model_dump())
    return [plain(text) for text in found]


def _section(lines: list[str], start: str, end: str) -> list[str]:
    """The lines after the line ``start`` up to the first line beginning with ``end``."""
    first = lines.index(start) + 1
    return lines[first : next(i for i in range(first, len(lines)) if lines[i].startswith(end))]


# --- Days and categories ---------------------------------------------------------------------------


def test_every_seed_heading_is_a_day_in_order(seed_lines: list[str], course: Course) -> None:
    body = _section(seed_lines, "18 Ways to Build Emotional Intimacy", "The 18 Ways at a Glance")
    headings = [match.groups() for line in body if (match := re.fullmatch(r"(\d+)\. ([A-Z][^\"]*)", line))]

    assert [int(number) for number, _ in headings] == list(range(1, 19))
    assert [day.title for day in course.days] == [title for _, title in headings]
    assert [day.number for day in course.days] == list(range(1, 19))


def test_every_day_sits_in_the_category_the_seed_gives_it(seed_lines: list[str], course: Course) -> None:
    seed_categories = [
        (title, int(first), int(last))
        for line in seed_lines
        if (match := re.fullmatch(r"(.+): Ways (\d+)-(\d+)", line))
        for title, first, last in [match.groups()]
    ]

    assert [(c.title, c.first_day, c.last_day) for c in course.categories] == seed_categories
    for title, first, last in seed_categories:
        for number in range(first, last + 1):
            assert course.category(course.day(number).category).title == title, f"day {number}"


def test_short_titles_and_category_short_titles_are_the_seeds_quick_reference(
    seed_lines: list[str], course: Course
) -> None:
    quick_reference = _section(seed_lines, "📋 18 Ways to Build Emotional Intimacy: Quick Reference", "Start with")
    groups = [match.groups() for line in quick_reference if (match := re.fullmatch(r"(.+) \((\d+)-(\d+)\)", line))]
    items = [match.group(1) for line in quick_reference if (match := re.fullmatch(r"\d+\. (.+)", line))]

    assert [(c.short_title, str(c.first_day), str(c.last_day)) for c in course.categories] == groups
    assert [day.short_title for day in course.days] == items


# --- Exercise boxes --------------------------------------------------------------------------------

# For each day, phrases that only its box in the seed has. Each must be in the seed and in that day's exercise.
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


def test_every_seed_exercise_box_is_in_its_days_exercise_in_order(seed: str, course: Course) -> None:
    seed_text = plain(seed)
    assert sorted(EXERCISE_BOXES) == [day.number for day in course.days]
    previous_end = -1
    for number, phrases in EXERCISE_BOXES.items():
        box = day_box_strings(course, course.day(number))
        positions = []
        for phrase in phrases:
            position = seed_text.find(plain(phrase))
            assert position >= 0, f"day {number}: {phrase!r} is not in the seed"
            assert any(plain(phrase) in text for text in box), f"day {number}: {phrase!r} is not in its exercise"
            positions.append(position)
        assert min(positions) > previous_end, f"day {number}'s box comes before day {number - 1}'s in the seed"
        previous_end = max(positions)


# --- Every line of the seed ------------------------------------------------------------------------

# Seed lines the course does not carry as text, each with why.
ALLOWED_LINES: dict[str, str] = {
    "⚡ QUICK ANSWER": "heading of the quick_answer field, which the welcome template titles",
    "👇 Keep reading for 18 specific ways to build emotional intimacy": "article navigation: the ways come one a day",
    "⏱️ Reading time: 16 minutes | Includes connection exercises and conversation starters": "article metadata",
    "Scoring: 0-1 checked = Normal fluctuations. 2-3 checked = Time to prioritize connection. 4+ checked = "
    "Emotional distance is significant—the strategies below can help.": "rendered from the warning-signs bands; "
    "test_warning_signs_checklist_has_the_eight_signs_and_the_seeds_bands compares them with this line",
    "The 18 Ways at a Glance": "heading of the at-a-glance, which the completion template renders from the days",
    "Here is a quick reference for all 18 strategies:": "as above: the at-a-glance is the template's",
    "📋 18 Ways to Build Emotional Intimacy: Quick Reference": "as above: the at-a-glance is the template's",
    "💡 Key Takeaways": "heading of key_takeaways, which the template titles",
    "Frequently Asked Questions About Emotional Intimacy": "heading of the faq, which the template titles",
    "Related Articles in This Series": "article series navigation: each related guide is a resource",
    "This article is part of our emotional connection series. Explore these related guides to go deeper:": (
        "article series navigation: each related guide is a resource with the seed's title and description"
    ),
    "Previous": "website navigation",
    "Next": "website navigation",
    "Feeling Disconnected From Your Partner? Here's What's Really Happening": (
        "website navigation to the previous article: the course carries it as the feeling-disconnected resource, "
        "under its title in the seed's related articles"
    ),
}

# Parts of seed lines the course leaves out, each with why; the rest of the line must still be covered.
DROPPED_FRAGMENTS: dict[str, str] = {
    "Now for the practical strategies.": "article transition: in the course the strategies start the next day",
    "Sources:": "the label of the figures block's source, which the template adds",
    "Take our Emotional Bids Quiz →": "became day 2's emotional-bids-quiz resource link",
    "Download our free exercise guide →": "became the completion email's couples-exercise-guide resource link",
    "This article was written by": "the template introduces practice.author",
    "Last Updated: December 2025": "article metadata",
}


def structure_rendered_as_in_the_seed(course: Course) -> list[str]:
    """Lines the templates render from structure, spelled as the seed spells them."""
    rendered = []
    for category in course.categories:
        rendered.append(f"{category.title}: Ways {category.first_day}-{category.last_day}")
        rendered.append(f"{category.short_title} ({category.first_day}-{category.last_day})")
    return rendered


class Coverage:
    """Which seed lines the course's text carries, compared word for word (see ``words``)."""

    SHORT_LINE = 3  # words: a line as short as "Do:", "History" or "KC" would match almost anywhere

    def __init__(self, course: Course) -> None:
        texts = [
            words(text)
            for text in [*strings(course.model_dump(mode="json")), *structure_rendered_as_in_the_seed(course)]
        ]
        self.corpus = " " + " ".join(texts) + " "
        self.field_starts = {" ".join(text.split()[:n]) for text in texts for n in range(1, self.SHORT_LINE + 1)}

    @staticmethod
    def needle(line: str) -> str:
        for fragment in DROPPED_FRAGMENTS:
            line = line.replace(fragment, " ")
        return words(_NUMBERING.sub("", plain(line)))

    def covers(self, needle: str) -> bool:
        if len(needle.split()) <= self.SHORT_LINE:
            return needle in self.field_starts  # a short line must begin a field, not just occur
        return f" {needle} " in self.corpus


def test_every_line_of_the_seed_is_in_the_course(seed_lines: list[str], course: Course) -> None:
    coverage = Coverage(course)
    needles = [(line, coverage.needle(line)) for line in seed_lines if line not in ALLOWED_LINES]
    checked = [(line, needle) for line, needle in needles if needle]  # a bare step number leaves nothing
    uncovered = [line for line, needle in checked if not coverage.covers(needle)]

    assert not uncovered, f"{len(uncovered)} of {len(checked)} seed lines are not in the course:\n" + "\n".join(
        uncovered
    )


def test_the_allow_list_and_dropped_fragments_are_real_and_needed(
    seed: str, seed_lines: list[str], course: Course
) -> None:
    coverage = Coverage(course)
    for line in ALLOWED_LINES:
        assert line in seed_lines, f"allow-listed line not in the seed: {line!r}"
        assert not coverage.covers(coverage.needle(line)), f"allow-listed line is covered now, remove it: {line!r}"
    for fragment in DROPPED_FRAGMENTS:
        assert fragment in seed, f"dropped fragment not in the seed: {fragment!r}"


# --- Checklists ------------------------------------------------------------------------------------


def test_warning_signs_checklist_has_the_eight_signs_and_the_seeds_bands(seed_lines: list[str], course: Course) -> None:
    checklist = course.checklists["warning-signs"]
    # The section's first line is its intro ("Before we get to the 18 ways..."), then one line per sign.
    signs = _section(seed_lines, "Signs Your Emotional Intimacy Is Fading", "If you recognize several")[1:]
    scoring = next(line for line in seed_lines if line.startswith("Scoring:"))

    assert len(signs) == len(checklist.items) == 8
    for sign, item in zip(signs, checklist.items, strict=True):
        assert sign.startswith(item.text)
        assert f"{item.text} {item.detail}" == sign
    assert [(band.label.removesuffix(" checked"), band.title) for band in checklist.bands] == re.findall(
        r"(\d+(?:-\d+|\+)) checked = ([^.—]+)", scoring
    )
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
    seed_lines: list[str], course: Course
) -> None:
    checklist = course.checklists["professional-support"]

    assert "🚩 " + checklist.title in seed_lines
    assert checklist.prompt in seed_lines
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


def test_faq_is_the_seeds_and_points_to_emails_that_exist(seed_lines: list[str], course: Course) -> None:
    faq_section = _section(
        seed_lines, "Frequently Asked Questions About Emotional Intimacy", "Related Articles in This Series"
    )
    questions = faq_section[0::2]
    answers = faq_section[1::2]

    assert [question.question for question in course.faq] == questions
    assert [question.answer for question in course.faq] == answers
    emails = {"welcome", "completion", *range(1, len(course.days) + 1)}
    for question in course.faq:
        assert question.shown_in is None or question.shown_in in emails, question.question


def test_course_text_has_no_emojis_and_no_shouting(seed: str, course: Course) -> None:
    seed_capitals = set(re.findall(r"\b[A-Z]{2,}\b", seed))
    for text in strings(course.model_dump(mode="json")):
        assert not _DECORATION.search(text), f"decoration in {text!r}"
        assert "!!" not in text, text
        assert set(re.findall(r"\b[A-Z]{2,}\b", text)) <= seed_capitals, f"capitals not in the seed: {text!r}"


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
        data["days"][4]["resources"] = ["no-such-quiz"]

    with pytest.raises(pydantic.ValidationError, match=r"day 5: unknown resource 'no-such-quiz'"):
        load_course_file(_write_broken(tmp_path, point_to_nothing))


def test_days_out_of_order_are_refused(tmp_path: Path) -> None:
    def swap_the_first_two(data: dict[str, Any]) -> None:
        data["days"][0], data["days"][1] = data["days"][1], data["days"][0]

    with pytest.raises(pydantic.ValidationError, match=r"days must be numbered 1\.\.18 in order, got \[2, 1, 3"):
        load_course_file(_write_broken(tmp_path, swap_the_first_two))


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
