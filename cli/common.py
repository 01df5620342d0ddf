"""What several ``course`` commands share: the one-line error, the schema guard, the driver's reason."""

from __future__ import annotations

from course.db import describe
from course.settings import Settings


class CommandError(Exception):
    """A problem the operator can fix, said in one line (the command exits 1)."""


def require_schema(settings: Settings) -> None:
    """Refuse to start a process that needs tables the database does not have yet."""
    from course.db import make_engine, schema_state

    engine = make_engine(settings.database_url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    if not state.up_to_date:
        raise CommandError(f"the database ({describe(settings.database_url)}) has {state.describe()}")


def reason(error: Exception) -> str:
    """The driver's own words, on one line: "Connection refused", "database "x" does not exist"."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(("(Background", "[SQL", "Is the server"))]
    return (meaningful or lines or [type(cause).__name__])[-1]
