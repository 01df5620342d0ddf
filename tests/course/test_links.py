from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import BadData, URLSafeTimedSerializer

from course.links import LINK_PATHS, ExpiredLink, InvalidLink, LinkSigner, Purpose

from ..conftest import TEST_SECRET

BASE_URL = "https://course.example.org"
signer = LinkSigner(TEST_SECRET, BASE_URL)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_link_carries_subscriber_step_and_value(purpose: Purpose) -> None:
    claim = signer.verify(purpose, signer.token(purpose, 42, 7, "significant"))
    assert (claim.purpose, claim.subscriber_id, claim.step, claim.value) == (purpose, 42, 7, "significant")


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_link_is_an_absolute_url_on_base_url(purpose: Purpose) -> None:
    url = signer.url(purpose, 42, 3)
    prefix = f"{BASE_URL}/{LINK_PATHS[purpose]}/"
    assert url.startswith(prefix)
    assert signer.verify(purpose, url.removeprefix(prefix)).subscriber_id == 42


@pytest.mark.parametrize("made_for", list(Purpose))
def test_a_token_made_for_one_purpose_opens_no_other(made_for: Purpose) -> None:
    token = signer.token(made_for, 42, 3, "x")
    for purpose in Purpose:
        if purpose is not made_for:
            with pytest.raises(InvalidLink):
                signer.verify(purpose, token)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = LinkSigner("another-secret-key-0123456789abcdef-000", BASE_URL)
    with pytest.raises(InvalidLink):
        signer.verify(Purpose.UNSUBSCRIBE, other.token(Purpose.UNSUBSCRIBE, 42))


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AZaz09-_."))
def test_no_altered_character_forges_a_different_link(position: int, replacement: str) -> None:
    token = signer.token(Purpose.ANSWER, 42, 0, "normal")
    original = signer.verify(Purpose.ANSWER, token)
    position %= len(token)
    tampered = token[:position] + replacement + token[position + 1 :]
    if tampered == token:
        return
    try:
        claim = signer.verify(Purpose.ANSWER, tampered)
    except InvalidLink:
        return
    # The last character of a base64 segment carries spare bits: changing only those decodes to the
    # same bytes. Such a token is accepted, but it says exactly what the original said.
    assert (claim.subscriber_id, claim.step, claim.value) == (original.subscriber_id, 0, "normal")


def test_a_changed_payload_character_is_refused() -> None:
    token = signer.token(Purpose.ANSWER, 42, 0, "normal")
    payload, rest = token.split(".", 1)
    for position in range(len(payload) - 1):  # every character that carries whole bits of the payload
        replacement = "A" if payload[position] != "A" else "B"
        with pytest.raises(InvalidLink):
            signer.verify(Purpose.ANSWER, payload[:position] + replacement + payload[position + 1 :] + "." + rest)


@given(st.text(max_size=300))
def test_arbitrary_input_is_refused_cleanly(garbage: str) -> None:
    with pytest.raises(InvalidLink):
        signer.verify(Purpose.EXERCISE_DONE, garbage)


def test_a_forged_subscriber_id_in_the_payload_is_refused() -> None:
    # A token is payload.timestamp.signature: graft another subscriber's payload onto a real signature.
    _, timestamp, signature = signer.token(Purpose.EXERCISE_DONE, 42, 3).split(".")
    other_payload = signer.token(Purpose.EXERCISE_DONE, 43, 3).split(".")[0]
    with pytest.raises(InvalidLink):
        signer.verify(Purpose.EXERCISE_DONE, f"{other_payload}.{timestamp}.{signature}")


def test_unsubscribe_links_never_expire() -> None:
    token = signer.token(Purpose.UNSUBSCRIBE, 42, 5)
    ten_years_on = time.time() + timedelta(days=3650).total_seconds()
    assert signer.verify(Purpose.UNSUBSCRIBE, token, now=ten_years_on).subscriber_id == 42


def test_a_confirmation_link_expires_after_a_week() -> None:
    token = signer.token(Purpose.CONFIRM, 42)
    six_days_on = time.time() + timedelta(days=6).total_seconds()
    eight_days_on = time.time() + timedelta(days=8).total_seconds()
    assert signer.verify(Purpose.CONFIRM, token, now=six_days_on).subscriber_id == 42
    with pytest.raises(ExpiredLink):
        signer.verify(Purpose.CONFIRM, token, now=eight_days_on)


def test_an_expired_link_is_still_an_invalid_link() -> None:
    # Callers that only care "can I act on this?" catch InvalidLink and get expiry too.
    assert issubclass(ExpiredLink, InvalidLink)


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize(("step", "value"), [(None, None), (0, None), (18, "significant"), (3, "a" * 200)])
def test_a_token_is_the_one_the_serializer_itself_makes(purpose: Purpose, step: int | None, value: str | None) -> None:
    """LinkSigner signs without the serializer's per-call set-up; the token must be the very one it makes
    (and so read by it, and by every link already sent)."""
    with mock.patch("itsdangerous.timed.time.time", return_value=1_800_000_000):
        made = signer.token(purpose, 123456, step, value)
        expected = URLSafeTimedSerializer(TEST_SECRET, salt=f"course-link.{purpose.value}").dumps([123456, step, value])
    if value is not None and len(value) > 100:  # the serializer would compress this one; ours need not
        assert signer.verify(purpose, made, now=1_800_000_001).value == value
    else:
        assert made == expected
    assert signer.verify(purpose, made, now=1_800_000_001).subscriber_id == 123456


def _near_tokens() -> st.SearchStrategy[str]:
    """Real tokens (also one the serializer compressed), each perhaps with a character changed, cut short or
    grown; and strings of the token's own alphabet."""
    made = st.builds(
        lambda purpose, subscriber, value: URLSafeTimedSerializer(TEST_SECRET, salt=f"course-link.{purpose.value}")
        .dumps([subscriber, 3, value]),
        st.sampled_from(list(Purpose)), st.integers(min_value=1, max_value=10**12),
        st.one_of(st.none(), st.text(max_size=5), st.just("a" * 300)),
    )  # fmt: skip

    def change(token: str, position: int, replacement: str) -> str:
        position %= len(token) + 1
        return token[:position] + replacement + token[position + 1 :]

    changed = st.builds(change, made, st.integers(min_value=0), st.sampled_from(["", "A", "_", ".", "==", "é"]))
    return st.one_of(made, changed, st.text(alphabet="AZaz09-_.", max_size=80))


@given(token=_near_tokens(), purpose=st.sampled_from(list(Purpose)))
def test_a_token_is_read_as_the_serializer_itself_reads_it(token: str, purpose: Purpose) -> None:
    """LinkSigner verifies without itsdangerous's per-call work: it takes what the serializer takes (the
    same subscriber and time) and refuses what it refuses."""
    try:
        payload, signed_at = URLSafeTimedSerializer(TEST_SECRET, salt=f"course-link.{purpose.value}").loads(
            token, return_timestamp=True
        )
    except BadData:
        with pytest.raises(InvalidLink):
            signer.verify(purpose, token, now=0)
        return
    claim = signer.verify(purpose, token, now=0)
    assert [claim.subscriber_id, claim.step, claim.value] == payload
    assert claim.issued_at == signed_at.timestamp()
