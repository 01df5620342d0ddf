"""The studio's audience: who is on a course (course/audience.py finds them), searched, filtered and
sorted, a page at a time. Editors see the courses their account may edit, and nothing of the others.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from course.audience import MAX_SEARCH, NOT_STARTED, BadCursor, Filters, Order, page
from course.curriculum import Course
from course.deliveries.suppressions import suppression_reason
from course.insights.reading import step_label
from course.models.subscribers import SubscriberStatus
from course.subscriptions import InvalidSubscription, normalise_email
from web.studio.auth import Scoped, User, Web, studio_page

router = APIRouter(prefix="/studio")

# Each status as the list names it, in the order a person meets them.
STATUSES = {
    SubscriberStatus.PENDING: "Waiting for confirmation", SubscriberStatus.ACTIVE: "Active",
    SubscriberStatus.PAUSED: "Paused", SubscriberStatus.COMPLETED: "Completed",
    SubscriberStatus.UNSUBSCRIBED: "Unsubscribed", SubscriberStatus.BOUNCED: "Bounced",
    SubscriberStatus.COMPLAINED: "Complained",
}  # fmt: skip
ERASED = "erased"  # a filter of its own: an erased person leaves no row, only a keyed hash of the address
NOT_STARTED_VALUE = "none"
# Why an address is on the suppression list, as the list says it.
SUPPRESSED = {
    "bounce": "its mail server said it does not exist (a hard bounce); nothing is sent to it again",
    "complaint": "its owner marked an email as spam; nothing is sent to it again",
    "erased": "its owner erased their data; nothing is sent to it unless they sign up again and confirm",
}


def _status(value: str) -> SubscriberStatus | None:
    if value in ("", ERASED):
        return None
    try:
        return SubscriberStatus(value)
    except ValueError:
        raise HTTPException(400, "There is no such status: choose one from the list.") from None


@router.get("/subscribers", response_class=HTMLResponse)
def subscriber_list(
    request: Request,
    web: Web,
    user: User,
    scope: Scoped,
    q: Annotated[str, Query(max_length=MAX_SEARCH)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    place: Annotated[str, Query(max_length=10)] = "",
    order: Annotated[str, Query(max_length=20)] = Order.SIGNUP.value,
    oldest: Annotated[bool, Query()] = False,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    steps = {str(step.number): step_label(scope.base, step.number) for step in scope.base.steps}
    if place not in ("", NOT_STARTED_VALUE, *steps):
        raise HTTPException(400, "There is no such email in this course: choose one from the list.")
    try:
        chosen_order = Order(order)
    except ValueError:
        raise HTTPException(400, "The list sorts by sign-up or by last email.") from None
    filters = Filters(
        search=q, status=_status(status), order=chosen_order, newest_first=not oldest,
        place=None if not place else NOT_STARTED if place == NOT_STARTED_VALUE else int(place),
    )  # fmt: skip
    suppressed = None
    with web.session() as session:
        try:
            found = None if status == ERASED else page(session, scope.slug, filters, after)
        except BadCursor:
            raise HTTPException(
                400, "This page's link is not one the list made: start again from the first page."
            ) from None
        address = _address(q)
        if address is not None:
            reason = suppression_reason(session, address, web.settings.address_key)
            suppressed = SUPPRESSED.get(reason or "")
    chosen = {"course": scope.slug, "q": q, "status": status, "place": place, "order": chosen_order.value}
    if oldest:
        chosen["oldest"] = "true"
    next_url = f"/studio/subscribers?{urlencode({**chosen, 'after': found.after})}" if found and found.after else None
    return studio_page(
        web, request, "subscribers.html", user=user, found=found, chosen=chosen, statuses=STATUSES, erased=ERASED,
        steps=steps, not_started=NOT_STARTED_VALUE, step_label=lambda number: email_label(scope.base, number),
        next_url=next_url, first_url=f"/studio/subscribers?{urlencode(chosen)}" if after else None,
        address=address, suppressed=suppressed, oldest=oldest, orders={o.value: o for o in Order},
    )  # fmt: skip


def email_label(course: Course, number: int) -> str:
    """An email as the studio names it ("Day 5"), or what it was, for an email since taken out."""
    return step_label(course, number) if course.has_step(number) else "an email since taken out"


def _address(search: str) -> str | None:
    """The search as an address, when it is one (to say whether it is suppressed); None otherwise."""
    if "@" not in search:
        return None
    try:
        return normalise_email(search)
    except InvalidSubscription:
        return None
