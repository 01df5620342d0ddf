"""What mail servers tell after they accepted an email: bounces and complaints, each notice kept."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base, Id, enum_values


class Bounce(StrEnum):
    """What a bounce event's value says happened to the email (``Event.value`` of a ``bounce``)."""

    REFUSED = "failed"  # refused for good at SMTP time, this one message (the course goes on)
    BAD_ADDRESS = "bad-address"  # 5.1.x at SMTP time: no such mailbox; the address is suppressed
    HARD = "hard"  # a hard bounce reported after the server accepted it: suppressed
    SOFT = "soft"  # a soft bounce reported after acceptance: the provider may still deliver it
    SOFT_LIMIT = "soft-limit"  # the soft bounce that reached the limit: suppressed

    @classmethod
    def undelivered(cls) -> tuple[str, ...]:
        """The email did not reach the reader."""
        return (cls.REFUSED.value, cls.BAD_ADDRESS.value, cls.HARD.value)

    @classmethod
    def stopping(cls) -> tuple[str, ...]:
        """The reader's address was stopped: they left the course by bouncing."""
        return (cls.BAD_ADDRESS.value, cls.HARD.value, cls.SOFT_LIMIT.value)


class FeedbackKind(StrEnum):
    HARD_BOUNCE = "hard-bounce"  # the address does not exist or refuses us for good
    SOFT_BOUNCE = "soft-bounce"  # full mailbox, greylisting, an outage: counts toward a threshold
    COMPLAINT = "complaint"  # the reader pressed "this is spam"
    UNSUBSCRIBE = "unsubscribe"  # mail to the List-Unsubscribe mailto: address, or the provider's own link


class FeedbackNotice(Base):
    """A bounce, complaint or unsubscribe that came back after SMTP accepted the message: from a
    provider's webhook (SES, Postmark, a generic JSON form) or from a bounce mailbox (DSN, ARF).

    ``fingerprint`` makes a notice told twice (SNS retries, a mailbox read again) count once. The address
    is kept as its keyed hash only, like the suppression list, and soft bounces are counted by it.
    """

    __tablename__ = "feedback_notices"
    __table_args__ = (
        CheckConstraint(f"kind IN ({enum_values(FeedbackKind)})", name="kind"),
        Index("ix_feedback_notices_address_kind_created", "email_hash", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(20))  # ses, postmark, webhook, mailbox
    kind: Mapped[str] = mapped_column(String(20))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(Text)
    # From an authenticated provider, or returning an email we sent to that address: only then does it act
    # (course/feedback.py). An unproven notice is kept for the record and counted, never acted on.
    proven: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]
