"""The suppression list: addresses we never write to again (a hard bounce, a complaint, an erasure),
kept as keyed hashes, never as addresses (course/models.py's email_hash).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from course.lifecycle import SuppressionReason
from course.models.deliveries import Suppression
from course.models.subscribers import email_hash


def suppression_reason(session: Session, email: str, key: bytes) -> str | None:
    """Why this address is on the suppression list (bounce, complaint, erased), or None."""
    return session.scalar(select(Suppression.reason).where(Suppression.email_hash == email_hash(email, key)))


def is_suppressed(session: Session, email: str, key: bytes) -> bool:
    return suppression_reason(session, email, key) is not None


def suppress(
    session: Session, email: str, key: bytes, reason: SuppressionReason, detail: str | None, now: datetime
) -> None:
    existing = session.scalar(select(Suppression).where(Suppression.email_hash == email_hash(email, key)))
    if existing is None:
        session.add(Suppression(email_hash=email_hash(email, key), reason=reason.value, detail=detail, created_at=now))
    elif reason.weight > SuppressionReason(existing.reason).weight:
        existing.reason, existing.detail = reason.value, detail


def lift_erasure(session: Session, email: str, key: bytes) -> None:
    """The person who erased their data confirmed a new sign-up: their own choice wins over the old erasure."""
    erased = Suppression.reason == SuppressionReason.ERASED.value
    session.execute(delete(Suppression).where(Suppression.email_hash == email_hash(email, key), erased))
