from __future__ import annotations

import pytest

from course.settings import DEVELOPMENT_SECRET_KEY, SettingsError, load_settings

from ..conftest import make_settings


def test_the_development_secret_stops_a_production_process() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        make_settings(environment="production", secret_key=DEVELOPMENT_SECRET_KEY)


def test_a_bad_base_url_is_named_in_the_error() -> None:
    with pytest.raises(SettingsError, match="BASE_URL"):
        make_settings(base_url="not a url")


def test_a_bad_sender_address_is_named_in_the_error() -> None:
    with pytest.raises(SettingsError, match="MAIL_FROM"):
        make_settings(mail_from="South Denver Therapy")


def test_a_sender_with_a_line_break_is_refused() -> None:
    with pytest.raises(SettingsError, match="MAIL_FROM"):
        make_settings(mail_from="Practice <course@example.org>\r\nBcc: victim@example.org")


def test_production_needs_the_real_postal_address() -> None:
    with pytest.raises(SettingsError, match="PRACTICE_POSTAL_ADDRESS"):
        load_settings(environment="production", secret_key="x" * 40)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_URL", "https://learn.example.net/")
    monkeypatch.setenv("MAIL_FROM", "Care Team <hello@send.example.net>")
    settings = load_settings()
    assert str(settings.base_url) == "https://learn.example.net/"
    assert settings.sending_domain == "send.example.net"
    assert settings.unsubscribe_mailbox == "unsubscribe@send.example.net"
    assert settings.reply_to == "Care Team <hello@send.example.net>"


def test_postgresql_urls_use_psycopg() -> None:
    assert make_settings(database_url="postgresql://course@db/course").database_url == (
        "postgresql+psycopg://course@db/course"
    )
    assert make_settings(database_url="postgres://course@db/course").database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://db/course"),
        ("BROKER_URL", "kafka://localhost:9092"),
        ("BROKER_URL", "amqp://guest@localhost//"),  # RabbitMQ without REDIS_URL
        ("SMTP_URL", "http://mail.example.org"),
        ("COURSE_DAY_SECONDS", "0"),
        ("SEND_RATE_PER_SECOND", "-1"),
        ("CELERY_QUEUE", "course queue; rm -rf"),
    ],
)
def test_each_bad_delivery_setting_is_named(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        make_settings(**{variable.lower(): value})


def test_rabbitmq_is_a_broker_with_redis_beside_it() -> None:
    settings = make_settings(broker_url="amqp://guest:guest@rabbit:5672//", redis_url="redis://cache:6379/1")
    assert (settings.broker_url, settings.redis) == ("amqp://guest:guest@rabbit:5672//", "redis://cache:6379/1")
    assert make_settings(broker_url="redis://cache:6379/0").redis == "redis://cache:6379/0"


def test_compressed_days_make_the_beat_tick_often_enough() -> None:
    assert make_settings().tick_interval_seconds == 30
    assert make_settings(course_day_seconds=10).tick_interval_seconds == 1.25  # an eighth of a day
    assert make_settings(course_day_seconds=1).tick_interval_seconds == 0.25  # but no faster than that


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_development_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings(environment=environment, secret_key=DEVELOPMENT_SECRET_KEY, practice_postal_address="1 A St")
    assert load_settings(environment="development").secret_key == DEVELOPMENT_SECRET_KEY  # the demo's


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_demo_inbox_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(SettingsError, match="DEMO_INBOX"):
        make_settings(environment=environment, demo_inbox=True, smtp_url="outbox:var/outbox")


def test_the_demo_inbox_needs_an_outbox_folder() -> None:
    with pytest.raises(SettingsError, match="DEMO_INBOX"):
        make_settings(environment="development", demo_inbox=True, smtp_url="smtp://mail.example.org")
    assert make_settings(environment="development", demo_inbox=True, smtp_url="outbox:var/outbox").demo_inbox


def test_the_demo_inbox_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("PRACTICE_POSTAL_ADDRESS", "1 A Street, Castle Rock, CO")
    monkeypatch.setenv("DEMO_INBOX", "true")
    with pytest.raises(SettingsError, match="DEMO_INBOX"):
        load_settings()


def test_the_metrics_token_is_long_enough_and_empty_means_unset() -> None:
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        make_settings(metrics_token="short")
    assert make_settings(metrics_token="").metrics_token is None
    token = make_settings(metrics_token="s" * 16).metrics_token
    assert token is not None and token.get_secret_value() == "s" * 16 and "s" * 16 not in repr(token)


def test_production_says_where_its_database_and_mail_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("PRACTICE_POSTAL_ADDRESS", "1 A Street, Castle Rock, CO")
    # The defaults (a PostgreSQL on this machine, mail written to files) are for trying it out, never for real.
    with pytest.raises(SettingsError, match="DATABASE_URL must be set") as missing:
        load_settings()
    assert "SMTP_URL must be set" in str(missing.value)
    monkeypatch.setenv("DATABASE_URL", "postgresql://course@db.internal/course")
    monkeypatch.setenv("SMTP_URL", "smtp+starttls://user:pass@smtp.example.org:587")
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+psycopg://") and settings.smtp_url.startswith("smtp+")
