"""Prometheus /metrics: the funnel and the delivery engine, read from the database at scrape time.

Counting from the database (not from counters in each process) gives the same answer from every web
process and survives restarts; the queries are a handful of GROUP BYs over indexed columns.

With METRICS_TOKEN set, a scrape must send it as a bearer token (Prometheus: ``authorization:
credentials``); in production without one, web/app.py does not serve /metrics at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from hmac import compare_digest
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from course.db import schema_state
from course.models.deliveries import Delivery, SendBatch, SendingPause
from course.models.engagement import Event, EventKind
from course.models.feedback import FeedbackNotice
from course.models.subscribers import Subscriber
from web.context import WebContext, context

router = APIRouter()
bearer = HTTPBearer(auto_error=False)  # our own answer below: the friendly page, with WWW-Authenticate


class CourseCollector(Collector):
    def __init__(self, web: WebContext) -> None:
        self.web = web

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.web.clock()
        with self.web.session() as session:
            subscribers = GaugeMetricFamily("course_subscribers", "Subscribers by status", labels=["status"])
            for status, count in session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)):
                subscribers.add_metric([status], count)
            yield subscribers

            confirmations = GaugeMetricFamily("course_confirmations", "Subscriptions confirmed (double opt-in)")
            confirmations.add_metric(
                [], session.scalar(select(func.count()).where(Event.kind == EventKind.CONFIRMED.value)) or 0
            )
            yield confirmations

            sends = GaugeMetricFamily("course_deliveries", "Deliveries by email and state", labels=["email", "state"])
            rows = session.execute(
                select(Delivery.email, Delivery.state, func.count()).group_by(Delivery.email, Delivery.state)
            )
            for email, state, count in rows:
                sends.add_metric([email, state], count)
            yield sends

            queue = GaugeMetricFamily(
                "course_send_queue", "Emails in the send queue: waiting for a worker, or with one", labels=["state"]
            )
            waiting, taken, oldest = session.execute(
                select(func.coalesce(func.sum(SendBatch.size).filter(SendBatch.taken_at.is_(None)), 0),
                       func.coalesce(func.sum(SendBatch.size).filter(SendBatch.taken_at.is_not(None)), 0),
                       func.min(SendBatch.created_at))
            ).one()  # fmt: skip
            queue.add_metric(["waiting"], waiting)
            queue.add_metric(["taken"], taken)
            yield queue
            age = GaugeMetricFamily("course_send_queue_oldest_seconds", "How long the oldest batch has been queued")
            age.add_metric([], 0 if oldest is None else max(0.0, (now - oldest).total_seconds()))
            yield age

            clicks = GaugeMetricFamily(
                "course_clicks", "Link clicks by kind, people and machines apart", labels=["kind", "who"]
            )
            rows = session.execute(
                select(Event.kind, Event.automated, func.count())
                .where(Event.kind.in_([EventKind.CLICK.value, EventKind.CONSULTATION.value, EventKind.RESOURCE.value,
                                       EventKind.EXERCISE_DONE.value, EventKind.ANSWER.value]))
                .group_by(Event.kind, Event.automated)
            )  # fmt: skip
            for kind, automated, count in rows:
                clicks.add_metric([kind, "automated" if automated else "human"], count)
            yield clicks

            feedback = GaugeMetricFamily(
                "course_feedback",
                "Bounces, complaints and unsubscribes reported after SMTP accepted the message, by source "
                "(ses, postmark, webhook, mailbox), kind, and whether it was proven (an authenticated provider, "
                "or the email we sent to that address returned): an unproven notice changes nothing",
                labels=["source", "kind", "proven"],
            )
            notices = session.execute(
                select(FeedbackNotice.source, FeedbackNotice.kind, FeedbackNotice.proven, func.count()).group_by(
                    FeedbackNotice.source, FeedbackNotice.kind, FeedbackNotice.proven
                )
            )
            for source, kind, proven, count in notices:
                feedback.add_metric([source, kind, "yes" if proven else "no"], count)
            yield feedback

            paused = GaugeMetricFamily("course_sending_paused", "1 while the provider refused us (5.7.x)")
            paused.add_metric([], 1 if session.scalar(select(func.count()).where(SendingPause.until > now)) else 0)
            yield paused


def scraper(
    web: Annotated[WebContext, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = web.settings.metrics_token
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # Bytes: compare_digest takes any header then, and its time does not depend on where they differ.
    if not compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, "These figures need the scraper's token.", headers={"WWW-Authenticate": "Bearer"})


def _database_problem(web: WebContext) -> str:
    try:
        with web.session() as session:
            state = schema_state(session.get_bind().engine)
    except OperationalError:
        return "the database is unreachable"
    return state.describe() if not state.up_to_date else "the database refused the query"


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(scraper)])
def metrics(web: Annotated[WebContext, Depends(context)]) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CourseCollector(web))
    try:
        body = generate_latest(registry)
    except (OperationalError, ProgrammingError):
        # No tables yet (started before `course db upgrade`), or the database is away: say so, plainly.
        return PlainTextResponse(f"# metrics unavailable: {_database_problem(web)}\n", status_code=503)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
