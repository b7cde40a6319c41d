"""An app's own mail over HTTP, read-only: ``GET /v1/emails`` and
``GET /v1/emails/{email_id}``.

The recipient to look for is a query parameter (``?to=``), not a body: an
address is personal data but not a secret (it grants nothing), a read is a
GET, and mailroom's own access log masks an address in a URL as it does
everywhere.  A proxy in front that logs query strings keeps it unmasked: such a
deployment can look up by ``event_id`` instead.

Another app's email answers 404, exactly as one that does not exist: a key
never learns what other apps sent.
"""

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AfterValidator, BaseModel, Field

from domain.addresses import lookup_key
from domain.history import Happened
from domain.vocabulary import DeadLetterStatus, EmailStatus, Feedback, Reason, Suppressed
from workers.api_errors import Error
from workers.runtime import Runtime
from workers.store import email_views

#: Emails a page holds by default, and at most.
DEFAULT_PAGE, MAX_PAGE = 50, 100


def _values(enum) -> Any:
    return Literal[tuple(member.value for member in enum)]


class HistoryStep(BaseModel):
    happened: _values(Happened)
    at: datetime | None = Field(description="When; null when the row does not keep the time.")
    detail: str | None


class DeadLetter(BaseModel):
    id: int
    reason: _values(Reason)
    error: str
    status: _values(DeadLetterStatus)
    created_at: datetime = Field(description="When it was dead-lettered.")
    replayed_as: str | None = Field(description="The email an admin's replay queued.")
    replayed_at: datetime | None
    discarded_at: datetime | None


class Email(BaseModel):
    email_id: str
    status: _values(EmailStatus)
    suppressed_reason: _values(Suppressed) | None = Field(
        description="Why a `suppressed` mail was not sent."
    )
    kind: str = Field(description="`signup`, `password_reset`, `email_changed`...")
    locale: str = Field(description="Empty: the app's default locale.")
    recipient: str
    event_id: str | None = Field(description="The event that asked for it.")
    challenge_id: str | None = Field(description="The challenge whose code or link it carries.")
    requested_at: datetime | None = Field(description="When your app published the event.")
    created_at: datetime = Field(description="When mailroom queued it.")
    deadline: datetime = Field(description="Not sent after this: its code would have expired.")
    next_attempt_at: datetime | None = Field(description="While `queued`: when it is due.")
    attempts: int = Field(description="Attempts begun.")
    last_error: str | None = Field(description="The last failed attempt's error, until sent.")
    transport: str | None = Field(description="The transport that accepted it.")
    message_id: str | None = Field(description="Its Message-ID header.")
    provider_id: str | None = Field(description="The relay's or provider's own id for it.")
    sent_at: datetime | None
    feedback: _values(Feedback) | None = Field(
        description="What a provider or a returned report said of it once sent: `bounced` "
        "(for good), `soft_bounced`, `complained` (reported as spam) or `delivered`."
    )
    feedback_at: datetime | None
    replay_of: int | None = Field(description="The dead letter this mail is a replay of.")
    dead_letter: DeadLetter | None = Field(description="What it became when given up on.")
    history: list[HistoryStep] = Field(description="Its steps, oldest first.")


class EmailPage(BaseModel):
    emails: list[Email] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: none.")


def _address_key(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return lookup_key(value)
    except ValueError:
        # Not the validator's words: they may quote the input.
        raise ValueError("not a valid address") from None


def cursor_of(position: email_views.Position) -> str:
    raw = f"{position.created_at.isoformat()}|{position.email_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(value: str | None) -> email_views.Position | None:
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        created_at, email_id = raw.split("|")
        return email_views.Position(datetime.fromisoformat(created_at), uuid.UUID(email_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor this API gave") from None


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=UTC)


Recipient = Annotated[
    str | None,
    Query(max_length=254, description="Only mail to this address (case does not matter)."),
    AfterValidator(_address_key),
]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the page before."),
    AfterValidator(_position),
]
Since = Annotated[
    datetime | None,
    Query(
        description="Only mail written to the outbox at or after (ISO 8601; UTC unless it says)."
    ),
    AfterValidator(_utc),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many emails.")]
QUERY_FAILURES = {
    422: {"model": Error, "description": "A malformed parameter (`bad_request`)."},
}
NOT_FOUND = {
    404: {"model": Error, "description": "No email of this app has this id (`not_found`)."},
    **QUERY_FAILURES,
}


def router(runtime: Runtime, calling_app: Callable[..., str]) -> APIRouter:
    """The routes; ``calling_app`` is the API's dependency that answers which
    app's key the call carries (401 when none)."""
    routes = APIRouter()
    App = Annotated[str, Depends(calling_app)]

    @routes.get("/v1/emails", response_model=EmailPage, responses=QUERY_FAILURES)
    def list_emails(
        app_id: App,
        to: Recipient = None,
        event_id: Annotated[uuid.UUID | None, Query(description="Only its mail.")] = None,
        status: Annotated[
            _values(EmailStatus) | None, Query(description="Only this status.")
        ] = None,
        since: Since = None,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> dict:
        """Your app's mail, newest first, a page at a time: did it go out?"""
        filters = email_views.Filters(
            recipient_key=to, event_id=event_id, app=app_id, status=status, since=since
        )
        with runtime.engine.connect() as conn:
            rows = email_views.page(conn, filters, limit=limit + 1, after=cursor)
        now = runtime.clock()
        page = rows[:limit]
        following = cursor_of(email_views.position(page[-1])) if len(rows) > limit else None
        return {
            "emails": [email_views.record(row, now) for row in page],
            "next_cursor": following,
        }

    @routes.get("/v1/emails/{email_id}", response_model=Email, responses=NOT_FOUND)
    def show_email(email_id: Annotated[uuid.UUID, Path()], app_id: App) -> dict:
        """One of your app's emails, with its dead letter and history."""
        with runtime.engine.connect() as conn:
            row = email_views.one(conn, email_id, app=app_id)
        if row is None:
            raise HTTPException(404)
        return email_views.record(row, runtime.clock())

    return routes
