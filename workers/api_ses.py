"""Amazon SES bounces, complaints and deliveries, through SNS:
``POST /v1/providers/ses/notifications``.

SNS cannot send an API key: the message's signature and its topic are the
authentication (``workers.sns``).  A message not trusted answers 403, one that
is not an SNS message 400, and neither is acted on; either way one warning line
``ses.notification_refused`` says why (never the body).  SNS retries any
answer but 2xx, so an outage (the database, SNS unreachable for its
certificate) answers 503 and the message comes again.
"""

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from domain import ses_notifications, sns
from domain.sns import Refused
from workers import feedback
from workers.api_errors import RETRY_AFTER_HEADER, Error, error, unavailable
from workers.logs import get_logger
from workers.runtime import Runtime
from workers.sns import Unreachable, Verifier

log = get_logger("workers.api")

PATH = "/v1/providers/ses/notifications"


class SnsMessage(BaseModel):
    """What SNS posts (as `text/plain`): the fields mailroom reads."""

    Type: Literal[
        "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"
    ]  # fmt: skip
    MessageId: str
    TopicArn: str = Field(description="Must be one of `MAILROOM_SNS_TOPIC_ARNS`.")
    Message: str = Field(description="A Notification's: the SES notification, as JSON text.")
    Timestamp: str
    Subject: str | None = None
    SubscribeURL: str | None = Field(None, description="Confirmations only.")
    Token: str | None = Field(None, description="Confirmations only.")
    SignatureVersion: Literal["1", "2"] = Field(description="`1`: SHA1withRSA; `2`: SHA256withRSA.")
    Signature: str
    SigningCertURL: str = Field(description="HTTPS, on a host `MAILROOM_SNS_CERT_HOSTS` matches.")


class Taken(BaseModel):
    type: str = Field(description="The SNS message's `Type`.")
    notification: str | None = Field(
        description="The SES notification's kind: `Bounce`, `Complaint`, `Delivery`, or "
        "another one (`Send`, `Open`...), taken but ignored."
    )
    recorded: int = Field(description="Recipients whose report was new.")
    repeated: int = Field(description="Recipients whose report was already recorded.")
    unmatched: int = Field(description="Recipients of mail mailroom did not send (ignored).")


RESPONSES = {
    400: {"model": Error, "description": "Not an SNS message, or not an SES notification "
          "(`bad_request`, `detail`: what is wrong)."},
    403: {"model": Error, "description": "Not trusted (`forbidden`, `detail`: why): unsigned, "
          "forged, a topic or certificate host not allowed."},
    500: {"model": Error, "description": "A bug (`internal`): SNS delivers the message again."},
    503: {"model": Error, "description": "PostgreSQL is out, or SNS unreachable (`unavailable`):"
          " SNS delivers the message again.", "headers": RETRY_AFTER_HEADER},
}  # fmt: skip
_BODY = {"content": {"text/plain": {"schema": {"$ref": "#/components/schemas/SnsMessage"}}}}


def router(runtime: Runtime) -> APIRouter:
    routes = APIRouter()
    verifier = Verifier(runtime.settings.sns_topics, runtime.settings.sns_cert_hosts)

    def take(body: bytes) -> dict:
        message = verifier.verified(body)
        kind = message["Type"]
        taken = {"type": kind, "notification": None, "recorded": 0, "repeated": 0, "unmatched": 0}
        if kind == sns.SUBSCRIPTION_CONFIRMATION:
            verifier.confirm(message)
            log.info("ses.subscription_confirmed", topic=message["TopicArn"])
        elif kind == sns.UNSUBSCRIBE_CONFIRMATION:
            # Whoever unsubscribed meant it; resubscribing is theirs to do.
            log.warning("ses.unsubscribed", topic=message["TopicArn"])
        else:
            notification = ses_notifications.read(message["Message"])
            taken["notification"] = notification.kind
            for report in notification.reports:
                recorded = feedback.record(runtime, report)
                outcome = "unmatched" if recorded is None else "recorded"
                outcome = "repeated" if recorded is not None and not recorded.fresh else outcome
                taken[outcome] += 1
        return taken

    @routes.post(
        PATH,
        response_model=Taken,
        responses=RESPONSES,
        openapi_extra={"requestBody": {"required": True, **_BODY}},
    )
    async def ses_notification(request: Request):
        """Take a bounce, complaint or delivery notification from Amazon SES through an SNS
        HTTPS subscription, and confirm that subscription. No API key: the SNS signature and
        an allowed topic are the authentication."""
        body = await _body(request)
        try:
            return await run_in_threadpool(take, body)
        except Refused as exc:
            log.warning("ses.notification_refused", reason=exc.reason, client=_client(request))
            if exc.malformed:
                return error(400, "bad_request", exc.reason)
            return error(403, "forbidden", exc.reason)
        except Unreachable as exc:
            log.warning("ses.sns_unreachable", reason=str(exc))
            return unavailable("sns")

    return routes


async def _body(request: Request) -> bytes:
    """The body, read no further than one byte past what ``sns.parse`` takes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > sns.MAX_BODY:
            break
    return bytes(body)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def install(app, runtime: Runtime) -> None:
    """Add the route, and document the body SNS posts."""
    app.include_router(router(runtime))
    schema = app.openapi

    def with_message_schema() -> dict:
        if app.openapi_schema is None:
            document = schema()
            document["components"]["schemas"]["SnsMessage"] = SnsMessage.model_json_schema()
        return app.openapi_schema

    app.openapi = with_message_schema
