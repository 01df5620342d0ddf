"""The database's tables, one module per room: subscribers, deliveries, engagement, feedback, the studio, its
templates, the insights. Importing any of them imports them all, so that every table is in
``Base.metadata`` (what Alembic compares) and every relationship finds its other side.

Every timestamp is stored and returned as an aware UTC datetime.
No column takes the time of its own accord: whoever writes a row says when, by the clock it was given
(course/clock.py in production, the tests' own clock in tests), so that two clocks never meet in one
figure. A row written without its ``created_at`` is an error, not this machine's wall clock.
"""

from course.models import (  # noqa: F401 - every table registered with the metadata
    base,
    courses,
    deliveries,
    engagement,
    feedback,
    imports,
    insights,
    media,
    studio,
    subscribers,
    templates,
)
