"""Studio accounts and the audit log: who may edit a course's emails, and what each of them did.

Passwords are hashed with argon2id (argon2-cffi, the reference implementation's binding, with its
recommended parameters). A failed sign-in costs the same whether or not the address has an account.

Sessions live on the server (:class:`~course.models.StudioSession`): the browser's cookie holds a random
token, the database its SHA-256. A session ends when its person signs out, changes their password (every
other session of theirs), when the password is reset or the account disabled from the command line
(every session), after ``SESSION_LIFETIME`` from its sign-in whatever happens, and after
``SESSION_IDLE`` without a request. Each of these is written to the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.models.studio import AuditEntry, StudioRole, StudioSession, StudioUser
from course.subscriptions import InvalidSubscription, normalise_email

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
_HASHER = PasswordHasher()
# Verified against when the address has no account, so that both answers take as long.
_NOBODY = _HASHER.hash("no account has this password")
# A session lasts a working day from its sign-in, however busy, and ends sooner when left alone.
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
# Writing ``last_seen_at`` on every request would cost a write per page: once a minute is enough.
_SEEN_EVERY = timedelta(minutes=1)


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


def find_user(session: Session, email: str) -> StudioUser | None:
    try:
        address = normalise_email(email)
    except InvalidSubscription:
        return None
    return session.scalar(select(StudioUser).where(StudioUser.email == address))


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
    if user is None or user.password_hash is None or user.disabled_at is not None:
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


# --- Sessions ------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(session: Session, user: StudioUser, now: datetime) -> str:
    """A new session for ``user``; the token for their cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(StudioSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                              expires_at=now + SESSION_LIFETIME))  # fmt: skip
    return token


def session_user(session: Session, token: str, now: datetime) -> StudioUser | None:
    """The person whose live session this token is, or None (ended, expired, idle, unknown, disabled)."""
    found = session.scalar(select(StudioSession).where(StudioSession.token_hash == _token_hash(token)))
    if found is None or found.ended_at is not None:
        return None
    if now >= found.expires_at or now - found.last_seen_at >= SESSION_IDLE:
        found.ended_at, found.ended_why = now, "expired" if now >= found.expires_at else "idle"
        return None
    user = session.get(StudioUser, found.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if now - found.last_seen_at >= _SEEN_EVERY:
        found.last_seen_at = now
    return user


def end_sessions(
    session: Session, user: StudioUser, now: datetime, why: str, *, keep: str | None = None, only: str | None = None
) -> int:
    """End ``user``'s live sessions (all of them, all but ``keep``, or ``only`` that one); how many ended."""
    where = [StudioSession.user_id == user.id, StudioSession.ended_at.is_(None)]
    if keep is not None:
        where.append(StudioSession.token_hash != _token_hash(keep))
    if only is not None:
        where.append(StudioSession.token_hash == _token_hash(only))
    ended = session.execute(
        update(StudioSession).where(*where).values(ended_at=now, ended_why=why).returning(StudioSession.id)
    )
    return len(ended.all())


def change_password(session: Session, user: StudioUser, current: str, new: str, now: datetime, *, keep: str) -> int:
    """The person's own new password, with their current one: every other session of theirs ends (the one
    that asked, ``keep``, goes on). StudioError says what is wrong. Returns how many sessions ended."""
    stored = user.password_hash or _NOBODY
    try:
        _HASHER.verify(stored, current[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        raise StudioError("that is not your current password") from None
    if new == current:
        raise StudioError("the new password is the one you have")
    set_password(session, user, new)
    ended = end_sessions(session, user, now, "password-change", keep=keep)
    audit(session, user, "password-change", now=now, detail=f"{ended} other sessions ended")
    return ended


def reset_password(session: Session, email: str, now: datetime) -> StudioUser:
    """From the command line: the password is gone, every session ends, and only a new one-time link
    (made with the account's new session generation) lets its person in again."""
    user = find_user(session, email)
    if user is None:
        raise StudioError(f"no studio account for {email!r}")
    user.password_hash = None
    user.session_generation += 1
    ended = end_sessions(session, user, now, "password-reset")
    audit(session, None, "reset-password", now=now, detail=f"{user.email}: {ended} sessions ended",
          actor_email="command line")  # fmt: skip
    return user


def set_disabled(session: Session, email: str, now: datetime, *, disabled: bool) -> StudioUser:
    """From the command line: no sign-in and every session ended, or the account back (with its password)."""
    user = find_user(session, email)
    if user is None:
        raise StudioError(f"no studio account for {email!r}")
    if disabled:
        user.disabled_at = user.disabled_at or now
        user.session_generation += 1  # its one-time sign-in links too
        ended = end_sessions(session, user, now, "disabled")
        audit(session, None, "disable-user", now=now, detail=f"{user.email}: {ended} sessions ended",
              actor_email="command line")  # fmt: skip
    else:
        user.disabled_at = None
        audit(session, None, "enable-user", now=now, detail=user.email, actor_email="command line")
    return user
