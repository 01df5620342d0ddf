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
        ("BROKER_URL", "amqp://guest@localhost//"),
        ("SMTP_URL", "http://mail.example.org"),
        ("COURSE_DAY_SECONDS", "0"),
        ("SEND_RATE_PER_SECOND", "-1"),
        ("CELERY_QUEUE", "course queue; rm -rf"),
    ],
)
def test_each_bad_delivery_setting_is_named(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        make_settings(**{variable.lower(): value})


def test_compressed_days_make_the_beat_tick_often_enough() -> None:
    assert make_settings().tick_interval_seconds == 30
    assert make_settings(course_day_seconds=10).tick_interval_seconds == 1.25  # an eighth of a day
    assert make_settings(course_day_seconds=1).tick_interval_seconds == 0.25  # but no faster than that
