"""One typed settings object, read from the environment and validated once at start-up.

A bad value stops the process with a message that names the variable; so does the development secret
outside development, because a known secret lets anyone forge unsubscribe and answer links.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")
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
    # DKIM signing by the workers (emails/dkim.py), for a relay that does not sign: both or neither.
    dkim_selector: str | None = None
    dkim_private_key_file: str | None = None
    consultation_url: HttpUrl = HttpUrl("https://www.southdenvertherapy.com/free-consultation")
    # Overrides for the course's resource links: a JSON object {"attachment-style-quiz": "https://..."}.
    resource_urls: dict[str, HttpUrl] = {}
    # The footer's postal address (CAN-SPAM and the practice's identity). Required outside development.
    practice_postal_address: str = "Castle Rock, Colorado"
    course_slug: str = "building-emotional-intimacy"

    # --- Delivery -------------------------------------------------------------------------------
    # postgresql://user@host/db (psycopg 3 is used; ?host=/folder for a Unix socket). The default is a
    # PostgreSQL on this machine; production must say where its database is. `course demo` runs one of its own.
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/course"
    # redis://host:port/db for production, or amqp://... for RabbitMQ (with REDIS_URL besides);
    # memory:// runs broker and worker inside one process (demo).
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Where Redis-backed helpers (the send-rate token bucket) live; defaults to BROKER_URL when it is Redis.
    redis_url: str | None = None
    # smtp://user:pass@host:port, smtp+starttls://..., smtps://...; outbox:folder writes .eml files
    # (outbox:///absolute/folder); memory:// keeps messages in the process (tests).
    smtp_url: str = "outbox:var/outbox"
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    # How long a course day lasts. Unset: a real day that follows the subscriber's local calendar.
    course_day_seconds: int | None = Field(None, ge=1)
    # The provider's quota: messages a second across every worker (a token bucket in Redis).
    send_rate_per_second: float = Field(20.0, gt=0)
    # Subscribers claimed per round of a beat tick (two rounds run side by side; 2,000 a round claimed 10,000
    # among a million in 149-184 ms where 1,000 took 155-254 in the same six runs: a round's fixed costs,
    # its commit among them, counted half as often), and emails per batch of the send queue.
    claim_batch_size: int = Field(2000, ge=1, le=10_000)
    send_batch_size: int = Field(50, ge=1, le=1_000)
    # A worker checks for unsubscribes just before each chunk of this many messages and records each
    # chunk as sent in one commit: a worker killed mid-chunk may send at most this many twice.
    send_chunk_size: int = Field(10, ge=1, le=1_000)
    # The beat stops claiming while this many emails wait in the send queue or are being sent: a backlog
    # waits in the subscribers' table (due), not in the queue, so that a publish reaches it.
    max_in_flight: int = Field(50_000, ge=1)
    # How often the beat tick runs when days are real; with COURSE_DAY_SECONDS it runs more often.
    tick_seconds: float = Field(30.0, gt=0)
    # A batch a worker has taken and not finished in this long (renewed as it goes) is taken to be
    # abandoned and handed out again; a worker that died is found at once by its lock (course/senders.py).
    delivery_lease_seconds: int = Field(600, ge=2)
    # How often each process (beat, worker, web) reads the database's clock, which they all go by
    # (course/clock.py): a machine whose clock is off neither delays nor hurries the course.
    clock_check_seconds: float = Field(30.0, gt=0)
    # How long sending stops after the provider refuses us (5.7.x) before it is tried again.
    sending_pause_seconds: int = Field(900, ge=1)
    # How often the beat sums the insights' figures again for the cohorts still in the course (about
    # 30-50 s of one PostgreSQL core at a million subscribers; docs/studio.md, Insights).
    insights_refresh_seconds: float = Field(600.0, gt=0)
    # The Celery queue; also prefixes this deployment's Redis keys (tests give each run its own).
    celery_queue: str = Field("course", pattern=r"^[A-Za-z0-9_.-]+$")

    # --- The web --------------------------------------------------------------------------------
    # The proxies whose X-Forwarded-For is believed: addresses or networks, comma-separated
    # ("10.0.0.0/8,127.0.0.1"). Empty: none, the client is whoever connected.
    forwarded_allow_ips: str = ""
    # Other sites whose pages may hold the sign-up form (an embed on the practice's own site): their
    # origins, comma-separated ("https://www.example.org"). A sign-up sent by any other site's page is
    # refused (a site that makes its visitors' browsers sign up strangers).
    signup_embed_origins: str = ""
    # The bearer token Prometheus sends for /metrics. Unset: /metrics is open in development and
    # test, and not served at all in production.
    metrics_token: SecretStr | None = None
    # The demo's inbox page (/inbox): every email in the outbox folder, with its signed links. Only
    # for development with SMTP_URL=outbox:folder; `course demo` turns it on.
    demo_inbox: bool = False

    # --- Bounces and complaints after SMTP accepted the message (course/feedback.py) ---------------
    # Amazon SES through SNS (POST /webhooks/ses): the SNS signing certificate(s) to trust, as a PEM
    # file (never fetched from the SigningCertURL a message names), and the topic ARN(s) taken,
    # comma-separated. Both or neither.
    ses_sns_certificate_file: str | None = None
    ses_sns_topic_arn: str | None = None
    # Postmark's bounce, spam-complaint and subscription-change webhook (POST /webhooks/postmark):
    # the HTTP Basic credentials written into the webhook's URL at Postmark.
    postmark_webhook_user: str = "postmark"
    postmark_webhook_password: SecretStr | None = None
    # The generic JSON webhook (POST /webhooks/feedback), for any other provider or script: a bearer token.
    feedback_webhook_token: SecretStr | None = None
    # The bounce mailbox `course mailbox` reads when not given --imap (so that its password is not in the
    # process list): imaps://user:password@host/INBOX.
    bounce_mailbox_url: SecretStr | None = None
    # Soft bounces are counted per address: this many within this many days suppress it as a hard one.
    soft_bounce_limit: int = Field(3, ge=1)
    soft_bounce_days: float = Field(7.0, gt=0)

    @field_validator("mail_from", "mail_reply_to", "mail_unsubscribe")
    @classmethod
    def _is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, address = parseaddr(value)
        if "@" not in address or any(char in value for char in "\r\n\0"):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        # Operators write postgresql://; we talk to it with psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError("use postgresql://user@host/db (PostgreSQL is the one database)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "amqp://", "amqps://", "memory://")):
            raise ValueError("use redis://host:port/db, amqp://user:password@host:5672/vhost (RabbitMQ), or "
                             "memory:// for the embedded demo")  # fmt: skip
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str) -> str:
        if not value.startswith(("smtp://", "smtp+starttls://", "smtps://", "outbox:", "memory://")):
            raise ValueError("use smtp://, smtp+starttls://, smtps://, outbox:folder or memory://")
        return value

    @field_validator("base_url")
    @classmethod
    def _no_trailing_path_slash(cls, value: HttpUrl) -> HttpUrl:
        if value.query or value.fragment:
            raise ValueError("BASE_URL takes no query or fragment")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or network: {part.strip()!r}") from None
        return value

    @field_validator("signup_embed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for part in value.split(","):
            origin = part.strip()
            if origin and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"not an origin (https://host or https://host:port, no path): {origin!r}")
        return value

    @field_validator("metrics_token", "dkim_selector", "dkim_private_key_file", "ses_sns_certificate_file",
                     "ses_sns_topic_arn", "postmark_webhook_password", "feedback_webhook_token", "bounce_mailbox_url",
                     mode="before")  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # METRICS_TOKEN= (as docker compose writes an unset ${METRICS_TOKEN:-}) means no token; an empty
        # DKIM_SELECTOR or DKIM_PRIVATE_KEY_FILE, no DKIM.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token", "postmark_webhook_password", "feedback_webhook_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 random characters")
        return value

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        problems = []
        if self.environment != "development" and self.secret_key == DEVELOPMENT_SECRET_KEY:
            problems.append("SECRET_KEY must be set to a long random value outside development")
        if self.environment == "production":
            if self.practice_postal_address == Settings.model_fields["practice_postal_address"].default:
                problems.append("PRACTICE_POSTAL_ADDRESS must be the practice's full postal address in production")
            if "database_url" not in self.model_fields_set:
                problems.append("DATABASE_URL must be set in production (the default is a PostgreSQL on this machine)")
            if "smtp_url" not in self.model_fields_set:
                problems.append("SMTP_URL must be set in production (the default writes the mail to files)")
        if (self.dkim_selector is None) != (self.dkim_private_key_file is None):
            problems.append("DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE go together: set both to sign, or neither")
        if self.broker_url.startswith(("amqp://", "amqps://")) and self.redis_url is None:
            problems.append("BROKER_URL is RabbitMQ: set REDIS_URL too, for the send rate every worker shares "
                            "and the web's limits")  # fmt: skip
        if (self.ses_sns_certificate_file is None) != (self.ses_sns_topic_arn is None):
            problems.append("SES_SNS_CERTIFICATE_FILE and SES_SNS_TOPIC_ARN go together: set both to take SES "
                            "notifications, or neither")  # fmt: skip
        if self.demo_inbox:
            # The inbox shows every subscriber's address and signed links to whoever opens it.
            if self.environment != "development":
                problems.append("DEMO_INBOX lists every subscriber's links: only in development, never here")
            if not self.smtp_url.startswith("outbox:"):
                problems.append("DEMO_INBOX shows the outbox folder: it needs SMTP_URL=outbox:folder")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def trusted_proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.forwarded_allow_ips.split(",")
            if part.strip()
        )

    @property
    def embed_origins(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.signup_embed_origins.split(",") if part.strip())

    @property
    def address_key(self) -> bytes:
        """The key of the keyed hashes of addresses (suppressions, mailbox pacing), derived from SECRET_KEY."""
        return hmac.new(self.secret_key.encode(), b"course.address-hash", hashlib.sha256).digest()

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

    @property
    def redis(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else None

    @property
    def tick_interval_seconds(self) -> float:
        """The beat's period: often enough that a compressed day still goes out within a quarter of its length."""
        if self.course_day_seconds is None:
            return self.tick_seconds
        return max(0.25, min(self.tick_seconds, self.course_day_seconds / 8))


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
