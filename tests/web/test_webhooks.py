"""The provider webhooks over the providers' published sample payloads: SES through SNS (signatures
checked against the pinned certificate, published within the hour), Postmark (HTTP Basic) and our
generic JSON form (a bearer token). Forged, tampered, stale, unauthenticated and malformed requests
(JSON nested without end, numbers no float holds, a wrong type in any field) are refused and change
nothing."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx2 import Response
from sqlalchemy import func, select

from course.models.deliveries import Suppression
from course.models.feedback import FeedbackNotice
from course.models.subscribers import Subscriber

from ..support.naughty import Snapshots, Tally, naughty_strings, spread
from ..support.samples import payload
from ..support.smtp import ScriptedHandler
from ..support.sns import TOPIC, FakeSns
from .conftest import Site, running_site

POSTMARK = ("postmark", "postmark-password-0123")
TOKEN = "feedback-token-0123456789abcdef"
SNS = FakeSns.create(valid_from=datetime(2026, 1, 1, tzinfo=UTC))  # the site's clock is in November 2026


@pytest.fixture
def hooks(database_url: str, smtp: tuple[ScriptedHandler, int], tmp_path: Path) -> Iterator[Site]:
    with running_site(
        database_url, smtp, ses_sns_certificate_file=str(SNS.write(tmp_path / "sns.pem")), ses_sns_topic_arn=TOPIC,
        postmark_webhook_password=POSTMARK[1], feedback_webhook_token=TOKEN,
    ) as site:  # fmt: skip
        yield site


def _changed(site: Site) -> tuple[int, int, list[str]]:
    """Notices, suppressions, and every subscriber's status: what a refused request must leave alone."""
    with site.session() as session:
        notices = session.scalar(select(func.count()).select_from(FeedbackNotice)) or 0
        suppressions = session.scalar(select(func.count()).select_from(Suppression)) or 0
        statuses = list(session.scalars(select(Subscriber.status).order_by(Subscriber.id)))
    return notices, suppressions, statuses


def _status(site: Site, email: str) -> str:
    return site.subscriber(email).status


# The fields SNS signs, in its order (AWS's "Verifying the signatures of Amazon SNS messages"), written
# out here rather than taken from the code under test.
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def _stamped(message: dict[str, Any], at: datetime | str, sns: FakeSns = SNS) -> dict[str, Any]:
    """``message`` (as FakeSns writes it) published at ``at``, and signed again as SNS signs it."""
    stamp = at if isinstance(at, str) else at.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    stamped = {**message, "Timestamp": stamp}
    signed = "".join(f"{name}\n{stamped[name]}\n" for name in SIGNED[stamped["Type"]] if name in stamped)
    return {**stamped, "Signature": sns.sign(signed, stamped["SignatureVersion"])}


def _notification(site: Site, message: Any, *, ago: timedelta = timedelta(0), **options: Any) -> dict[str, Any]:
    """An SNS notification of ``message``, published ``ago`` before the site's clock (now, unless told)."""
    return _stamped(SNS.notification(message, **options), site.clock() - ago)


def _ses(site: Site, body: Any) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    # SNS posts JSON as text/plain, with its message type in a header.
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}
    return site.client.post("/webhooks/ses", content=raw, headers=headers)


# --- SES through SNS ------------------------------------------------------------------------------


def test_a_signed_ses_bounce_suppresses_and_stops_the_course(hooks: Site) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    welcome = hooks.smtp.to("jane@example.com")[-1].message["Message-ID"]
    bounce = payload("ses-bounce", {"custom-message-ID": welcome})
    response = _ses(hooks, _notification(hooks, bounce))
    assert response.status_code == 200, response.text
    assert response.json() == {"notices": 1, "outcomes": {"suppressed": 1}}
    assert _status(hooks, "jane@example.com") == "bounced"
    metrics = hooks.client.get("/metrics").text
    assert 'course_feedback{kind="hard-bounce",proven="yes",source="ses"} 1.0' in metrics


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify_and_a_complaint_is_taken(hooks: Site, version: str) -> None:
    hooks.sign_up_and_confirm("recipient@example.com")
    response = _ses(hooks, _notification(hooks, payload("ses-complaint"), version=version, subject="Amazon SES Email"))
    assert response.status_code == 200 and response.json()["outcomes"] == {"suppressed": 1}
    assert _status(hooks, "recipient@example.com") == "complained"


def test_a_transient_ses_bounce_is_counted_and_sns_retries_count_once(hooks: Site) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    notification = _notification(hooks, payload("ses-transient-bounce"))
    assert _ses(hooks, notification).json()["outcomes"] == {"counted": 1}
    assert _ses(hooks, notification).json()["outcomes"] == {"duplicate": 1}  # SNS delivers at least once
    assert _status(hooks, "jane@example.com") == "active"


def _forged(notification: dict[str, Any]) -> dict[str, Any]:
    return {**notification, "Signature": FakeSns.create().sign("anything", "1")}


def _tampered(notification: dict[str, Any]) -> dict[str, Any]:
    return {**notification, "Message": notification["Message"].replace("jane@example.com", "alex@example.com")}


REFUSED: dict[str, Any] = {
    "signed by another key": lambda n: {**n, **_forged(n)},
    "changed after signing": _tampered,
    "no signature": lambda n: {key: value for key, value in n.items() if key != "Signature"},
    "a signature that is not base64": lambda n: {**n, "Signature": "%%%"},
    "an unknown signature version": lambda n: {**n, "SignatureVersion": "3"},
    "an unknown message type": lambda n: {**n, "Type": "Surprise"},
    "no timestamp": lambda n: {key: value for key, value in n.items() if key != "Timestamp"},
}


@pytest.mark.parametrize("how", sorted(REFUSED))
def test_a_forged_or_tampered_sns_message_is_refused_and_changes_nothing(hooks: Site, how: str) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    hooks.sign_up_and_confirm("alex@example.com")
    before = _changed(hooks)
    response = _ses(hooks, REFUSED[how](_notification(hooks, payload("ses-bounce"))))
    assert response.status_code == 403, response.text
    assert response.json()["error"].startswith("refused: ")
    assert _changed(hooks) == before


def test_a_message_from_another_topic_is_refused(hooks: Site) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    other = _notification(hooks, payload("ses-bounce"), topic="arn:aws:sns:us-east-1:999999999999:someone-else")
    response = _ses(hooks, other)
    assert response.status_code == 403 and "topic" in response.json()["error"]
    assert _changed(hooks) == before


def test_a_pinned_certificate_out_of_its_validity_refuses_everything(
    database_url: str, smtp: tuple[ScriptedHandler, int], tmp_path: Path
) -> None:
    old = FakeSns.create(valid_from=datetime(2024, 1, 1, tzinfo=UTC), days=30)
    with running_site(database_url, smtp, ses_sns_certificate_file=str(old.write(tmp_path / "old.pem")),
                      ses_sns_topic_arn=TOPIC) as site:  # fmt: skip
        response = _ses(site, old.notification(payload("ses-bounce")))
    assert response.status_code == 403 and "no pinned SNS certificate is valid now" in response.json()["error"]


def test_a_subscription_confirmation_is_left_to_an_operator(hooks: Site, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        response = _ses(hooks, _stamped(SNS.subscription(), hooks.clock()))
    assert response.status_code == 200 and "operator" in response.json()["subscription"]
    assert "Action=ConfirmSubscription" in caplog.text  # logged for the operator, never fetched by us
    forged = {**_stamped(SNS.subscription(), hooks.clock()), "SubscribeURL": "https://attacker.example/confirm"}
    assert _ses(hooks, forged).status_code == 403


@pytest.mark.parametrize(
    "ago",
    [timedelta(hours=2), timedelta(hours=-2), timedelta(hours=1, minutes=16), timedelta(minutes=-16)],
    ids=["2h-old", "2h-ahead", "76min-old", "16min-ahead"],
)
def test_a_signed_sns_message_published_outside_the_window_is_refused_and_changes_nothing(
    hooks: Site, ago: timedelta
) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    response = _ses(hooks, _notification(hooks, payload("ses-bounce"), ago=ago))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("refused: the SNS message was published at ")
    assert ("minutes ago" if ago > timedelta(0) else "minutes ahead of this server's clock") in error
    assert _changed(hooks) == before
    # A subscription confirmation as well; and a forged message is a 403 whatever its Timestamp says.
    assert _ses(hooks, _stamped(SNS.subscription(), hooks.clock() - ago)).status_code == 400
    forged = _forged(_notification(hooks, payload("ses-bounce"), ago=ago))
    assert _ses(hooks, forged).status_code == 403 and "does not verify" in _ses(hooks, forged).json()["error"]
    assert _changed(hooks) == before


@pytest.mark.parametrize("ago", [timedelta(minutes=5), timedelta(hours=1), timedelta(minutes=-10)],
                         ids=["5min-old", "1h-old", "10min-ahead"])  # fmt: skip
def test_a_signed_sns_message_published_within_the_window_is_taken(hooks: Site, ago: timedelta) -> None:
    """SNS retries a delivery for at most an hour (AWS's limit): its last retry is still taken."""
    hooks.sign_up_and_confirm("jane@example.com")
    response = _ses(hooks, _notification(hooks, payload("ses-bounce"), ago=ago))
    assert response.status_code == 200 and response.json()["outcomes"] == {"suppressed": 1}, response.text
    assert _status(hooks, "jane@example.com") == "bounced"


@pytest.mark.parametrize("stamp", ["", "yesterday", "2026-11-27T15:00:00", "2026-11-27 15:00 UTC",
                                   "0001-01-01T00:00:00+01:00", "9" * 1000])  # fmt: skip
def test_a_signed_sns_message_whose_timestamp_is_no_time_is_refused(hooks: Site, stamp: str) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    response = _ses(hooks, _stamped(SNS.notification(payload("ses-bounce")), stamp))
    assert response.status_code == 400, response.text
    assert "Timestamp" in response.json()["error"] and "is not an ISO 8601 time" in response.json()["error"]
    assert _changed(hooks) == before


@pytest.mark.parametrize("body, error", [
    (b"not json", "the body is not JSON"),
    (b"\xff\xfe", "the body is not JSON"),
    (b"[1, 2]", "an SNS message is a JSON object"),
])  # fmt: skip
def test_a_body_that_is_not_an_sns_message_is_a_400(hooks: Site, body: bytes, error: str) -> None:
    response = _ses(hooks, body)
    assert response.status_code == 400 and response.json() == {"error": error}


def test_a_signed_notification_we_cannot_read_is_a_400_and_changes_nothing(hooks: Site) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    for message, error in (("not json", "is not JSON"), ({"notificationType": "Bounce"}, "no bounce object"),
                           ({"notificationType": "Bounce", "bounce": {"bouncedRecipients": [{"x": 1}]}},
                            "no emailAddress address")):  # fmt: skip
        response = _ses(hooks, _notification(hooks, message))
        assert response.status_code == 400 and error in response.json()["error"]
    assert _changed(hooks) == before


def test_deliveries_and_other_notifications_are_taken_and_ignored(hooks: Site) -> None:
    delivery = {"notificationType": "Delivery", "mail": {"messageId": "x"}, "delivery": {"recipients": ["a@b.c"]}}
    response = _ses(hooks, _notification(hooks, delivery))
    assert response.status_code == 200 and response.json() == {"notices": 0, "outcomes": {}}


def test_a_notification_with_its_full_headers_is_larger_than_a_form_and_is_taken(hooks: Site) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    bounce = payload("ses-bounce")
    bounce["mail"]["headers"] += [{"name": f"X-Padding-{n}", "value": "x" * 900} for n in range(200)]
    notification = _notification(hooks, bounce)
    assert len(json.dumps(notification)) > 150_000  # the forms' limit is 64 KB; SNS sends up to 256 KB
    assert _ses(hooks, notification).status_code == 200
    assert _ses(hooks, b"{" + b" " * (1024 * 1024 + 1) + b"}").status_code == 413


# --- Postmark -------------------------------------------------------------------------------------


def _postmark(site: Site, body: Any, auth: tuple[str, str] | None = POSTMARK) -> Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return site.client.post("/webhooks/postmark", content=raw, headers=headers)


@pytest.mark.parametrize("sample, outcome, status", [
    ("postmark-bounce", "suppressed", "bounced"),
    ("postmark-soft-bounce", "counted", "active"),
    ("postmark-spam-complaint", "suppressed", "complained"),
    ("postmark-subscription-change", "suppressed", "bounced"),
])  # fmt: skip
def test_postmark_samples(hooks: Site, sample: str, outcome: str, status: str) -> None:
    hooks.sign_up_and_confirm("john@example.com")
    response = _postmark(hooks, payload(sample))
    assert response.status_code == 200, response.text
    assert response.json() == {"notices": 1, "outcomes": {outcome: 1}}
    assert _status(hooks, "john@example.com") == status


def test_a_postmark_delivery_webhook_is_taken_and_ignored(hooks: Site) -> None:
    assert _postmark(hooks, payload("postmark-delivery")).json() == {"notices": 0, "outcomes": {}}


@pytest.mark.parametrize("auth", [None, ("postmark", "wrong-password-0123"), ("someone", POSTMARK[1]), ("", "")])
def test_postmark_without_its_credentials_is_refused_and_changes_nothing(
    hooks: Site, auth: tuple[str, str] | None
) -> None:
    hooks.sign_up_and_confirm("john@example.com")
    before = _changed(hooks)
    response = _postmark(hooks, payload("postmark-bounce"), auth)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Basic"
    assert _changed(hooks) == before


@pytest.mark.parametrize("body, error", [
    ({"Type": "HardBounce", "Email": "john@example.com"}, "a Postmark webhook has a RecordType"),
    ({"RecordType": "Bounce", "Type": "HardBounce"}, "the notification has no Email address"),
    ({"RecordType": "Bounce", "Type": "HardBounce", "Email": ["john@example.com"]}, "no Email address"),
    (["not", "an", "object"], "a Postmark webhook is a JSON object"),
])  # fmt: skip
def test_a_malformed_postmark_payload_is_a_400_and_changes_nothing(hooks: Site, body: Any, error: str) -> None:
    hooks.sign_up_and_confirm("john@example.com")
    before = _changed(hooks)
    response = _postmark(hooks, body)
    assert response.status_code == 400 and error in response.json()["error"]
    assert _changed(hooks) == before


# --- The generic JSON form ------------------------------------------------------------------------


def _generic(site: Site, body: Any, token: str | None = TOKEN) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return site.client.post("/webhooks/feedback", content=body, headers=headers)
    return site.client.post("/webhooks/feedback", json=body, headers=headers)


def test_the_generic_form_takes_one_notice_or_a_list(hooks: Site) -> None:
    hooks.sign_up_and_confirm("alex@example.com")
    hooks.sign_up_and_confirm("sam@example.com")
    one = {"type": "soft-bounce", "email": "alex@example.com", "id": "n-1", "detail": "4.2.2 mailbox full"}
    assert _generic(hooks, one).json() == {"notices": 1, "outcomes": {"counted": 1}}
    many = [{"type": "hard-bounce", "email": "alex@example.com", "id": "n-2"},
            {"type": "complaint", "email": "sam@example.com", "id": "n-3"}]  # fmt: skip
    assert _generic(hooks, many).json() == {"notices": 2, "outcomes": {"suppressed": 2}}
    assert (_status(hooks, "alex@example.com"), _status(hooks, "sam@example.com")) == ("bounced", "complained")
    assert 'course_feedback{kind="complaint",proven="yes",source="webhook"} 1.0' in hooks.client.get("/metrics").text


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef", "", TOKEN + "x"])
def test_the_generic_form_needs_its_token(hooks: Site, token: str | None) -> None:
    hooks.sign_up_and_confirm("alex@example.com")
    before = _changed(hooks)
    response = _generic(hooks, {"type": "complaint", "email": "alex@example.com"}, token)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert _changed(hooks) == before


@pytest.mark.parametrize("body, error", [
    ({"type": "unsubscribe", "email": "alex@example.com"}, "type: Input should be"),
    ({"type": "complaint"}, "email: Field required"),
    ({"type": "complaint", "email": "not an address"}, "email: String should match pattern"),
    ([{"type": "complaint", "email": "alex@example.com"}, {"type": "boom"}], "1.type: Input should be"),
    ([{"type": "soft-bounce", "email": "alex@example.com"}] * 1001, "at most 1,000 notices at once"),
    ("a string", "Input should be a valid dictionary"),
])  # fmt: skip
def test_a_malformed_generic_notice_is_a_400_and_nothing_of_the_batch_is_kept(
    hooks: Site, body: Any, error: str
) -> None:
    hooks.sign_up_and_confirm("alex@example.com")
    before = _changed(hooks)
    response = _generic(hooks, body)
    assert response.status_code == 400 and error in response.json()["error"], response.text
    assert _changed(hooks) == before


def test_webhooks_that_are_not_set_up_are_not_there(site: Site) -> None:
    for path in ("/webhooks/ses", "/webhooks/postmark", "/webhooks/feedback"):
        assert site.client.post(path, json={}).status_code == 404


@pytest.mark.parametrize("content, error", [
    (None, "SES_SNS_CERTIFICATE_FILE cannot be read: No such file or directory"),
    (b"junk", "SES_SNS_CERTIFICATE_FILE holds no PEM certificate"),
])  # fmt: skip
def test_course_web_refuses_to_start_with_a_pinned_certificate_it_cannot_use(
    database_url: str, tmp_path: Path, content: bytes | None, error: str
) -> None:
    pem = tmp_path / "sns.pem"
    if content is not None:
        pem.write_bytes(content)
    environment = {**os.environ, "ENVIRONMENT": "test", "SECRET_KEY": "x" * 40, "DATABASE_URL": database_url,
                   "SES_SNS_CERTIFICATE_FILE": str(pem), "SES_SNS_TOPIC_ARN": TOPIC}  # fmt: skip
    started = subprocess.run(  # noqa: S603 - our own console script
        [str(Path(sys.executable).parent / "course"), "web", "--port", "1"], env=environment, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 1, started.stderr
    assert started.stderr.strip().startswith(f"course web: {error}")


def test_nul_characters_in_a_notice_are_not_a_server_error(hooks: Site) -> None:
    hooks.sign_up_and_confirm("john@example.com")
    bounce = {**payload("postmark-soft-bounce"), "Details": "smtp;452 4.2.2\u0000 full", "ID": "7\u00008"}
    response = _postmark(hooks, bounce)
    assert response.status_code == 200 and response.json()["outcomes"] == {"counted": 1}
    with hooks.session() as session:
        assert (
            session.scalars(select(FeedbackNotice.detail)).one() == "SoftBounce Unable to temporarily deliver "
            "this email. smtp;452 4.2.2 full"
        )
    refused = _generic(hooks, {"type": "hard-bounce", "email": "john\u0000@example.com", "id": "z"})
    assert refused.status_code == 400 and "email: String should match pattern" in refused.json()["error"]
    # From a provider, an address with a control character in it names nobody: nothing is suppressed.
    odd = _postmark(hooks, {**payload("postmark-bounce"), "Email": "john\u0000@example.com"})
    assert odd.status_code == 200 and odd.json()["outcomes"] == {"unknown": 1}
    assert hooks.subscriber("john@example.com").status == "active"


WEBHOOK_WRITES = {"feedback_notices", "events", "subscribers", "progress", "suppressions", "deliveries"}


def test_every_naughty_string_through_the_webhooks_fields_is_a_200_or_a_400_that_changes_nothing(
    hooks: Site,
) -> None:
    """The Big List of Naughty Strings through the fields of the generic form and of Postmark's payload:
    the providers are authenticated, but what they relay comes from anyone's mail server. The whole list
    through the addresses; a spread of it through the ids and words, each of which a success writes."""
    hooks.sign_up_and_confirm("john@example.com")
    strings, some = naughty_strings(), spread(naughty_strings(), 64)
    good = {"type": "soft-bounce", "email": "john@example.com", "detail": "4.2.2"}
    soft = payload("postmark-soft-bounce")
    fields: dict[str, tuple[Callable[..., Response], Sequence[str], Callable[[int, str], dict[str, Any]]]] = {
        "generic email": (_generic, strings, lambda n, value: {**good, "id": f"e{n}", "email": value}),
        "generic id": (_generic, some, lambda n, value: {**good, "id": value}),
        "generic message_id": (_generic, some, lambda n, value: {**good, "id": f"m{n}", "message_id": value}),
        "generic detail": (_generic, some, lambda n, value: {**good, "id": f"d{n}", "detail": value}),
        "postmark Email": (_postmark, strings, lambda n, value: {**soft, "ID": f"e{n}", "Email": value}),
        "postmark Details": (_postmark, some, lambda n, value: {**soft, "ID": f"d{n}", "Details": value}),
    }
    tally = Tally("webhooks", {name: len(values) for name, (_, values, _) in fields.items()})
    with hooks.runtime.sessions.kw["bind"].connect() as connection:
        snapshots = Snapshots(connection.execution_options(isolation_level="AUTOCOMMIT"))
        for name, (send, values, body) in fields.items():
            for number, value in enumerate(values):
                response = send(hooks, body(number, value))
                tally.record(name, response.status_code)
                assert response.status_code in (200, 400), (name, value, response.status_code, response.text)
                changed = snapshots.changed()
                if response.status_code == 400:
                    assert not changed and response.json()["error"], (name, value, changed)
                else:
                    assert changed <= WEBHOOK_WRITES
    tally.check()


# --- Any body: JSON within bounds -----------------------------------------------------------------


def _send(site: Site, webhook: str, raw: bytes) -> Response:
    """``raw`` to ``webhook``, with its credentials; "ses-message" is an SES notification in a signed SNS
    message, whose Message (JSON in a string) is read with the same bounds."""
    if webhook == "ses":
        return _ses(site, raw)
    if webhook == "ses-message":
        return _ses(site, _notification(site, raw.decode("utf-8")))
    if webhook == "postmark":
        return _postmark(site, raw)
    return _generic(site, raw)


WEBHOOKS = ["ses", "ses-message", "postmark", "feedback"]


def _valid(webhook: str) -> dict[str, Any]:
    """A notice that each webhook takes (and that suppresses its address)."""
    if webhook == "postmark":
        return {**payload("postmark-bounce"), "Email": "jane@example.com"}
    if webhook == "feedback":
        return {"type": "hard-bounce", "email": "jane@example.com", "id": "n-1"}
    bounce: dict[str, Any] = payload("ses-bounce")  # for "ses", unsigned: refused, but only once it is read
    return bounce


def _with(webhook: str, name: str, raw_value: str) -> bytes:
    """The webhook's valid notice with one more field, written as ``raw_value`` (JSON text)."""
    return (json.dumps(_valid(webhook))[:-1] + f', "{name}": {raw_value}}}').encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("webhook", WEBHOOKS)
def test_json_nested_deeper_than_the_bound_is_a_400_on_every_webhook_and_changes_nothing(
    hooks: Site, webhook: str
) -> None:
    """Unbounded, 10,000 levels made json's decoder raise a RecursionError: a 500, on the SES webhook
    without any credentials."""
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    for depth in (33, 10_000, 100_000):
        for opened, closed, times in (("[", "]", depth), ('{"":', "}", depth), ('[{"":', "}]", (depth + 1) // 2)):
            deep = opened * times + "1" + closed * times
            for raw in (deep.encode(), _with(webhook, "Deep", deep)):
                response = _send(hooks, webhook, raw)
                assert response.status_code == 400, (depth, opened, response.text)
                assert "nests arrays and objects more than 32 deep" in response.json()["error"]
    assert _changed(hooks) == before
    # Brackets inside strings are not nesting; 32 levels are taken (the notice, the field, 30 lists).
    fine = _with(webhook, "Fine", '{"text": "[{\\"[{", "deep": ' + "[" * 30 + "1" + "]" * 30 + "}")
    response = _send(hooks, webhook, fine)
    if webhook == "ses":
        assert response.status_code == 403  # read, and refused for what it is: not an SNS message
    else:
        assert response.status_code == 200 and response.json()["outcomes"] == {"suppressed": 1}, response.text


NUMBERS = {
    "1e999999": "beyond a float's range",
    "-1e999999": "beyond a float's range",
    "1e309": "beyond a float's range",
    "1" + "0" * 100_000: "a number of more than 100 characters",  # 10**100000: past int()'s 4,300 digits
    "-" + "9" * 5_000: "a number of more than 100 characters",
    "0." + "1" * 200: "a number of more than 100 characters",
    "NaN": "has NaN, which is not JSON",
    "Infinity": "has Infinity, which is not JSON",
    "-Infinity": "has -Infinity, which is not JSON",
}


@pytest.mark.parametrize("webhook", WEBHOOKS)
def test_numbers_no_float_holds_and_nan_are_a_400_and_change_nothing(hooks: Site, webhook: str) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    for number, error in NUMBERS.items():
        for raw in (number.encode(), _with(webhook, "Number", number), _with(webhook, "Numbers", f"[1, {number}]")):
            response = _send(hooks, webhook, raw)
            assert response.status_code == 400 and error in response.json()["error"], (number[:20], response.text)
    assert _changed(hooks) == before
    # What the providers send is taken: 64-bit ids, floats, exponents.
    response = _send(hooks, webhook, _with(webhook, "Numbers", "[4323372036854775807, -0.5, 1.5e-7, 2E+10, 1e308]"))
    assert response.status_code == (403 if webhook == "ses" else 200), response.text


@pytest.mark.parametrize("webhook", WEBHOOKS)
def test_lone_surrogates_duplicate_keys_and_other_json_are_a_400_and_change_nothing(hooks: Site, webhook: str) -> None:
    hooks.sign_up_and_confirm("jane@example.com")
    before = _changed(hooks)
    twice = {"postmark": "RecordType", "feedback": "type"}.get(webhook, "notificationType")
    refused = {
        _with(webhook, "Detail", '"\\ud800"'): "lone surrogate",  # an escape of half a pair
        _with(webhook, "Detail", '"\\udfff and \\ud83d"'): "lone surrogate",
        _with(webhook, "Detail", '{"\\udc00": 1}'): "lone surrogate",  # in a key
        _with(webhook, twice, '"Complaint"'): f"has the key '{twice}' twice in one object",
        b'{"a": 1, "a": 2}': "has the key 'a' twice in one object",
        b'"\xed\xa0\x80"': "is not JSON",  # a surrogate written as UTF-8: no UTF-8
        b"\xef\xbb\xbf{}": "is not JSON",  # a byte order mark
        b"": "is not JSON",
        b"{} {}": "is not JSON",
        b"[1,]": "is not JSON",
        b'{"a": 1': "is not JSON",
        b'"unclosed \\"': "is not JSON",
        b"[" * 20 + b'"' + b"]" * 40: "is not JSON",
    }
    for raw, error in refused.items():
        if webhook == "ses-message" and raw.startswith(b'"\xed'):
            continue  # a Message is text: this one cannot be sent
        response = _send(hooks, webhook, raw)
        assert response.status_code == 400 and error in response.json()["error"], (raw[:60], response.text)
    assert _changed(hooks) == before
    # A pair of escapes is one character (an emoji, as json.dumps writes it): taken.
    response = _send(hooks, webhook, _with(webhook, "Detail", '"\\ud83d\\ude00"'))
    assert response.status_code == (403 if webhook == "ses" else 200), response.text


WRONG = [None, False, -1, 2.5, "", [], [None], {"x": [1]}]


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every value's place in ``value``, containers included (of a list, the first item's)."""
    if path:
        yield path
    children = value.items() if isinstance(value, dict) else enumerate(value[:1]) if isinstance(value, list) else []
    for key, child in children:
        yield from _paths(child, (*path, key))


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return copy


def test_a_wrong_type_in_any_field_is_a_200_or_a_400_that_changes_nothing(hooks: Site) -> None:
    """Every field of every sample (and the sample itself) as each JSON type, through its webhook: what a
    provider does not document is a 400 that changes nothing (a TypeError was a 500), or is ignored."""
    hooks.sign_up_and_confirm("jane@example.com")
    hooks.sign_up_and_confirm("john@example.com")
    hooks.sign_up_and_confirm("recipient@example.com")
    generic = [{"type": "soft-bounce", "email": "john@example.com", "id": "g", "message_id": "<m>", "detail": "d"}]
    samples: list[tuple[Callable[[Any], Response], Any]] = [
        *((lambda body: _ses(hooks, _notification(hooks, body)), payload(name))
          for name in ("ses-bounce", "ses-complaint", "ses-transient-bounce")),
        *((lambda body: _postmark(hooks, body), payload(name))
          for name in ("postmark-bounce", "postmark-spam-complaint", "postmark-subscription-change")),
        (lambda body: _generic(hooks, body), generic),
        (lambda body: _ses(hooks, body), _notification(hooks, payload("ses-bounce"))),  # the SNS message itself
    ]  # fmt: skip
    sent = 0
    with hooks.runtime.sessions.kw["bind"].connect() as connection:
        snapshots = Snapshots(connection.execution_options(isolation_level="AUTOCOMMIT"))
        for send, sample in samples:
            for path in [(), *_paths(sample)]:
                for wrong in WRONG:
                    response = send(_replaced(sample, path, wrong))
                    sent += 1
                    assert response.status_code in (200, 400, 403), (path, wrong, response.text)
                    changed = snapshots.changed()
                    if response.status_code != 200:
                        assert not changed and response.json()["error"], (path, wrong, changed)
    assert sent > 1000, sent
