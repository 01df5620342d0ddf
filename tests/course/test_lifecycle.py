"""The lifecycle's words: each email kind and suppression reason, and the rules that read them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries import lift_erasure, suppress, suppression_reason
from course.lifecycle import SERVICE_EMAILS, EmailKind, SuppressionReason, day_email, day_number, kind_of
from course.models import Suppression

from .test_subscriptions import NOW, TIMING


def test_every_email_of_the_course_has_a_kind_and_the_days_name_their_number() -> None:
    course = load_course()
    kinds = [kind_of(step.email) for step in course.steps]
    assert kinds == [EmailKind.WELCOME, *[EmailKind.DAY] * len(course.days), EmailKind.COMPLETION]
    assert [day_number(step.email) for step in course.steps[1:-1]] == list(range(1, len(course.days) + 1))
    assert day_email(7) == "day-07" and day_number("day-07") == 7 and day_number("welcome") is None
    assert SERVICE_EMAILS == ("confirmation", "preferences-link")
    with pytest.raises(ValueError):
        kind_of("day-seven")


def test_a_weightier_reason_replaces_the_one_on_file_and_never_the_other_way(session: Session) -> None:
    address = "alex@example.com"
    for reason in (SuppressionReason.ERASED, SuppressionReason.COMPLAINT, SuppressionReason.BOUNCE):
        suppress(session, address, TIMING.address_key, reason, None, NOW)
        session.flush()
    assert suppression_reason(session, address, TIMING.address_key) == SuppressionReason.COMPLAINT
    assert session.scalar(select(Suppression.reason)) == "complaint"  # one row, the weightiest reason
    lift_erasure(session, address, TIMING.address_key)  # the person's sign-up lifts only an erasure
    assert SuppressionReason.is_permanent(suppression_reason(session, address, TIMING.address_key))
    assert not SuppressionReason.is_permanent("erased") and not SuppressionReason.is_permanent(None)
