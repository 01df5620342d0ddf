"""The studio's templates: each saved version of an email's files, the drafts, previews, and the
publications that make a release.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from course.models.base import Base, Id


class TemplateVersion(Base):
    """An immutable, numbered version of one template item of a course, made by publishing it.

    An item is what the studio edits as one: an email's folder ("welcome", "day", "day-07") or a
    shared file ("_base/footer.mjml"). ``files`` is a JSON object of the item's files by their path in
    the template set ("welcome/subject.txt": "..."). The repository's files are every item's version 0.
    """

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("course_slug", "item", "number", name="uq_template_versions_course_item_number"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    files: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class TemplateDraft(Base):
    """The studio's work in progress on one item: saved, checked, not yet sent to anyone.

    ``revision`` counts the saves: a save must name the revision it started from, so that two people
    editing one item never silently overwrite each other (the second is refused and shown the first's).
    """

    __tablename__ = "template_drafts"
    __table_args__ = (UniqueConstraint("course_slug", "item", name="uq_template_drafts_course_item"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    files: Mapped[str] = mapped_column(Text)
    based_on: Mapped[int] = mapped_column(Integer)  # the live version number the draft started from
    revision: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime]
    # What the check of this revision found (JSON: a list of problems, empty when every email renders; none:
    # not checked yet), so that the editor says it on the page a save redirects to.
    checked: Mapped[str | None] = mapped_column(Text)


class TemplatePreview(Base):
    """One rendering of unsaved studio text, kept a short while so that the preview's frames can load it
    from whichever web process answers (it is rendered once, in the bounded child)."""

    __tablename__ = "template_previews"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("studio_users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    preview: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class TemplatePublication(Base):
    """What is live, as a history: every publish and roll-back of an item, in order.

    The latest row of an item says which of its versions is sent (none: the repository's files). The
    id of a course's latest row is its *release*: a delivery records the release it was claimed under,
    and is rendered with exactly the templates of that release.
    """

    __tablename__ = "template_publications"
    __table_args__ = (Index("ix_template_publications_course_item", "course_slug", "item", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("template_versions.id"))
    action: Mapped[str] = mapped_column(String(20))  # publish, roll-back
    author: Mapped[str | None] = mapped_column(String(320))
    note: Mapped[str] = mapped_column(Text, default="")
    # What each email of the course said once this was live: a JSON object of a digest per email (of its
    # subject, preview, text and HTML for sample readers: emails/store.py), and the JSON list of the
    # emails this publication changed. None: published before these were kept (taken to change them all).
    contents: Mapped[str | None] = mapped_column(Text)
    changed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    version: Mapped[TemplateVersion | None] = relationship()
