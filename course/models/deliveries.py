"""The send path's tables: the batches waiting for a worker (the send queue), each email to each
subscriber (a delivery), the pauses a mail server asked for, and the suppression list.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from course.models.base import Base, Id, enum_values, same_as_created
from course.models.subscribers import SignupRequest, Subscriber


class DeliveryState(StrEnum):
    CLAIMED = "claimed"  # waiting to be sent: a service email, a retry, one held for a sending pause
    SENDING = "sending"  # in a batch a worker has taken
    SENT = "sent"
    FAILED = "failed"  # permanently refused
    SKIPPED = "skipped"  # not sent on purpose: unsubscribed, suppressed, paused in the meantime


AHEAD = 0  # a batch's lane: handed out again, or emails a person waits for (a confirmation)
COURSE_DAYS = 1  # the claim's


class SendBatch(Base):
    """The send queue: up to SEND_BATCH_SIZE emails a worker takes and sends together. The queue is the
    database's (the broker only wakes a worker: see workers/engine.py), so a broker that loses its
    messages loses no email, and the batch, not each email, holds the lease and the worker's lock.

    Two kinds. The beat's claim of course steps (``subscriber_ids``, ``enrolments``, ``steps``,
    ``emails``, one entry per reader): these have no delivery row until they are sent, when
    one INSERT per chunk records them (the claim's subscriber update and that insert are the two row
    writes of a course email). Emails with a row of their own already (``delivery_ids``): a confirmation,
    a retry, one held through a sending pause.

    Taken in ``(lane, id)`` order: a batch handed out again after its worker died, and the emails a person
    waits for, are in the first lane (AHEAD), ahead of a morning's backlog (the claim's, COURSE_DAYS).
    """

    __tablename__ = "send_batches"
    __table_args__ = (
        CheckConstraint("(subscriber_ids IS NULL) <> (delivery_ids IS NULL)", name="one_kind"),
        # The workers' question, "what is next?", reads only this index.
        Index("ix_send_batches_waiting", "lane", "id", postgresql_where=text("taken_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str | None] = mapped_column(String(100))
    release: Mapped[str | None] = mapped_column(String(32))  # the course's release, for course steps
    subscriber_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    enrolments: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    steps: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    emails: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    delivery_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    size: Mapped[int] = mapped_column(Integer)
    lane: Mapped[int] = mapped_column(SmallInteger, default=COURSE_DAYS)
    created_at: Mapped[datetime]
    # While a worker has it: when it took it, until when it is theirs, and the key of the advisory lock
    # the worker holds for it (course/senders.py). A worker gone: handed out again at the next tick.
    taken_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sender_key: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    """One email to one subscriber. A course step is delivered at most once per time through the course:
    UNIQUE(subscriber, enrolment, step).

    A course step the beat claimed gets its row when it is sent (or skipped, failed, put off); an email
    made outside the beat (a confirmation, the welcome) has one from the start, waiting in ``claimed``.
    Confirmations have no step (NULL), so a confirmation can be sent again after an hour.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "enrolment", "step", name="uq_deliveries_subscriber_enrolment_step"),
        CheckConstraint(f"state IN ({enum_values(DeliveryState)})", name="state"),
        # The beat's question, "which deliveries of their own are due?", on the few waiting: a course
        # email's record (sent) is inserted without an entry here.
        Index("ix_deliveries_waiting", "due_at", postgresql_where=text("state = 'claimed'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Found by the unique (subscriber_id, enrolment, step) index: no index of its own (migration 0005).
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    enrolment: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    step: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(String(40))  # the template folder: "day-03", "confirmation"
    template_version: Mapped[str | None] = mapped_column(String(32))
    # A confirmation's sign-up request: its link confirms that request, its greeting is that request's name.
    signup_request_id: Mapped[int | None] = mapped_column(ForeignKey("signup_requests.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.CLAIMED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]  # not attempted before this
    # The batch that carries it while it waits or is being sent; a batch that is no more (sent, or the
    # delivery put off until later) carries nothing: the beat puts a due delivery in a new one.
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=same_as_created)

    subscriber: Mapped[Subscriber] = relationship(back_populates="deliveries")
    signup_request: Mapped[SignupRequest | None] = relationship()


class Suppression(Base):
    """Addresses not to be mailed, by a keyed hash (:func:`email_hash`) so that the list itself holds no
    address and cannot be tested against one without the key.

    ``bounce`` and ``complaint`` are for good; ``erased`` stops accidental mail to a person who deleted
    their data, and is lifted when that person signs up again and confirms.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(30))  # bounce, complaint, erased
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class SendingPause(Base):
    """Sending is paused while a row's ``until`` lies ahead: the provider refused us (5.7.x)."""

    __tablename__ = "sending_pauses"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    until: Mapped[datetime]
