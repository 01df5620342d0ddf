"""Provider webhooks: bounces and complaints that arrive after SMTP accepted the message.

- ``POST /webhooks/ses``: Amazon SES notifications through SNS, each signature checked against the
  pinned certificate (web/webhooks/sns.py); a subscription confirmation is logged with the URL an
  operator opens to confirm it (we never fetch a URL a message names).
- ``POST /webhooks/postmark``: Postmark's bounce, spam-complaint and subscription-change webhooks,
  with the HTTP Basic credentials written into the webhook URL at Postmark.
- ``POST /webhooks/feedback``: our own JSON form (web/webhooks/providers.py), with a bearer token.

Each endpoint is served only when its credentials are configured (404 otherwise), answers JSON, and
records what it is told with :func:`course.feedback.record` in one transaction: 200 once recorded
(a notice told again is a 200 too, so the provider stops retrying), 401/403 when the request is not
from the provider, 400 when the payload is not what the provider documents (or JSON past the bounds of
:func:`providers.loads`, or an SNS message published too long ago), and nothing is changed.
"""

from __future__ import annotations

import logging
from collections import Counter
from hmac import compare_digest
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from course.feedback import Feedback, SoftBouncePolicy, record_all
from web.context import WebContext, context
from web.webhooks import providers
from web.webhooks.sns import SnsOutOfTime, SnsRefused, SnsVerifier

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", include_in_schema=False)
basic = HTTPBasic(auto_error=False)
bearer = HTTPBearer(auto_error=False)
# SNS messages are at most 256 KB; a Postmark bounce may carry the bounce's full text.
WEBHOOK_BODY_LIMIT_BYTES = 1024 * 1024


def enable(app: FastAPI, web: WebContext) -> None:
    """Serve the webhooks whose credentials are set; read the pinned SNS certificate now, so a bad
    file stops the web process at start with what is wrong."""
    app.state.sns = SnsVerifier.from_settings(web.settings)
    settings = web.settings
    if app.state.sns or settings.postmark_webhook_password or settings.feedback_webhook_token:
        app.include_router(router)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _json(request: Request) -> Any:
    return providers.loads(await request.body())


def _record(web: WebContext, items: list[Feedback]) -> JSONResponse:
    with web.session() as session, session.begin():
        recorded = record_all(session, items, signer=web.signer, address_key=web.settings.address_key,
                              now=web.clock(), policy=SoftBouncePolicy.of(web.settings))  # fmt: skip
    outcomes = Counter(item.outcome.value for item in recorded)
    for item in recorded:
        log.info("webhook %s: %s %s", item.feedback.source, item.feedback.kind.value, item.outcome.value)
    return JSONResponse({"notices": len(recorded), "outcomes": dict(sorted(outcomes.items()))})


@router.post("/ses")
async def ses(request: Request, web: Annotated[WebContext, Depends(context)]) -> JSONResponse:
    verifier: SnsVerifier | None = request.app.state.sns
    if verifier is None:
        return _error(404, "SES notifications are not set up: set SES_SNS_CERTIFICATE_FILE and SES_SNS_TOPIC_ARN")
    try:
        envelope = await _json(request)
        if not isinstance(envelope, dict):
            raise providers.Malformed("an SNS message is a JSON object")
        verifier.verify(envelope, web.clock())
    except SnsRefused as error:
        log.warning("webhook ses: refused: %s", error)
        return _error(403, f"refused: {error}")
    except SnsOutOfTime as error:
        log.warning("webhook ses: refused: %s", error)
        return _error(400, f"refused: {error}")
    except providers.Malformed as error:
        return _error(400, str(error))
    kind = envelope["Type"]
    if kind == "SubscriptionConfirmation":
        # Signed by SNS for our topic: an operator confirms it by opening the URL (AWS console or curl).
        log.warning("webhook ses: SNS asks to confirm the subscription of topic %s: open %s",
                    envelope["TopicArn"], envelope.get("SubscribeURL"))  # fmt: skip
        return JSONResponse({"subscription": "to be confirmed by an operator: see the web log"})
    if kind == "UnsubscribeConfirmation":
        log.warning("webhook ses: this endpoint was unsubscribed from topic %s", envelope["TopicArn"])
        return JSONResponse({"subscription": "ended"})
    try:
        items = providers.ses(providers.sns_notification_message(envelope), str(envelope["MessageId"]))
    except providers.Malformed as error:
        log.warning("webhook ses: a signed notification we cannot read: %s", error)
        return _error(400, str(error))
    return await _in_thread(web, items)


@router.post("/postmark")
async def postmark(
    request: Request,
    web: Annotated[WebContext, Depends(context)],
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
) -> JSONResponse:
    expected = web.settings.postmark_webhook_password
    if expected is None:
        return _error(404, "Postmark webhooks are not set up: set POSTMARK_WEBHOOK_PASSWORD")
    user_ok = compare_digest((credentials.username if credentials else "").encode(),
                             web.settings.postmark_webhook_user.encode())  # fmt: skip
    password_ok = compare_digest((credentials.password if credentials else "").encode(),
                                 expected.get_secret_value().encode())  # fmt: skip
    if not (user_ok and password_ok):
        return _error(401, "these notices need the webhook's credentials", **{"WWW-Authenticate": "Basic"})
    try:
        payload = await _json(request)
        if not isinstance(payload, dict):
            raise providers.Malformed("a Postmark webhook is a JSON object")
        items = providers.postmark(payload)
    except providers.Malformed as error:
        return _error(400, str(error))
    return await _in_thread(web, items)


@router.post("/feedback")
async def feedback(
    request: Request,
    web: Annotated[WebContext, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> JSONResponse:
    expected = web.settings.feedback_webhook_token
    if expected is None:
        return _error(404, "the feedback webhook is not set up: set FEEDBACK_WEBHOOK_TOKEN")
    given = credentials.credentials if credentials is not None else ""
    if not compare_digest(given.encode(), expected.get_secret_value().encode()):
        return _error(401, "these notices need the webhook's bearer token", **{"WWW-Authenticate": "Bearer"})
    try:
        items = providers.generic(await _json(request))
    except providers.Malformed as error:
        return _error(400, str(error))
    return await _in_thread(web, items)


async def _in_thread(web: WebContext, items: list[Feedback]) -> JSONResponse:
    """The database's work off the event loop, as FastAPI runs a plain ``def`` handler."""
    return await run_in_threadpool(_record, web, items)
