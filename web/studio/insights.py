"""The studio's insights: is the course working, and did a change help? (course/insights.py sums the figures.)

The page, its charts and tables read the sums for the chosen cohorts; every table downloads as CSV,
and so do the raw events of a period, and the people behind any number of the page (each number links
to them; addresses only for publishers, and their downloads are in the audit log). "Sum these weeks
again now" sums the chosen cohorts (or the one chosen week) at once instead of waiting for the beat.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from course.insights import measures, reading, summing
from course.insights.measures import MEASURES, Selection
from course.insights.reading import Changes, Figure, Insights, step_label
from course.models.engagement import Event
from course.models.insights import InsightCount
from course.models.subscribers import Subscriber
from course.studio import audit
from web.context import WebContext
from web.spreadsheet import SafeWriter
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page, within_limit
from web.studio.charts import Series, bar_chart, line_chart, stacked_bars

router = APIRouter(prefix="/studio")
TABLES = ("funnel", "days", "versions", "links", "retention", "answers")
# The retention chart draws the newest cohorts of the selection (the table has them all).
CHART_COHORTS = 6


# The dates a period may start or end on: wide enough for any course, narrow enough that a week or a
# day after it is still a date.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)


def _date(text: str | None) -> date | None:
    try:
        found = date.fromisoformat(text) if text else None
    except ValueError:
        return None  # a hand-made address: the page's own choice instead
    if found is not None and not FIRST_DATE <= found <= LAST_DATE:
        raise HTTPException(400, f"Choose a date from {FIRST_DATE.year} to {LAST_DATE.year}, not {found.isoformat()}.")
    return found


def _read(web: WebContext, scope: Scope, since: str | None, until: str | None, cohort: str | None) -> Insights:
    """The figures of the weeks chosen; what the form leaves out, every week there is."""
    with web.session() as session:
        known = reading.cohorts_known(session, scope.base)
        selection = reading.selection_of(known[0], _date(since), _date(until), _date(cohort), web.clock().date())
        return reading.read(session, scope.base, selection, known)


@router.get("/insights", response_class=HTMLResponse)
def insights_page(
    request: Request, web: Web, user: User, scope: Scoped, since: str | None = None, until: str | None = None,
    cohort: str | None = None, day: str = "1",
) -> Response:  # fmt: skip
    figures = _read(web, scope, since, until, cohort)
    steps = [step.number for step in scope.base.steps]
    # A hand-made address: day 1. (ASCII digits only: "₀₁₂" is digits to str.isdigit, not to int.)
    chosen = int(day) if day.isascii() and day.isdigit() and len(day) <= 3 and int(day) in steps else 1
    query = _query(figures.selection)

    def people_url(figure: Figure) -> str:
        """Where the people behind a number are listed (web/studio/audience.py, filtered to them)."""
        asked: dict[str, object] = {"course": scope.slug, "figure": figure.measure, "figure_step": figure.step}
        if figure.key is not None:
            asked["key"] = figure.key
        if figure.version is not None:
            asked["version"] = figure.version
        return f"/studio/subscribers?{urlencode(asked)}&{query}"

    return studio_page(
        web, request, "insights.html", user=user, figures=figures, day=chosen, query=query, people_url=people_url,
        figure=Figure,
        step_labels={step: step_label(scope.base, step) for step in steps}, charts=_charts(figures),
        weeks=_weeks(figures), events_until=figures.selection.last + timedelta(days=6),
    )  # fmt: skip


def _weeks(figures: Insights) -> list[date]:
    """The weeks the period can start and end on: every cohort with figures, and the ones chosen."""
    chosen = {figures.selection.since, figures.selection.until}
    return sorted(set(figures.cohorts) | chosen, reverse=True)


def _query(selection: Selection) -> str:
    parts = [f"since={selection.since.isoformat()}", f"until={selection.until.isoformat()}"]
    if selection.cohort:
        parts.append(f"cohort={selection.cohort.isoformat()}")
    return "&".join(parts)


def _charts(figures: Insights) -> dict[str, Any]:
    course = figures.course
    last = course.steps[-1].number
    short = ["start" if step.number == 0 else "end" if step.number == last else str(step.day_number)
             for step in course.steps]  # fmt: skip
    newest = list(figures.retention.items())[-CHART_COHORTS:]
    charts: dict[str, Any] = {
        "retention": line_chart(
            "retention", "Retention by day, a line per sign-up week",
            "The share of each week's subscribers whom each day's email reached, of those the welcome reached.",
            short, [Series(f"Week of {cohort:%d %b}", [rate.share if rate else None for rate in rates])
                    for cohort, rates in newest],
        ),
        "days": bar_chart(
            "days", "Each day: reached, acted on it, did the exercise",
            "For each email, how many people it reached, how many acted on it, and how many marked the exercise done.",
            [day.label for day in figures.days],
            [Series("Reached", [day.delivered for day in figures.days]),
             Series("Acted on it", [day.engaged for day in figures.days]),
             Series("Did the exercise", [day.exercise for day in figures.days])],
        ),
        "funnel": bar_chart(
            "funnel", "The funnel", "How many times through the course reached each stage.",
            [stage.label for stage in figures.funnel],
            [Series("Times through", [stage.count for stage in figures.funnel])],
        ),
    }  # fmt: skip
    if figures.answers is not None:
        answers = figures.answers
        charts["answers"] = stacked_bars(
            "answers", f"{answers.checklist.title}: at the start and at the end",
            "The share of people in each band when they answered at the start of the course and at its end.",
            ["At the start", "At the end"],
            [Series(start.label, [start.count, end.count]) for start, end in zip(answers.baseline, answers.retake,
                                                                                  strict=True)],
        )  # fmt: skip
    return charts


@router.post("/insights/refresh")
def refresh_now(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    since: Annotated[str, Form(max_length=20)] = "", until: Annotated[str, Form(max_length=20)] = "",
    cohort: Annotated[str, Form(max_length=20)] = "",
) -> Response:  # fmt: skip
    """Sum the chosen weeks (or week) again now: the beat does it every few minutes for the weeks still in
    the course, and every week once a day. A year of weeks at a million subscribers takes minutes."""
    check_csrf(request, csrf)
    if not within_limit(web, user, "insights-refresh"):
        return studio_page(web, request, "refused.html", status_code=429, user=user, title="Not summed yet",
                           message="The figures were summed several times in the last minutes, and each sum reads "
                                   "every event of those weeks: try again in a few minutes (the beat sums them "
                                   "every few minutes anyway).")  # fmt: skip
    now = web.clock()
    first, last, week = _date(since), _date(until), _date(cohort)
    with web.session() as session:
        # The chosen week alone when one is chosen, else the period; the page comes back to the same choice.
        summing.refresh(session, scope.base, now, since=week or first, until=week or last)
        audit(session, user, "insights-refresh", now=now, course_slug=scope.slug)
        session.commit()
    back = [f"course={scope.slug}"] + [
        f"{name}={value.isoformat()}"
        for name, value in (("since", first), ("until", last), ("cohort", week))
        if value is not None
    ]
    return RedirectResponse("/studio/insights?" + "&".join(back), status_code=303)


# --- CSV -----------------------------------------------------------------------------------------


def _csv(name: str, header: list[str], rows: list[list[Any]]) -> Response:
    writer = SafeWriter()
    writer.row(header)
    writer.rows(rows)
    return Response(writer.take(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip


def _share(rate: reading.Rate | None) -> str:
    return "" if rate is None or rate.share is None else f"{rate.share:.4f}"


DAY_HEADER = ["sent", "reached", "hard_bounced_or_refused", "hard_bounce_rate_of_sent", "soft_bounced",
              "soft_bounce_rate_of_sent", "complaints", "complaint_rate", "exercise_done", "exercise_rate",
              "acted_on_it", "acted_on_it_rate", "clicked_consultation_link", "clicked_a_guide", "scanner_clicks",
              "unsubscribed_after", "unsubscribe_rate", "left_after", "left_rate", "paused_after"]  # fmt: skip


def day_values(day: reading.DayRow) -> list[Any]:
    """A day's figures in the order of DAY_HEADER (rates of the emails that reached them, unless said)."""
    return [day.sent, day.delivered, day.failed, _share(day.rate(day.failed, "sent")), day.soft_bounced,
            _share(day.rate(day.soft_bounced, "sent")), day.complained, _share(day.rate(day.complained)),
            "" if day.exercise is None else day.exercise, _share(day.exercise_rate), day.engaged,
            _share(day.engaged_rate), day.consultation, day.resource, day.scanner_clicks, day.unsubscribed,
            _share(day.rate(day.unsubscribed)), day.left, _share(day.rate(day.left)), day.paused]  # fmt: skip


def table_rows(figures: Insights, table: str) -> tuple[list[str], list[list[Any]]]:
    """One of the page's tables as a header and rows (for CSV)."""
    course = figures.course
    if table == "funnel":
        return ["stage", "times_through", "share_of_begun"], [
            [stage.label, stage.count, _share(stage.rate)] for stage in figures.funnel
        ]
    if table == "days":
        return ["email", *DAY_HEADER], [[day.label, *day_values(day)] for day in figures.days]
    if table == "versions":
        rows = [[step_label(course, step), row.version, row.label, *day_values(row.day), row.judged_by,
                 row.rate.count, row.rate.of, _share(row.rate), row.verdict]
                for step, versions in figures.versions.items() for row in versions]  # fmt: skip
        return ["email", "version", "change", *DAY_HEADER, "judged_by", "judged_count", "judged_of", "judged_rate",
                "note"], rows  # fmt: skip
    if table == "links":
        rows = [[step_label(course, step), link.label, link.key, link.people, link.clicks, link.scanner_clicks]
                for step, links in figures.links.items() for link in links]  # fmt: skip
        return ["email", "link", "link_key", "people_who_clicked", "their_clicks", "scanner_clicks"], rows
    if table == "retention":
        labels = [step_label(course, step.number) for step in course.steps]
        return ["cohort_week", *labels], [[cohort.isoformat(), *(_share(rate) for rate in rates)]
                                          for cohort, rates in figures.retention.items()]  # fmt: skip
    answers = figures.answers
    rows = []
    if answers is not None:
        rows += [["start", band.label, band.count, _share(band.share)] for band in answers.baseline]
        rows += [["end", band.label, band.count, _share(band.share)] for band in answers.retake]
        rows += [["moved", f"{m.before} to {m.after}", m.count, ""] for m in answers.movement]
        rows += [["clicked to book a consultation", band.label, band.count, _share(band.share)]
                 for band in answers.booked]  # fmt: skip
    for step, bands in figures.checklists.items():
        rows += [[step_label(course, step), band.label, band.count, _share(band.share)] for band in bands]
    return ["when", "band", "times_through", "share"], rows


@router.get("/insights.csv")
def insights_csv(
    web: Web, user: User, scope: Scoped, table: str = "days", since: str | None = None, until: str | None = None,
    cohort: str | None = None,
) -> Response:  # fmt: skip
    if table not in TABLES:
        return Response(f"No table {table!r}: one of {', '.join(TABLES)}.", status_code=404, media_type="text/plain")
    figures = _read(web, scope, since, until, cohort)
    header, rows = table_rows(figures, table)
    return _csv(f"insights-{table}-{figures.selection.first}-{figures.selection.last}", header, rows)


@router.get("/insights/events.csv")
def events_csv(web: Web, user: User, scope: Scoped, since: str | None = None, until: str | None = None) -> Response:
    """Every event of the course's subscribers from ``since`` to ``until`` (dates, inclusive; default the
    last 7 days), streamed. Addresses only for publishers."""
    last = _date(until) or web.clock().date()
    first = _date(since) or last - timedelta(days=6)
    start = datetime(first.year, first.month, first.day, tzinfo=web.clock().tzinfo)
    end = datetime(last.year, last.month, last.day, tzinfo=web.clock().tzinfo) + timedelta(days=1)
    with_addresses = user.may_publish
    header = ["event_id", "at", "kind", "subscriber_id", *(["email"] if with_addresses else []), "enrolment", "step",
              "value", "automated", "seconds_since_delivery"]  # fmt: skip

    def rows() -> Iterator[str]:
        writer = SafeWriter()
        writer.row(header)
        with web.session() as session:
            found = session.execute(
                select(Event.id, Event.created_at, Event.kind, Event.subscriber_id, Subscriber.email, Event.enrolment,
                       Event.step, Event.value, Event.automated, Event.seconds_since_delivery)
                .join(Subscriber, Subscriber.id == Event.subscriber_id)
                .where(Subscriber.course_slug == scope.slug, Event.created_at >= start, Event.created_at < end)
                .order_by(Event.id)
                .execution_options(yield_per=2000)
            )  # fmt: skip
            for event_id, at, kind, subscriber_id, email, enrolment, step, value, automated, seconds in found:
                writer.row([event_id, at.isoformat(), kind, subscriber_id, *([email] if with_addresses else []),
                            enrolment, step, value, "yes" if automated else "no",
                            "" if seconds is None else f"{seconds:.1f}"])  # fmt: skip
                if writer.size() > 64_000:
                    yield writer.take()
        yield writer.take()

    name = f"events-{first.isoformat()}-{last.isoformat()}.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def figure_releases(session: Session, scope: Scope, figure: Figure) -> list[str] | None:
    """The releases a figure of one version of an email counts (None: every release)."""
    if figure.version is None:
        return None
    known = session.scalars(
        select(InsightCount.version).distinct().where(
            InsightCount.course_slug == scope.slug, InsightCount.step == figure.step
        )
    ).all()  # fmt: skip
    email = scope.base.step(figure.step).email
    return list(Changes.of(session, scope.base).releases(email, figure.version, known))


def checked_figure(scope: Scope, measure: str, step: int, version: str | None, key: str | None) -> Figure | None:
    """A figure of the page as a link names it; None for one the page has not."""
    if measure not in MEASURES or len(key or "") > 120 or (version is not None and len(version) > 40):
        return None
    if step != measures.NONE and step not in {course_step.number for course_step in scope.base.steps}:
        return None
    return Figure(measure, step, version, key)


def figure_people(
    session: Session, web: WebContext, scope: Scope, figure: Figure, since: str | None, until: str | None,
    cohort: str | None,
) -> tuple[Select[Any], Selection]:  # fmt: skip
    """The statement of the people behind ``figure`` in the weeks chosen (course/insights/summing.py
    ``people_query``), and those weeks."""
    known = reading.cohorts_known(session, scope.base)
    selection = reading.selection_of(known[0], _date(since), _date(until), _date(cohort), web.clock().date())
    releases = figure_releases(session, scope, figure)
    query = summing.people_query(scope.base, selection, figure.measure, figure.step, releases, figure.key)
    return query, selection


@router.get("/insights/people.csv")
def people_csv(
    web: Web, user: User, scope: Scoped, measure: str, step: int = measures.NONE, version: str | None = None,
    key: str | None = None,
    since: str | None = None, until: str | None = None, cohort: str | None = None,
) -> Response:  # fmt: skip
    """The people behind one number of the page: the very rows its sum counted (course/insights.py
    ``people``), for the chosen weeks. Addresses only for publishers, and their downloads are logged."""
    checked = checked_figure(scope, measure, step, version, key)
    if checked is None:
        return Response("No such figure.", status_code=404, media_type="text/plain")
    with web.session() as session:
        known = reading.cohorts_known(session, scope.base)
        selection = reading.selection_of(known[0], _date(since), _date(until), _date(cohort), web.clock().date())
    with_addresses = user.may_publish
    figure = checked
    name = f"people-{measure}-{'all' if step == measures.NONE else step}-{selection.first}-{selection.last}"

    def rows() -> Iterator[str]:
        writer = SafeWriter()
        writer.row(["subscriber_id", *(["email"] if with_addresses else []), "time_through", "counted"])
        listed = 0
        with web.session() as session:
            releases = figure_releases(session, scope, figure)
            found = summing.people(session, scope.base, selection, figure.measure, figure.step, releases, figure.key)
            for behind in found:
                listed += 1
                writer.row([behind.subscriber_id, *([behind.email] if with_addresses else []),
                            "" if behind.enrolment is None else behind.enrolment, behind.n])  # fmt: skip
                if writer.size() > 64_000:
                    yield writer.take()
            if with_addresses:
                audit(session, user, "insights-people", now=web.clock(), course_slug=scope.slug,
                      detail=f"{name}.csv: {listed} rows with addresses")  # fmt: skip
                session.commit()
        yield writer.take()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
