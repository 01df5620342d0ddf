"""The insights' sums: figures per sign-up week (cohort), and when each cohort was last summed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base


class InsightCount(Base):
    """The course's figures, summed per sign-up week (cohort) by course/insights.py: how many did
    ``measure`` at ``step`` (-1: not a step's) with the email's ``version`` ('' none) and ``key`` (a
    checklist band, a movement between bands; '' none). Every figure is a count of things that belong to
    one cohort, so any set of cohorts is a sum of rows, whatever the size of the tables behind them."""

    __tablename__ = "insight_counts"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)  # the Monday of the sign-up week (UTC)
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class InsightCohort(Base):
    """When each cohort's figures were last summed."""

    __tablename__ = "insight_cohorts"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)
    refreshed_at: Mapped[datetime]
