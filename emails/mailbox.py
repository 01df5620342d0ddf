"""The bounce mailbox, read over IMAP: where bounces, feedback-loop complaints and mail to the
``mailto:`` unsubscribe address arrive when no provider webhook tells us.

``imaps://user:password@host:993/INBOX`` (TLS from the start), ``imap+starttls://...:143/INBOX``, or
``imap://`` (no TLS: a server on this machine only). The folder defaults to INBOX.

Each unseen message is handed to the caller and flagged ``\\Seen`` only once the caller has kept what
it says (committed), so a crash in between reads it again (the notice's fingerprint makes that
harmless). A message that is not a report is flagged ``\\Flagged`` as well, for a person to look at.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = {"imaps": 993, "imap+starttls": 143, "imap": 143}


class MailboxError(Exception):
    """The mailbox cannot be read: a bad URL, refused credentials, no such folder, a server gone."""


@dataclass(frozen=True)
class MailboxUrl:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> MailboxUrl:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise MailboxError(f"not a mailbox URL: {error}") from None
        if parts.scheme not in SCHEMES:
            raise MailboxError("use imaps://user:password@host/FOLDER, imap+starttls://... or imap://...")
        if not parts.hostname or parts.username is None or parts.password is None:
            raise MailboxError("the mailbox URL needs a user, a password and a host: imaps://user:password@host/")
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], unquote(parts.username),
                   unquote(parts.password), folder)  # fmt: skip

    def __str__(self) -> str:  # never the password, in a log or an error
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


@dataclass(frozen=True)
class Unseen:
    uid: bytes
    raw: bytes


class Mailbox:
    def __init__(self, client: imaplib.IMAP4) -> None:
        self._client = client

    def unseen(self, limit: int = 500) -> Iterator[Unseen]:
        status, data = self._client.uid("SEARCH", "UNSEEN")
        _check(status, data, "SEARCH")
        for uid in (data[0] or b"").split()[:limit]:
            # BODY.PEEK: reading does not set \Seen; done() does, once the caller has kept what it says.
            status, fetched = self._client.uid("FETCH", uid, "(BODY.PEEK[])")  # type: ignore[arg-type]
            _check(status, fetched, "FETCH")
            raw = next((item[1] for item in fetched if isinstance(item, tuple) and len(item) > 1), None)
            if isinstance(raw, bytes):
                yield Unseen(uid, raw)

    def done(self, uid: bytes, *, understood: bool) -> None:
        flags = r"(\Seen)" if understood else r"(\Seen \Flagged)"
        status, data = self._client.uid("STORE", uid, "+FLAGS", flags)  # type: ignore[arg-type]
        _check(status, data, "STORE")


@contextmanager
def open_mailbox(url: MailboxUrl, timeout: float = 30.0) -> Iterator[Mailbox]:
    try:
        client: imaplib.IMAP4
        if url.scheme == "imaps":
            client = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=ssl.create_default_context(), timeout=timeout)
        else:
            client = imaplib.IMAP4(url.host, url.port, timeout=timeout)
            if url.scheme == "imap+starttls":
                client.starttls(ssl.create_default_context())
        client.login(url.user, url.password)
        status, data = client.select(_quoted(url.folder))
        _check(status, data, f"SELECT {url.folder}")
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(f"{url}: {error}") from None
    try:
        yield Mailbox(client)
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(f"{url}: {error}") from None
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(status: str, data: Sequence[object], what: str) -> None:
    if status != "OK":
        said = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
        raise MailboxError(f"the IMAP server refused {what}: {said or status}")
