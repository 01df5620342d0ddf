"""Studio accounts and the audit log: who may edit a course's emails, and what each of them did.

Passwords are hashed with argon2id (argon2-cffi, the reference implementation's binding, with its
recommended parameters). A failed sign-in costs the same whether or not the address has an account.
"""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.models import AuditEntry, StudioRole, StudioUser
from course.subscriptions import InvalidSubscription, normalise_email

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
_HASHER = PasswordHasher()
# Verified against when the address has no account, so that both answers take as long.
_NOBODY = _HASHER.hash("no account has this password")


class StudioError(ValueError):
    """A studio request that cannot be done, said in words for the person who asked."""


def add_user(
    session: Session,
    email: str,
    *,
    role: StudioRole,
    now: datetime,
    courses: str = "*",
    password: str | None = None,
) -> StudioUser:
    try:
        address = normalise_email(email)
    except InvalidSubscription:
        raise StudioError(f"not an email address: {email!r}") from None
    user = StudioUser(email=address, role=role.value, courses=courses, created_at=now, session_generation=1)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise StudioError(f"{address} already has a studio account") from None
    if password is not None:
        set_password(session, user, password)
    audit(session, None, "add-user", now=now, detail=f"{address} as {role.value}", actor_email="command line")
    return user


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StudioError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StudioError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def set_password(session: Session, user: StudioUser, password: str) -> None:
    """A new password; every session and sign-in link made before it stops working."""
    check_password(password)
    user.password_hash = _HASHER.hash(password)
    user.session_generation += 1


def authenticate(session: Session, email: str, password: str, now: datetime) -> StudioUser | None:
    try:
        address = normalise_email(email)
    except InvalidSubscription:
        address = ""
    user = session.scalar(select(StudioUser).where(StudioUser.email == address)) if address else None
    stored = user.password_hash if user is not None and user.password_hash else _NOBODY
    try:
        _HASHER.verify(stored, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.password_hash is None:
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    user.last_sign_in_at = now
    return user


def audit(
    session: Session,
    user: StudioUser | None,
    action: str,
    *,
    now: datetime,
    course_slug: str | None = None,
    item: str | None = None,
    version: int | None = None,
    detail: str | None = None,
    actor_email: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            user_id=user.id if user is not None else None,
            user_email=user.email if user is not None else (actor_email or "unknown"),
            course_slug=course_slug,
            action=action,
            item=item,
            version=version,
            detail=detail,
            created_at=now,
        )
    )
