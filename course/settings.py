"""One typed settings object, read from the environment and validated once at start-up.

A bad value stops the process with a message that names the variable; so does the development secret
outside development, because a known secret lets anyone forge unsubscribe and answer links.
"""

from __future__ import annotations

import functools
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal

from pydantic import Field, HttpUrl, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "development-secret-key-do-not-use-in-production"  # noqa: S105 - refused outside development


class SettingsError(SystemExit):
    """Raised (and so exits) when the environment holds a value we cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    base_url: HttpUrl = HttpUrl("http://127.0.0.1:8000")
    secret_key: str = Field(DEVELOPMENT_SECRET_KEY, min_length=32)
    # "Name <address>"; the address's domain is the sending domain (Message-ID, List-Id).
    mail_from: str = "South Denver Therapy <course@localhost.localdomain>"
    # Where a subscriber's reply goes: a person at the practice, not a no-reply box.
    mail_reply_to: str | None = None
    # Address for the mailto: form of List-Unsubscribe; defaults to unsubscribe@<sending domain>.
    mail_unsubscribe: str | None = None
    consultation_url: HttpUrl = HttpUrl("https://www.southdenvertherapy.com/free-consultation")
    # Overrides for the course's resource links: a JSON object {"attachment-style-quiz": "https://..."}.
    resource_urls: dict[str, HttpUrl] = {}
    # The footer's postal address (CAN-SPAM and the practice's identity). Required outside development.
    practice_postal_address: str = "Castle Rock, Colorado"
    course_slug: str = "building-emotional-intimacy"

    @field_validator("mail_from", "mail_reply_to", "mail_unsubscribe")
    @classmethod
    def _is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, address = parseaddr(value)
        if "@" not in address or any(char in value for char in "\r\n\0"):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_trailing_path_slash(cls, value: HttpUrl) -> HttpUrl:
        if value.query or value.fragment:
            raise ValueError("BASE_URL takes no query or fragment")
        return value

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEVELOPMENT_SECRET_KEY:
                raise ValueError("SECRET_KEY must be set to a long random value outside development")
            if self.practice_postal_address == Settings.model_fields["practice_postal_address"].default:
                raise ValueError("PRACTICE_POSTAL_ADDRESS must be the practice's full postal address in production")
        return self

    @property
    def sender(self) -> Address:
        name, address = parseaddr(self.mail_from)
        username, _, domain = address.rpartition("@")
        return Address(display_name=name, username=username, domain=domain)

    @property
    def sending_domain(self) -> str:
        return self.sender.domain

    @property
    def reply_to(self) -> str:
        return self.mail_reply_to or self.mail_from

    @property
    def unsubscribe_mailbox(self) -> str:
        return self.mail_unsubscribe or f"unsubscribe@{self.sending_domain}"

    def absolute_url(self, path: str) -> str:
        return str(self.base_url).rstrip("/") + "/" + path.lstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the environment (``overrides`` win); exit with the variable's name on a bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for issue in error.errors():
            variable = "_".join(str(part) for part in issue["loc"]).upper() or "settings"
            problems.append(f"  {variable}: {issue['msg']}")
        raise SettingsError("Configuration error:\n" + "\n".join(problems)) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
