"""The subscriber's own data: everything we hold about them to download, and its erasure."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from course.deliveries.suppressions import suppress
from course.lifecycle import SuppressionReason
from course.models.deliveries import Delivery
from course.models.engagement import Answer, Event
from course.models.subscribers import SignupRequest, Subscriber


def export(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything we hold about one subscriber, as JSON-ready data (the "download my data" button)."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    deliveries = session.scalars(
        select(Delivery).where(Delivery.subscriber_id == subscriber.id).order_by(Delivery.id)
    ).all()
    answers = session.scalars(select(Answer).where(Answer.subscriber_id == subscriber.id).order_by(Answer.id)).all()
    events = session.scalars(select(Event).where(Event.subscriber_id == subscriber.id).order_by(Event.id)).all()
    requests = session.scalars(
        select(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id).order_by(SignupRequest.id)
    ).all()
    return {
        "profile": {
            "email": subscriber.email,
            "first_name": subscriber.first_name,
            "course": subscriber.course_slug,
            "status": subscriber.status,
            "timezone": subscriber.timezone,
            "send_time": subscriber.send_time.strftime("%H:%M"),
            "times_through_the_course": subscriber.enrolment,
            "last_step_sent": subscriber.current_step,
            "signed_up_at": when(subscriber.created_at),
            "confirmed_at": when(subscriber.confirmed_at),
            "unsubscribed_at": when(subscriber.unsubscribed_at),
            "completed_at": when(subscriber.completed_at),
        },
        "consents": [
            {
                "at": when(subscriber.consent_at),
                "ip": subscriber.consent_ip,
                "user_agent": subscriber.consent_user_agent,
                "form": subscriber.consent_form,
            }
        ],
        "sign_up_requests": [
            {
                "at": when(r.created_at),
                "first_name": r.first_name,
                "timezone": r.timezone,
                "send_time": r.send_time.strftime("%H:%M"),
                "ip": r.consent_ip,
                "user_agent": r.consent_user_agent,
                "form": r.consent_form,
                "confirmed_at": when(r.confirmed_at),
            }
            for r in requests
        ],
        "deliveries": [
            {
                "email": d.email,
                "step": d.step,
                "enrolment": d.enrolment,
                "state": d.state,
                "sent_at": when(d.sent_at),
                "message_id": d.message_id,
            }
            for d in deliveries
        ],
        "answers": [
            {
                "step": a.step,
                "enrolment": a.enrolment,
                "checklist": a.checklist,
                "band": a.band,
                "score": a.score,
                "items": a.items,
                "at": when(a.created_at),
            }
            for a in answers
        ],
        "clicks": [
            {
                "kind": e.kind,
                "step": e.step,
                "value": e.value,
                "at": when(e.created_at),
                "automated": e.automated,
                "user_agent": e.user_agent,
            }
            for e in events
        ],
    }


def export_json(session: Session, subscriber: Subscriber) -> str:
    return json.dumps(export(session, subscriber), indent=2, ensure_ascii=False)


def erase(session: Session, subscriber: Subscriber, now: datetime, address_key: bytes) -> None:
    """Delete every personal record; keep only a keyed hash of the address on the suppression list, so
    that nothing is mailed to it by accident. Signing up again and confirming lifts it."""
    suppress(session, subscriber.email, address_key, SuppressionReason.ERASED, None, now)
    session.execute(delete(Answer).where(Answer.subscriber_id == subscriber.id))
    session.execute(delete(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id))
    session.execute(delete(Event).where(Event.subscriber_id == subscriber.id))
    session.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber.id))
    session.delete(subscriber)
