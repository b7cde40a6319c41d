"""What became of an event, for the app that published it: ``GET /v1/events/{event_id}``.

The producer knows the id it published, so it can ask without having kept
anything else: was the event taken in, and did its mail go out?  "We could not
deliver to that address" is ``delivery: undeliverable`` (it bounced) or
``failed`` (the relay refused it, or retries ran out).  An event refused at intake
(invalid, unknown source) has no ledger row: its dead letter answers, as
``refused:<reason>`` with the reason's words.

Another app's event answers 404, exactly as one that does not exist.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from domain.fates import EventDelivery, delivery_of
from domain.vocabulary import EmailStatus, Feedback, Reason, Suppressed
from workers.api_errors import Error
from workers.runtime import Runtime
from workers.store import email_views, event_views


def _values(*enums) -> Any:
    return Literal[tuple(member.value for enum in enums for member in enum)]


class EventEmail(BaseModel):
    email_id: str = Field(description="`GET /v1/emails/{email_id}` tells its whole story.")
    kind: str = Field(description="`signup`, `password_reset`, `email_changed`...")
    recipient: str
    status: _values(EmailStatus)
    reason: _values(Suppressed, Reason) | None = Field(
        description="Why a `suppressed` mail was not sent, or why a `failed` one was given up on."
    )
    error: str | None = Field(
        description="The error it was given up on, or, while `queued`, its last attempt's."
    )
    transport: str | None = Field(description="The transport that accepted it.")
    attempts: int = Field(description="Attempts begun.")
    sent_at: datetime | None
    feedback: _values(Feedback) | None = Field(
        description="What a provider or a returned report said of it once sent: `bounced` "
        "(for good), `soft_bounced`, `complained` or `delivered`."
    )
    replayed_as: str | None = Field(
        description="Given up on, then replayed by an admin: the email that stands for it."
    )


class EventFate(BaseModel):
    event_id: str
    type: str | None = Field(description="The event's type; null when a refused one had none.")
    outcome: str = Field(
        description="What intake made of it: `queued`, `cancelled`, `unknown_account`, "
        "`suppressed:<reason>` (all its mail), `refused:address_claimed`, or, dead-lettered "
        "instead of taken in, `refused:<dead-letter reason>` (`refused:invalid_event`...)."
    )
    received_at: datetime = Field(description="When mailroom took it in (or refused it).")
    delivery: _values(EventDelivery) = Field(
        description="Its mail in one word: `pending` (some still to go), `failed` (some given "
        "up on), `undeliverable` (it bounced, or the address bounces or complained: tell "
        "your user to check it), `sent`, `suppressed` (none sent, on purpose) or `none` (no "
        "mail asked for, or refused). More words may come: treat one you do not know as `pending`."
    )
    error: str | None = Field(description="Why it was refused, when it was.")
    emails: list[EventEmail] = Field(description="Its mail, in the order it was written.")


NOT_FOUND = {
    404: {"model": Error, "description": "No event of this app has this id (`not_found`)."},
    422: {"model": Error, "description": "`event_id` is not a UUID (`bad_request`)."},
}


def _email(row) -> dict:
    failed = row.status == EmailStatus.FAILED
    return {
        "email_id": str(row.id),
        "kind": row.kind,
        "recipient": row.recipient,
        "status": row.status,
        "reason": row.suppressed_reason or (row.dead_letter_reason if failed else None),
        "error": (row.dead_letter_error or row.last_error) if failed else row.last_error,
        "transport": row.transport,
        "attempts": row.attempts,
        "sent_at": row.sent_at,
        "feedback": row.feedback,
        "replayed_as": str(row.replayed_as) if row.replayed_as else None,
    }


def fate(conn, event_id: uuid.UUID, app: str) -> dict | None:
    """The answer for one of ``app``'s events; None when it has no such event."""
    event = event_views.accepted(conn, event_id, app)
    if event is None:
        refusal = event_views.refused(conn, event_id, app)
        if refusal is None:
            return None
        return {
            "event_id": str(event_id),
            "type": refusal.type,
            "outcome": f"refused:{refusal.reason}",
            "received_at": refusal.at,
            "delivery": EventDelivery.NONE,
            "error": refusal.error,
            "emails": [],
        }
    rows = email_views.page(conn, email_views.Filters(event_id=event_id, app=app))
    emails = [_email(row) for row in reversed(rows)]  # the page is newest first
    return {
        "event_id": str(event_id),
        "type": event.type,
        "outcome": event.outcome,
        "received_at": event.received_at,
        "delivery": delivery_of(emails),
        "error": None,
        "emails": emails,
    }


def router(runtime: Runtime, calling_app: Callable[..., str]) -> APIRouter:
    """The route; ``calling_app`` is the API's dependency that answers which app's
    key the call carries (401 when none)."""
    routes = APIRouter()
    App = Annotated[str, Depends(calling_app)]

    @routes.get("/v1/events/{event_id}", response_model=EventFate, responses=NOT_FOUND)
    def show_event(event_id: Annotated[uuid.UUID, Path()], app_id: App) -> dict:
        """What became of one of your app's events and its mail: was it sent?"""
        with runtime.engine.connect() as conn:
            answer = fate(conn, event_id, app_id)
        if answer is None:
            raise HTTPException(404)
        return answer

    return routes
